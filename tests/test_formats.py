"""The table of formats, list-formats, the runnable-here rule and runners' own batch limits."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgefkd import formats
from edgefkd.errors import InputError
from edgefkd.imaging import list_images, load_faces
from edgefkd.manifest import ArtifactEntry
from edgefkd.runners import open_runner, read_artifact_metadata


def test_table_lookup_by_name_and_suffix() -> None:
    names = formats.format_names()
    assert names[:4] == ["onnx", "ort", "openvino", "tensorrt"]
    assert len(set(names)) == len(names)
    assert formats.format_for_path("export/onnx/model_fp32.onnx").name == "onnx"
    assert formats.format_for_path("M.ORT").name == "ort"
    assert formats.format_for_path("model_int8.xml").name == "openvino"
    assert {formats.format_for_path(f"e{s}").name for s in (".engine", ".plan", ".trt")} == {"tensorrt"}
    with pytest.raises(InputError, match=r"unknown artifact type '.pb'"):
        formats.format_for_path("frozen.pb")
    with pytest.raises(InputError, match=r"unknown format 'tflite2'; choose from onnx, ort"):
        formats.get_format("tflite2")
    for fmt in formats.all_formats():
        assert set(fmt.precisions) <= {"fp32", "fp16", "int8"} and fmt.suffixes
        assert (fmt.export is None) != (fmt.bundle is None), fmt.name


def test_a_listed_module_missing_from_the_checkout_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "FORMAT_MODULES", (*formats.FORMAT_MODULES, "not_in_this_checkout"))
    formats._table.cache_clear()
    try:
        assert "not_in_this_checkout" not in formats.format_names()
        assert "onnx" in formats.format_names()
    finally:
        formats._table.cache_clear()


def test_list_formats_reports_every_format_and_this_host(capsys: pytest.CaptureFixture[str]) -> None:
    from edgefkd.cli import main

    assert main(["list-formats", "--json"]) == 0
    rows = {r["format"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == formats.format_names()
    assert rows["ort"]["suffix"] == ".ort" and rows["ort"]["precisions"] == ["fp32", "fp16", "int8"]
    assert rows["onnx"]["installed"] and rows["onnx"]["verifiable"] and rows["onnx"]["reason"] is None
    trt_here = importlib.util.find_spec("tensorrt") is not None
    assert rows["tensorrt"]["extra"] == "tensorrt"
    if not trt_here:
        assert not rows["tensorrt"]["verifiable"] and "TensorRT is not installed" in rows["tensorrt"]["reason"]
    assert main(["list-formats"]) == 0
    table = capsys.readouterr().out
    assert all(f" {name} " in table for name in rows)


def test_one_runnable_rule_for_parity_and_benchmark(tmp_path: Path, mobilefacenet_upstream_onnx: Path) -> None:
    shutil.copy(mobilefacenet_upstream_onnx, tmp_path / "model.onnx")  # a symlink out of the folder is refused
    entry = ArtifactEntry("model.onnx", "onnx", "fp32")
    assert formats.runnable_reason(tmp_path, entry) is None
    entry.extra["status"] = "built"  # an engine built here is as runnable as a plain export
    assert formats.runnable_reason(tmp_path, entry) is None
    entry.extra["status"] = "deferred"
    assert formats.runnable_reason(tmp_path, entry) == "manifest status: deferred"
    assert formats.runnable_reason(tmp_path, ArtifactEntry("gone.onnx", "onnx", "fp32")) == "artifact file missing: gone.onnx"
    assert "unknown artifact format 'mnn'" in formats.runnable_reason(tmp_path, ArtifactEntry("m.mnn", "mnn", "fp32"))


@pytest.fixture(scope="module")
def real_faces(faces_dir: Path) -> np.ndarray:
    return load_faces(list_images(faces_dir)[:7], (112, 112))


def test_fixed_batch_artifacts_split_any_batch_themselves(
    tmp_path: Path, mobilefacenet_upstream_onnx: Path, real_faces: np.ndarray
) -> None:
    """The upstream MobileFaceNet.onnx takes exactly one face per call; its runners say so
    from the declared input shape and split a batch of 7 into calls of 1."""
    from edgefkd.contract import PreprocessContract
    from edgefkd.exporters.openvino import export_openvino

    contract = PreprocessContract()
    xml = export_openvino(mobilefacenet_upstream_onnx, tmp_path / "upstream.xml", fp16=False, metadata={})
    one_by_one = []
    with open_runner(mobilefacenet_upstream_onnx, contract=contract, precision="fp32") as runner:
        assert (runner.max_batch, runner.fixed_batch) == (1, True)
        batch = runner.embed_faces(real_faces)
        one_by_one = np.concatenate([runner.embed_faces(real_faces[i : i + 1]) for i in range(len(real_faces))])
    assert batch.shape == (7, 128)
    np.testing.assert_array_equal(batch, one_by_one)
    with open_runner(xml, contract=contract, precision="fp32") as runner:
        assert runner.max_batch == 1
        ov_batch = runner.embed_faces(real_faces, batch_size=4)
    cosine = np.sum(batch * ov_batch, 1) / np.linalg.norm(batch, axis=1) / np.linalg.norm(ov_batch, axis=1)
    assert cosine.min() > 0.99999


def test_dynamic_batch_export_declares_no_limit(mobilefacenet_export: Path) -> None:
    for path in ("onnx/model_fp32.onnx", "openvino/model_fp32.xml"):
        with open_runner(mobilefacenet_export / path) as runner:
            assert runner.max_batch is None, path
    assert read_artifact_metadata(mobilefacenet_export / "onnx" / "model_fp32.onnx")["edgefkd.precision"] == "fp32"


# -- ONNX Runtime Mobile ---------------------------------------------------------------------
#: The bars the shared MobileFaceNet must meet on the real faces in every runnable format.
ORT_BAR = {"fp32": ("cosine_min", 0.99999), "fp16": ("cosine_min", 0.9999), "int8": ("cosine_p1", 0.97)}


@pytest.fixture(scope="module")
def ort_export(tmp_path_factory: pytest.TempPathFactory, mobilefacenet_pt: Path, faces_dir: Path) -> Path:
    """`--formats ort` alone: the ONNX it is made from is an intermediate that must not stay."""
    from edgefkd.exporters.pipeline import ExportOptions, run_export

    out = tmp_path_factory.mktemp("ort") / "mfn"
    run_export(ExportOptions(checkpoint=mobilefacenet_pt, arch="mobilefacenet-foamliu", out=out, formats=["ort"],
                             precisions=["fp32,fp16,int8"], val_images=faces_dir, calib_count=64))  # fmt: skip
    return out


def test_ort_artifacts_match_pytorch_on_real_faces(ort_export: Path) -> None:
    from edgefkd.manifest import Manifest

    manifest = Manifest.read(ort_export)
    assert sorted((a.format, a.precision) for a in manifest.artifacts) == [("ort", p) for p in ("fp16", "fp32", "int8")]
    assert sorted(p.name for p in ort_export.iterdir()) == ["manifest.json", "ort"]  # no ONNX left behind
    for artifact in manifest.artifacts:
        stat, bar = ORT_BAR[artifact.precision]
        assert artifact.parity is not None and artifact.parity["batch_sizes"] == [1, 8]
        assert artifact.parity[stat] >= bar, (artifact.path, artifact.parity)
        assert artifact.extra["ort_target"] == "arm"
        # .ort holds no metadata_props: the contract travels in the sidecar, read back by the table.
        meta = read_artifact_metadata(ort_export / artifact.path)
        assert (ort_export / (artifact.path + ".json")).is_file()
        assert meta["edgefkd.precision"] == artifact.precision and meta["edgefkd.ort_target"] == "arm"
        assert json.loads(meta["edgefkd.preprocess"]) == manifest.preprocess.to_dict()
    int8 = manifest.find("ort", "int8")[0]
    assert int8.extra["quantization"]["calibration_faces"] == 64
    assert (ort_export / int8.path).read_bytes()[4:8] == b"ORTM"  # the ORT flatbuffer identifier


def test_ort_export_runs_in_verify_parity(ort_export: Path, pairs_csv: Path, tmp_path: Path) -> None:
    from edgefkd.cli import main

    # 0 when every artifact passes, 3 when the int8 one is inconclusive on 176 pairs
    assert main(["verify-parity", str(ort_export), "--pairs", str(pairs_csv), "--report", str(tmp_path)]) in (0, 3)
    rows = json.loads((tmp_path / "report.json").read_text())["artifacts"]
    assert {(r["format"], r["status"]) for r in rows} == {("ort", "verified")}
    assert all(r["agreement"]["cosine_p1"] >= 0.97 for r in rows)
    verdicts = {r["precision"]: r["verdict"] for r in rows}
    assert verdicts["fp32"] == verdicts["fp16"] == "pass"
    assert verdicts["int8"] in ("pass", "inconclusive")
