"""verify-parity end to end on the real shared faces and MobileFaceNet: correct exports pass,
planted defects (channel swap, wrong normalisation, another network, another embedding
space) fail the gate, and bad input exits 2 without running anything."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from edgefkd.cli import main
from edgefkd.manifest import Manifest

ARCH = "mobilefacenet-foamliu"


def _verify(*args: object) -> int:
    return main(["verify-parity", *map(str, args)])


def _report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def _export_onnx(module, contract, path: Path) -> Path:
    """Export a module the way edgefkd export does (dynamic batch, contract in metadata)."""
    import onnx
    import torch

    example = torch.from_numpy(contract.example_input(2))
    torch.onnx.export(
        module, (example,), str(path), input_names=["input"], output_names=["embedding"],
        dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=17, dynamo=False,
    )
    model = onnx.load(str(path))
    for key, value in contract.to_metadata(precision="fp32").items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def export_dir(request, tmp_path_factory, mobilefacenet_pt) -> Path:
    try:
        return Path(request.getfixturevalue("mobilefacenet_export"))
    except pytest.FixtureLookupError:
        from edgefkd.manifest import ArtifactEntry
        from edgefkd.models.loading import load_student

        out = tmp_path_factory.mktemp("export")
        student = load_student(mobilefacenet_pt, ARCH)
        onnx_path = _export_onnx(student.module, student.contract, out / "model.onnx")
        Manifest(student.model_info(), student.contract, [ArtifactEntry.for_file(out, onnx_path, "onnx", "fp32")]).write(out)
        return out


def _artifact(export_dir: Path, fmt: str, precision: str) -> Path:
    entries = Manifest.read(export_dir).find(fmt, precision)
    if not entries:
        pytest.skip(f"the export has no {fmt} {precision} artifact")
    return export_dir / entries[0].path


def _with_contract(src: Path, dst: Path, **changes: object) -> Path:
    """A copy of an ONNX artifact whose metadata lies about its preprocessing."""
    import onnx

    model = onnx.load(str(src))
    for prop in model.metadata_props:
        if prop.key == "edgefkd.preprocess":
            prop.value = json.dumps({**json.loads(prop.value), **changes})
    onnx.save(model, str(dst))
    return dst


def test_correct_exports_pass_and_bin_equals_csv(export_dir, mobilefacenet_pt, pairs_bin, pairs_csv, tmp_path):
    # A view of the export whose manifest also lists a TensorRT engine that was deferred.
    view = tmp_path / "export_view"
    view.mkdir()
    manifest = Manifest.read(export_dir)
    raw = manifest.to_dict()
    for entry in raw["artifacts"]:
        entry["path"] = os.path.relpath(export_dir / entry["path"], view)
    raw["model"]["checkpoint"] = str(mobilefacenet_pt)
    raw["artifacts"].append({"path": "model.engine", "format": "tensorrt", "precision": "fp16", "status": "deferred"})
    Manifest.from_dict(raw).write(view)

    assert _verify(view, "--pairs", pairs_csv) == 0
    from_csv = _report(view / "parity")
    assert {"report.json", "report.md", "roc.png"} <= {p.name for p in (view / "parity").iterdir()}
    assert (view / "parity" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    skipped = [a for a in from_csv["artifacts"] if a["status"] == "skipped"]
    assert [a["format"] for a in skipped] == ["tensorrt"] and "deferred" in skipped[0]["skip_reason"]

    bin_report = tmp_path / "bin_report"
    assert _verify(export_dir, "--pairs", pairs_bin, "--report", bin_report,
                   "--teacher", mobilefacenet_pt, "--teacher-arch", ARCH, "--bootstrap", 200) == 0
    from_bin = _report(bin_report)

    # The same pairs from the .bin and the CSV give the same numbers, to the last bit.
    assert from_bin["reference"]["verification"] == from_csv["reference"]["verification"]
    verified = [a for a in from_csv["artifacts"] if a["status"] == "verified"]
    assert len(verified) == len(from_bin["artifacts"]) >= 1
    for a, b in zip(verified, from_bin["artifacts"]):
        assert (a["agreement"], a["verification"], a["drift"]) == (b["agreement"], b["verification"], b["drift"])
        assert b["passed"] and not b["failures"]
        assert b["agreement"]["cosine_p1"] >= 0.99
        # The teacher is the student's own checkpoint: cross-model pairs score like its own.
        space = b["teacher_space"]
        assert space["teacher_accuracy"] == from_bin["teacher"]["verification"]["accuracy"]
        assert space["drop_pp"] <= 1.0
        assert b["bootstrap"]["ci95"][0] <= b["bootstrap"]["difference"] <= b["bootstrap"]["ci95"][1]
    ref = from_bin["reference"]["verification"]
    # The shared README measures about 97.7 % (best threshold) and AUC about 0.997.
    assert ref["best_threshold_accuracy"] > 0.95 and ref["auc"] > 0.99
    assert ref["tar_at_far"]["1e-03"]["tar"] is None and "not enough impostor pairs" in ref["tar_at_far"]["1e-03"]["note"]
    assert from_bin["pairs"]["pairs"] == from_csv["pairs"]["pairs"] == 176


def test_fp16_export_passes(export_dir, pairs_csv, tmp_path):
    fp16 = _artifact(export_dir, "onnx", "fp16")
    assert _verify(fp16, "--pairs", pairs_csv, "--report", tmp_path / "r") == 0
    row = _report(tmp_path / "r")["artifacts"][0]
    assert row["precision"] == "fp16" and row["passed"]


def test_planted_defects_fail(export_dir, mobilefacenet_pt, pairs_csv, tmp_path):
    import torch

    from edgefkd.models.loading import load_student
    from edgefkd.models.registry import create_model

    fp32 = _artifact(export_dir, "onnx", "fp32")
    bgr = _with_contract(fp32, tmp_path / "bgr_swap.onnx", channel_order="bgr")
    arcface_norm = _with_contract(fp32, tmp_path / "wrong_mean_std.onnx", mean=[127.5] * 3, std=[127.5] * 3)
    torch.manual_seed(0)
    contract = load_student(mobilefacenet_pt, ARCH).contract
    other_net = _export_onnx(create_model(ARCH), contract, tmp_path / "other_network.onnx")

    report = tmp_path / "r"
    code = _verify(bgr, arcface_norm, other_net, "--pairs", pairs_csv, "--reference", mobilefacenet_pt,
                   "--arch", ARCH, "--report", report)
    assert code == 1
    rows = {Path(a["path"]).name: a for a in _report(report)["artifacts"]}
    assert set(rows) == {"bgr_swap.onnx", "wrong_mean_std.onnx", "other_network.onnx"}
    for name, row in rows.items():
        assert row["passed"] is False, name
        assert any("cosine p1" in f for f in row["failures"]), (name, row["failures"])
    assert "FAIL" in (report / "report.md").read_text()


def _rotated_state_dict(checkpoint: Path, rotation: np.ndarray) -> dict:
    """The network with its output rotated: fold R into conv3 and make the last BN the identity."""
    import torch

    sd = torch.load(checkpoint, map_location="cpu", weights_only=True)
    r = torch.from_numpy(rotation)
    scale = sd["bn.weight"] / torch.sqrt(sd["bn.running_var"] + 1e-5)
    shift = sd["bn.bias"] - scale * sd["bn.running_mean"]
    weight = sd["conv3.weight"]  # (128, 512, 1, 1)
    sd["conv3.weight"] = (r @ (scale[:, None] * weight.flatten(1))).reshape(weight.shape)
    sd["conv3.bias"] = r @ (scale * sd["conv3.bias"] + shift)
    sd["bn.weight"] = torch.full_like(scale, (1 + 1e-5) ** 0.5)
    sd["bn.bias"] = torch.zeros_like(scale)
    sd["bn.running_mean"] = torch.zeros_like(scale)
    sd["bn.running_var"] = torch.ones_like(scale)
    return sd


def test_student_from_another_embedding_space_fails_teacher_gate(mobilefacenet_pt, pairs_csv, tmp_path):
    """Same standalone accuracy, different space: only the teacher-space gate can tell."""
    import torch

    from edgefkd.models.loading import load_student

    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((128, 128)))
    rotated_pt = tmp_path / "rotated.pt"
    torch.save(_rotated_state_dict(mobilefacenet_pt, q.astype(np.float32)), rotated_pt)
    student = load_student(rotated_pt, ARCH)
    rotated_onnx = _export_onnx(student.module, student.contract, tmp_path / "rotated.onnx")

    report = tmp_path / "r"
    code = _verify(rotated_onnx, "--pairs", pairs_csv, "--reference", rotated_pt, "--arch", ARCH,
                   "--teacher", mobilefacenet_pt, "--teacher-arch", ARCH, "--flip", "--report", report)
    assert code == 1
    data = _report(report)
    row = data["artifacts"][0]
    assert row["agreement"]["cosine_p1"] >= 0.99
    assert abs(row["verification"]["accuracy"] - data["teacher"]["verification"]["accuracy"]) * 100 <= 0.5
    assert len(row["failures"]) == 1 and "teacher-space" in row["failures"][0]
    assert data["options"]["flip"] is True


def test_bad_input_exits_2_and_runs_nothing(export_dir, pairs_csv, tmp_path, capsys):
    class Plant:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "evil.bin"
    evil.write_bytes(pickle.dumps(([Plant()], [True])))
    report = tmp_path / "r"
    assert _verify(export_dir, "--pairs", evil, "--report", report) == 2
    assert not (tmp_path / "pwned").exists() and not report.exists()
    assert "refusing unsafe" in capsys.readouterr().err

    csv = tmp_path / "pairs.csv"
    csv.write_text("file_a,file_b,is_same\nmissing_a.jpg,missing_b.jpg,1\n")
    assert _verify(export_dir, "--pairs", csv, "--report", report) == 2
    lone = _artifact(export_dir, "onnx", "fp32")
    elsewhere = tmp_path / "lone.onnx"
    elsewhere.write_bytes(lone.read_bytes())
    assert _verify(elsewhere, "--pairs", pairs_csv) == 2
    err = capsys.readouterr().err
    assert "--reference" in err and "Traceback" not in err
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("keep me")
    assert _verify(export_dir, "--pairs", pairs_csv, "--report", tmp_path / "occupied") == 2
    assert not report.exists()
