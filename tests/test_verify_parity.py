"""verify-parity end to end on the real shared faces and MobileFaceNet: correct exports pass,
planted defects (channel swap, wrong normalisation, another network, another embedding
space) fail the gate, and bad input exits 2 without running anything."""

from __future__ import annotations

import json
import os
import pickle
import shutil
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
    from edgefkd.exporters.onnx import export_onnx

    return export_onnx(module, contract, path, exporter="legacy", simplify=False).path


@pytest.fixture(scope="module")
def export_dir(mobilefacenet_export) -> Path:
    return Path(mobilefacenet_export)


def _artifact(export_dir: Path, fmt: str, precision: str) -> Path:
    entries = Manifest.read(export_dir).find(fmt, precision)
    if not entries:
        pytest.skip(f"the export has no {fmt} {precision} artifact")
    return export_dir / entries[0].path


def _with_contract(src: Path, dst: Path, **changes: object) -> Path:
    """A copy of an ONNX artifact whose metadata lies about its preprocessing."""
    from edgefkd.formats.onnx import set_onnx_metadata
    from edgefkd.runners import artifact_contract

    shutil.copyfile(src, dst)
    contract = artifact_contract(src)
    assert contract is not None
    set_onnx_metadata(dst, {"edgefkd.preprocess": json.dumps({**contract.to_dict(), **changes})})
    return dst


def _same_numbers(a: dict, b: dict) -> None:
    """Two set blocks of the same pairs: every number equal, to the last bit."""
    assert a["reference"]["verification"] == b["reference"]["verification"]
    assert a["reference"]["teacher_space"] == b["reference"]["teacher_space"]
    assert len(a["artifacts"]) == len(b["artifacts"])
    for x, y in zip(a["artifacts"], b["artifacts"]):
        keys = ("agreement", "verification", "drift", "flips", "score_differences", "teacher_space", "gates", "verdict")
        assert {k: x.get(k) for k in keys} == {k: y.get(k) for k in keys}


