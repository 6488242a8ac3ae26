"""Q/DQ INT8 ONNX of the real MobileFaceNet: TensorRT form, agreement, face-aware plan, keep-fp."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgefkd.errors import InputError
from int8_support import real_faces

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def fp32_onnx(mobilefacenet_export: Path) -> Path:
    return mobilefacenet_export / "onnx" / "model_fp32.onnx"


@pytest.fixture(scope="module")
def faces(faces_dir: Path) -> np.ndarray:
    return real_faces(faces_dir, (112, 112))


@pytest.fixture(scope="module")
def split(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(calibration faces, validation faces): disjoint halves of the 75 real faces."""
    return faces[0::2], faces[1::2]


@pytest.fixture(scope="module")
def contract(fp32_onnx: Path):
    from edgefkd.runners import artifact_contract

    return artifact_contract(fp32_onnx)


@pytest.fixture(scope="module")
def int8_entropy(tmp_path_factory, fp32_onnx, contract, split) -> tuple[Path, dict]:
    from edgefkd.exporters.quantize_onnx import quantize_onnx_qdq

    out = tmp_path_factory.mktemp("int8") / "model_int8_qdq.onnx"
    calib = contract.prepare(split[0])
    info = quantize_onnx_qdq(fp32_onnx, out, [calib[i : i + 16] for i in range(0, len(calib), 16)], method="entropy")
    return out, info


