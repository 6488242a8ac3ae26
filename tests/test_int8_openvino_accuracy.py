"""OpenVINO INT8 (NNCF) and accuracy-aware Q/DQ on the real MobileFaceNet and real pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgefkd.errors import ValidationError
from int8_support import real_faces

from edgefkd.verify.evaluator import PairAccuracy
from edgefkd.verify.metrics import cosine_rows


@pytest.fixture(scope="module")
def fp32_onnx(mobilefacenet_export: Path) -> Path:
    return mobilefacenet_export / "onnx" / "model_fp32.onnx"


@pytest.fixture(scope="module")
def contract(fp32_onnx: Path):
    from edgefkd.runners import artifact_contract

    return artifact_contract(fp32_onnx)


@pytest.fixture(scope="module")
def faces(faces_dir: Path) -> np.ndarray:
    return real_faces(faces_dir, (112, 112))


@pytest.fixture(scope="module")
def pairs_accuracy(pairs_csv: Path, contract) -> PairAccuracy:
    return PairAccuracy(pairs_csv, contract)


def test_openvino_int8_runs_agrees_and_keeps_metadata(mobilefacenet_export, fp32_onnx, contract, faces, tmp_path):
    pytest.importorskip("nncf")
    from edgefkd.exporters.int8_validation import validate_int8
    from edgefkd.exporters.openvino_int8 import quantize_openvino_int8
    from edgefkd.runners import open_runner, read_artifact_metadata

    calib = faces[0::2]
    out = tmp_path / "model_int8.xml"
    info = quantize_openvino_int8(mobilefacenet_export / "openvino" / "model_fp32.xml", out, contract.prepare(calib))
    assert out.is_file() and out.with_suffix(".bin").is_file()
    assert len(info["ignored"]) >= 2 and info["calibration_samples"] == len(calib)
    source = read_artifact_metadata(mobilefacenet_export / "openvino" / "model_fp32.xml")
    written = read_artifact_metadata(out)
    assert all(written[k] == v for k, v in source.items() if k != "edgefkd.precision")
    assert written["edgefkd.precision"] == "int8" and "edgefkd.quantization" in written

    import openvino as ov

    ops = ov.Core().read_model(str(out)).get_ordered_ops()
    assert any(op.get_type_name() == "FakeQuantize" for op in ops), "NNCF inserted no quantizers"
    result = validate_int8(open_runner(fp32_onnx).activate(), open_runner(out).activate(), faces, calib)
    assert result["passed"], result


def test_onnx_accuracy_aware_within_bound_on_pairs(fp32_onnx, contract, faces, pairs_accuracy, tmp_path):
    from edgefkd.exporters.accuracy_aware import quantize_onnx_accuracy_aware

    info = quantize_onnx_accuracy_aware(
        fp32_onnx, tmp_path / "aa.onnx", contract.prepare(faces[0::2]), pairs_accuracy, max_drop=1.2, method="minmax"
    )
    assert info["accuracy_drop"] <= 1.2
    assert info["fp32_accuracy"] == pytest.approx(pairs_accuracy(fp32_onnx))
    assert info["int8_accuracy"] == pytest.approx(pairs_accuracy(tmp_path / "aa.onnx"))


def test_onnx_accuracy_aware_reverts_most_harmful_layers_first(fp32_onnx, contract, faces, tmp_path):
    """An agreement metric with a tight bound forces reverts: check order, effect and report."""
    from edgefkd.exporters.accuracy_aware import quantize_onnx_accuracy_aware
    from edgefkd.runners import open_runner

    inputs = contract.prepare(faces[1::2])
    with open_runner(fp32_onnx) as runner:
        reference = runner.infer(inputs)

    def agreement(path: Path) -> float:  # percent mean cosine to fp32 on unseen faces
        with open_runner(path) as runner:
            return float(cosine_rows(runner.infer(inputs), reference).mean() * 100)

    calib = contract.prepare(faces[0::2])
    plain = quantize_onnx_accuracy_aware(fp32_onnx, tmp_path / "plain.onnx", calib, agreement, max_drop=100.0)
    bound = plain["accuracy_drop"] / 2
    info = quantize_onnx_accuracy_aware(fp32_onnx, tmp_path / "aa.onnx", calib, agreement, max_drop=bound,
                                        ranking_samples=16)
    reverted = info["reverted"]
    assert reverted and info["accuracy_drop"] <= bound
    gains = [r["agreement_gain"] for r in reverted]
    assert gains == sorted(gains, reverse=True)
    assert all(info["kept"][r["node"]] == "accuracy-aware: reverted" for r in reverted)
    with pytest.raises(ValidationError, match="stays above"):
        quantize_onnx_accuracy_aware(fp32_onnx, tmp_path / "never.onnx", calib, agreement, max_drop=bound, max_reverts=0)
    assert not (tmp_path / "never.onnx").exists()


def test_openvino_accuracy_control_on_pairs(fp32_onnx, contract, faces, pairs_accuracy, tmp_path):
    pytest.importorskip("nncf")
    from edgefkd.exporters.openvino_int8 import quantize_openvino_int8

    out = tmp_path / "aa.xml"
    info = quantize_openvino_int8(
        fp32_onnx, out, contract.prepare(faces[0::2]), accuracy_control=pairs_accuracy.from_embed, max_drop=1.2
    )
    assert info["fp32_accuracy"] - info["int8_accuracy"] <= 1.2
    assert info["int8_accuracy"] == pytest.approx(pairs_accuracy(out))