def test_correct_exports_pass_and_bin_equals_csv(
    export_dir, mobilefacenet_pt, mobilefacenet_upstream_onnx, pairs_bin, pairs_csv, tmp_path
):
    # A copy of the export whose manifest also lists a TensorRT engine that was deferred
    # (a copy, not a view: manifest paths leading out of their folder are refused).
    view = tmp_path / "export_view"
    shutil.copytree(export_dir, view, ignore=shutil.ignore_patterns("parity", "benchmark"))
    raw = Manifest.read(view).to_dict()
    raw["model"]["checkpoint"] = str(mobilefacenet_pt)
    raw["artifacts"].append({"path": "model.engine", "format": "tensorrt", "precision": "fp16", "status": "deferred"})
    Manifest.from_dict(raw).write(view)

    # Teacher: the upstream fixed-batch-1 ONNX export of the same network (no edgefkd metadata).
    # Both pair files in one run: each is decoded once, every model embeds both in one activation.
    contract = Manifest.read(export_dir).preprocess
    assert _verify(view, "--pairs", pairs_csv, "--pairs", pairs_bin, "--teacher", mobilefacenet_upstream_onnx,
                   "--teacher-input-size", "112x112", "--teacher-mean", ",".join(map(str, contract.mean)),
                   "--teacher-std", ",".join(map(str, contract.std))) == 0
    report = _report(view / "parity")
    assert report["protocol"] == "insightface" and report["options"]["bootstrap"] == 1000
    assert [Path(b["pairs"]["source"]).name for b in report["sets"]] == ["pairs_balanced.csv", "real_pairs_balanced.bin"]
    from_csv, from_bin = report["sets"]
    assert from_csv["teacher"]["timing"]["batch"] == 1
    assert {"report.json", "report.md", "roc.png"} <= {p.name for p in (view / "parity").iterdir()}
    assert (view / "parity" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    skipped = [a for a in report["artifacts"] if a["status"] == "skipped"]
    assert [a["format"] for a in skipped] == ["tensorrt"] and "deferred" in skipped[0]["skip_reason"]
    assert from_csv["warnings"] == from_bin["warnings"] == []  # aligned 112x112 crops

    # The same pairs from the .bin and the CSV give the same numbers, to the last bit.
    _same_numbers(from_csv, from_bin)
    verified = [a for a in from_bin["artifacts"] if a["status"] == "verified"]
    assert {(a["format"], a["precision"]) for a in verified} >= {("onnx", "fp32"), ("onnx", "fp16")}
    for b in verified:
        # fp32/fp16 exports: a resolved pass, interval and all.
        assert b["verdict"] == "pass" and b["passed"] and not b["failures"], b["failures"]
        gate = b["verification"]["verdict"]
        assert gate["status"] == "pass" and gate["low"] is not None and gate["high"] <= 0.5
        assert b["agreement"]["cosine_p1"] >= 0.99
        # The teacher is the same network: cross-model pairs score like its own, in both directions.
        space = b["teacher_space"]
        assert space["teacher_accuracy"] == from_bin["teacher"]["verification"]["accuracy"]
        for direction in space["directions"].values():
            assert direction["verdict"]["status"] == "pass" and direction["verdict"]["low"] is not None
    summary = {a["label"]: a for a in report["artifacts"]}
    assert all(len(a["sets"]) == 2 and a["verdict"] == "pass" for a in summary.values() if a["status"] == "verified")
    ref = from_bin["reference"]["verification"]
    # insightface protocol: 96.67 % 10-fold; about 97.7 % at the best threshold; AUC about 0.997.
    assert ref["protocol"] == "insightface" and ref["threshold_unit"].startswith("squared L2")
    assert ref["best_threshold_accuracy"] > 0.95 and ref["auc"] > 0.99
    assert ref["tar_at_far"]["1e-03"]["tar"] is None and "not enough impostor pairs" in ref["tar_at_far"]["1e-03"]["note"]
    assert from_bin["pairs"]["pairs"] == from_csv["pairs"]["pairs"] == 176
    markdown = (view / "parity" / "report.md").read_text()
    assert "## " in markdown and markdown.count("pairs_balanced") >= 2 and "95 % paired bootstrap" in markdown


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
    data = _report(report)
    rows = {Path(a["path"]).name: a for a in data["sets"][0]["artifacts"]}
    assert set(rows) == {"bgr_swap.onnx", "wrong_mean_std.onnx", "other_network.onnx"}
    for name, row in rows.items():
        assert row["passed"] is False and row["verdict"] == "fail", name
        assert any(g["gate"] == "cosine_p1" and g["status"] == "fail" for g in row["gates"]), (name, row["gates"])
    # Another network costs so much accuracy that 176 pairs resolve it: the whole interval of the
    # drop is beyond the gate. (ArcFace normalisation here moves embeddings, not accuracy.)
    gate = rows["other_network.onnx"]["verification"]["verdict"]
    assert gate["status"] == "fail" and gate["low"] > 0.5, gate
    assert "FAIL" in (report / "report.md").read_text() and data["exit_code"] == 1


def test_noise_in_real_embeddings_is_resolved_as_fail(export_dir, pairs_csv):
    """Noise on the real export's embeddings of the shared faces costs about 8 pp: a resolved fail."""
    from edgefkd.verify.datasets import load_pairs
    from edgefkd.verify.judge import judge_set
    from edgefkd.verify.parity import Embedded, ParityOptions, embed_all, standalone_artifact

    pairs = load_pairs(pairs_csv)
    source = standalone_artifact(_artifact(export_dir, "onnx", "fp32"))
    reference, = embed_all(pairs, [source], batch_size=32)
    emb = reference.embeddings
    per_dim = np.linalg.norm(emb, axis=1).mean() / np.sqrt(emb.shape[1])
    noisy = emb + 1.5 * per_dim * np.random.default_rng(0).standard_normal(emb.shape).astype(np.float32)
    block, _ = judge_set(pairs, reference, [Embedded(source, embeddings=noisy)], None, ParityOptions())
    row = block["artifacts"][0]
    gate = row["verification"]["verdict"]
    assert gate["status"] == "fail" and gate["low"] > 0.5, gate
    assert row["verdict"] == "fail" and any(f.startswith("accuracy_drop: beyond") for f in row["failures"])


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


def test_student_from_another_embedding_space_fails_teacher_gate(export_dir, mobilefacenet_pt, pairs_csv, tmp_path):
    """Same standalone accuracy, different space: only the teacher-space gate can tell.

    The teacher is the real network with a fixed random rotation on its output, so the
    correct fp32 export is a faithful student of the checkpoint but not of this teacher.
    """
    import torch

    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((128, 128)))
    rotated_teacher = tmp_path / "rotated.pt"
    torch.save(_rotated_state_dict(mobilefacenet_pt, q.astype(np.float32)), rotated_teacher)

    report = tmp_path / "r"
    code = _verify(_artifact(export_dir, "onnx", "fp32"), "--pairs", pairs_csv, "--teacher", rotated_teacher,
                   "--teacher-arch", ARCH, "--report", report)
    assert code == 1
    data = _report(report)
    row = data["sets"][0]["artifacts"][0]
    assert row["agreement"]["cosine_p1"] >= 0.99
    # The rotation keeps every cosine within one model, so the teacher's own accuracy is the student's.
    assert abs(row["verification"]["accuracy"] - data["teacher"]["verification"]["accuracy"]) * 100 <= 0.5
    assert row["verification"]["verdict"]["status"] == "pass"
    failed = [g["gate"] for g in row["gates"] if g["status"] != "pass"]
    assert failed == ["teacher_drop[teacher_a_student_b]", "teacher_drop[student_a_teacher_b]"]
    for direction in row["teacher_space"]["directions"].values():
        assert direction["verdict"]["status"] == "fail" and direction["verdict"]["low"] > 1.0
    assert data["reference"]["teacher_space"]["drop_pp"] > 1.0