def _initializers(model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_qdq_graph_is_tensorrt_style(int8_entropy, fp32_onnx):
    path, info = int8_entropy
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    inits = _initializers(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq, "no Q/DQ nodes were inserted"
    for node in qdq:
        zero = inits[node.input[2]]
        assert zero.dtype == np.int8 and not zero.any(), f"{node.name}: zero point is not an int8 0"
    quantized_ops = 0
    for node in model.graph.node:
        dq_inputs = [producers.get(i) for i in node.input if producers.get(i) is not None
                     and producers[i].op_type == "DequantizeLinear"]
        if not dq_inputs:
            continue
        assert node.op_type in ("Conv", "Gemm", "MatMul"), f"Q/DQ feeds a {node.op_type}"
        quantized_ops += 1
        activation_dq, weight_dq = producers[node.input[0]], producers[node.input[1]]
        assert producers[activation_dq.input[0]].op_type == "QuantizeLinear"
        assert inits[activation_dq.input[1]].ndim == 0, "activation scale must be per-tensor"
        weight = inits[weight_dq.input[0]]
        assert weight.dtype == np.int8 and np.abs(weight.astype(int)).max() <= 127
        axis = next(a.i for a in weight_dq.attribute if a.name == "axis")
        assert axis == 0 and inits[weight_dq.input[1]].shape == (weight.shape[0],), "per-channel on output channels"
    assert quantized_ops == info["quantized_nodes"]
    assert model.ir_version <= 10
    source = {p.key: p.value for p in onnx.load(str(fp32_onnx)).metadata_props}
    props = {p.key: p.value for p in model.metadata_props}
    assert all(props[k] == v for k, v in source.items() if k.startswith("edgefkd.") and k != "edgefkd.precision")
    assert props["edgefkd.precision"] == "int8"
    assert json.loads(props["edgefkd.quantization"])["method"] == "entropy"


def test_int8_runs_in_onnxruntime_and_agrees_on_unseen_faces(int8_entropy, fp32_onnx, faces, split):
    from edgefkd.exporters.int8_validation import DEFAULT_INT8_COSINE_P1, validate_int8
    from edgefkd.runners import open_runner

    result = validate_int8(open_runner(fp32_onnx).activate(), open_runner(int8_entropy[0]).activate(), faces, split[0])
    assert result["dropped_as_calibration"] == len(split[0])
    assert result["validation_faces"] == len(split[1])
    assert result["passed"], result
    assert result["cosine_p1"] >= DEFAULT_INT8_COSINE_P1


def _float_conv_names(path: Path) -> set[str]:
    model = onnx.load(str(path))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    return {n.name for n in model.graph.node if n.op_type == "Conv" and producers.get(n.input[1]) != "DequantizeLinear"}


def test_face_aware_keeps_first_conv_and_embedding_head_float(int8_entropy, fp32_onnx, tmp_path, contract, split):
    from edgefkd.exporters.quantize_onnx import first_quantizable_nodes, quantize_onnx_qdq

    model = onnx.load(str(fp32_onnx))
    first = set(first_quantizable_nodes(model.graph))
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    kept = _float_conv_names(int8_entropy[0])
    assert first and first <= kept
    assert convs[-1] in kept, "the last conv (embedding projection) must stay float"
    assert set(int8_entropy[1]["kept"]) == kept

    plain = tmp_path / "plain.onnx"
    info = quantize_onnx_qdq(fp32_onnx, plain, contract.prepare(split[0][:16]), method="minmax", face_aware=False)
    assert _float_conv_names(plain) == set() and info["kept_nodes"] == 0


def test_keep_fp_patterns(fp32_onnx, tmp_path, contract, split):
    from edgefkd.exporters.quantize_onnx import quantize_onnx_qdq

    convs = [n.name for n in onnx.load(str(fp32_onnx)).graph.node if n.op_type == "Conv"]
    glob_target, regex_target = convs[5], convs[9]
    batch = contract.prepare(split[0][:16])
    out = tmp_path / "keep.onnx"
    info = quantize_onnx_qdq(fp32_onnx, out, batch, method="minmax", keep_fp=[glob_target, f"re:^{regex_target}$"])
    kept = _float_conv_names(out)
    assert {glob_target, regex_target} <= kept
    assert info["kept"][glob_target] == f"keep-fp {glob_target}"
    assert all(reason.startswith(("keep-fp", "face-aware")) for reason in info["kept"].values())
    with pytest.raises(InputError, match="matches no"):
        quantize_onnx_qdq(fp32_onnx, tmp_path / "none.onnx", batch, keep_fp=["*no-such-layer*"])
    assert not (tmp_path / "none.onnx").exists()


def test_streaming_calibration_ranges_are_sane(fp32_onnx, contract, split):
    from edgefkd.exporters import quantize_onnx as q

    model = q.load_fp32_onnx(fp32_onnx)
    plan = q.plan_quantization(model)
    tensors = q.activation_inputs(model, plan)
    x = contract.prepare(split[0])
    batches = [x[i : i + 8] for i in range(0, len(x), 8)]
    ranges = {m: q.calibrate_ranges(model, tensors, batches, m) for m in q.CALIBRATION_METHODS}
    # minmax must equal the true abs-max over all faces at once (one un-batched pass).
    session = q._collector_session(model, tensors)
    exact = {n: float(np.abs(v).max()) for n, v in zip(tensors, session.run(tensors, {model.graph.input[0].name: x}))}
    for name in tensors:
        assert ranges["minmax"][name] == pytest.approx(exact[name], rel=1e-5)
        for method in ("entropy", "percentile"):
            assert 0 < ranges[method][name] <= exact[name] * (1 + 1e-6), (method, name)
    assert any(ranges["percentile"][n] < exact[n] for n in tensors)
    assert any(ranges["entropy"][n] < exact[n] for n in tensors)


def test_bad_inputs_are_one_line_errors(fp32_onnx, tmp_path, contract, split):
    from edgefkd.exporters.quantize_onnx import quantize_onnx_qdq

    batch = contract.prepare(split[0][:4])
    with pytest.raises(InputError, match="calibration method"):
        quantize_onnx_qdq(fp32_onnx, tmp_path / "x.onnx", batch, method="kl")
    with pytest.raises(InputError, match="not found"):
        quantize_onnx_qdq(tmp_path / "missing.onnx", tmp_path / "x.onnx", batch)
    with pytest.raises(InputError, match="no calibration data"):
        quantize_onnx_qdq(fp32_onnx, tmp_path / "x.onnx", [])
    assert not (tmp_path / "x.onnx").exists()
