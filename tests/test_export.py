"""edgefkd export on the real MobileFaceNet: parity, manifest, metadata, dynamic batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgefkd.contract import PreprocessContract
from edgefkd.fileio import sha256_file
from edgefkd.imaging import list_images, load_faces
from edgefkd.manifest import Manifest
from edgefkd.runners import open_runner, read_artifact_metadata

# The bar for the shared MobileFaceNet on real faces (stricter than the export gate).
BAR = {"fp32": 0.99999, "fp16": 0.9999}


def test_every_artifact_matches_pytorch_on_real_faces_at_batch_1_and_8(mobilefacenet_export: Path) -> None:
    manifest = Manifest.read(mobilefacenet_export)
    kinds = {(a.format, a.precision) for a in manifest.artifacts}
    assert kinds == {("onnx", "fp32"), ("onnx", "fp16"), ("openvino", "fp32"), ("openvino", "fp16")}
    for artifact in manifest.artifacts:
        assert artifact.parity is not None
        assert artifact.parity["batch_sizes"] == [1, 8]
        assert artifact.parity["cosine_min"] >= BAR[artifact.precision], artifact.path
        assert artifact.parity["samples"] >= 2 * 64


def test_manifest_records_files_checkpoint_and_contract(mobilefacenet_export: Path, mobilefacenet_pt: Path) -> None:
    data = json.loads((mobilefacenet_export / "manifest.json").read_text())
    assert set(data) == {"edgefkd_version", "model", "preprocess", "artifacts"}
    assert data["model"]["checkpoint_sha256"] == sha256_file(mobilefacenet_pt)
    assert data["model"]["embedding_size"] == 128
    assert data["model"]["params"] == 999936
    assert data["preprocess"]["input_size"] == [112, 112]
    assert data["preprocess"]["channel_order"] == "rgb"
    for artifact in data["artifacts"]:
        path = mobilefacenet_export / artifact["path"]
        assert sha256_file(path) == artifact["sha256"]
        size = path.stat().st_size + (path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0)
        assert size == artifact["bytes"]


def test_contract_travels_inside_each_artifact(mobilefacenet_export: Path, mobilefacenet_pt: Path) -> None:
    manifest = Manifest.read(mobilefacenet_export)
    for artifact in manifest.artifacts:
        meta = read_artifact_metadata(mobilefacenet_export / artifact.path)
        assert PreprocessContract.from_metadata(meta) == manifest.preprocess
        assert meta["edgefkd.embedding_size"] == "128"
        assert meta["edgefkd.checkpoint_sha256"] == sha256_file(mobilefacenet_pt)
        assert meta["edgefkd.precision"] == artifact.precision


def test_onnx_batch_axis_is_dynamic_and_graph_is_simplified(mobilefacenet_export: Path, faces_dir: Path) -> None:
    import onnx

    model = onnx.load(str(mobilefacenet_export / "onnx" / "model_fp32.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 112, 112]
    assert model.opset_import[0].version == 17
    # BatchNorms are folded into the convolutions: none survive in the exported graph.
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}
    faces = load_faces(list_images(faces_dir)[:5], (112, 112))
    with open_runner(mobilefacenet_export / "onnx" / "model_fp32.onnx") as runner:
        assert runner.embed_faces(faces).shape == (5, 128)


def test_our_architecture_matches_the_upstream_onnx_export(mobilefacenet_pt: Path, mobilefacenet_upstream_onnx: Path, faces_dir: Path) -> None:
    """The registry's module reproduces upstream's own export of the same weights."""
    from edgefkd.models.loading import load_student
    from edgefkd.runners.onnxruntime_runner import OnnxRuntimeRunner
    from edgefkd.runners.torch_runner import TorchRunner

    student = load_student(mobilefacenet_pt, "mobilefacenet-foamliu")
    faces = load_faces(list_images(faces_dir)[:4], (112, 112))
    with TorchRunner(student.module, student.contract) as ours, OnnxRuntimeRunner(mobilefacenet_upstream_onnx, student.contract) as upstream:
        x = student.contract.prepare(faces)
        theirs = np.concatenate([upstream.infer(x[i : i + 1]) for i in range(len(x))])  # fixed batch 1 upstream
        assert np.max(np.abs(ours.infer(x) - theirs)) < 1e-4


def test_fold_preprocess_takes_uint8_pixels(tmp_path: Path, mobilefacenet_pt: Path, faces_dir: Path) -> None:
    from edgefkd.exporters.pipeline import ExportOptions, run_export

    report = run_export(ExportOptions(
        checkpoint=mobilefacenet_pt, arch="mobilefacenet-foamliu", out=tmp_path / "folded",
        formats=["onnx,openvino"], precisions=["fp32"], fold_preprocess=True, val_images=faces_dir, exporter="legacy",
    ))
    assert report.manifest.preprocess.input_format == "uint8_nhwc"
    for artifact in report.manifest.artifacts:
        assert artifact.parity["cosine_min"] >= BAR["fp32"]
    import onnx

    graph_input = onnx.load(str(tmp_path / "folded" / "onnx" / "model_fp32.onnx")).graph.input[0]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim[1:]] == [112, 112, 3]