def test_flip_adds_the_mirror_embedding_and_decodes_once(export_dir, pairs_csv):
    from edgefkd.imaging import fit_face
    from edgefkd.runners import open_runner
    from edgefkd.verify.datasets import PairSet, load_pairs
    from edgefkd.verify.parity import embed_all, standalone_artifact

    full = load_pairs(pairs_csv)
    few = PairSet("first pairs", "csv", full.images[:6], np.array([[0, 1], [2, 3], [4, 5]]), np.array([True, False, True]))
    onnx_path = _artifact(export_dir, "onnx", "fp32")
    seen: list[int] = []
    flipped, = embed_all(few, [standalone_artifact(onnx_path)], batch_size=4, flip=True, on_batch=seen.append)
    assert seen == [4, 2]  # the unique images, batch by batch
    with open_runner(onnx_path) as runner:
        faces = np.stack([fit_face(few.decode(i), runner.contract.input_size) for i in range(6)])
        expected = runner.embed_faces(faces) + runner.embed_faces(faces[:, :, ::-1])
    np.testing.assert_allclose(flipped.embeddings, expected, rtol=1e-5, atol=1e-5)


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
    # A resample count whose memory cannot fit, an unknown protocol or mapping: refused before any work.
    for args in (("--bootstrap", 10**9), ("--protocol", "lfw"), ("--inconclusive", "maybe")):
        assert _verify(export_dir, "--pairs", pairs_csv, "--report", report, *args) == 2
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "Traceback" not in err and args[0] in err, err
        assert not report.exists()
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("keep me")
    assert _verify(export_dir, "--pairs", pairs_csv, "--report", tmp_path / "occupied") == 2
    assert not report.exists()
