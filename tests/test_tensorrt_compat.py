"""Static TensorRT compatibility report on real and planted ONNX graphs (no TensorRT needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trt_graphs import dynamic_batch_copy, planted_graph, qdq_graph

from edgefkd.errors import InputError
from edgefkd.exporters.trt_compat import check_onnx, write_compat_report


@pytest.fixture(scope="module")
def dynamic_mobilefacenet(mobilefacenet_upstream_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dynamic_batch_copy(mobilefacenet_upstream_onnx, tmp_path_factory.mktemp("mfn") / "mobilefacenet_dyn.onnx")


def test_upstream_mobilefacenet_is_flagged_as_fixed_batch(mobilefacenet_upstream_onnx: Path) -> None:
    import onnx

    report = check_onnx(mobilefacenet_upstream_onnx, (1, 8, 32))
    model = onnx.load(str(mobilefacenet_upstream_onnx))
    assert report.verdict == "compatible with warnings"
    assert report.count("error") == 0
    assert {"fixed-batch", "reshape-fixed-batch"} <= report.codes("warning")
    assert report.inputs[0].name == model.graph.input[0].name
    fixed = next(f for f in report.findings if f.code == "fixed-batch")
    assert "not dynamic" in fixed.message
    # Every op of the real network is counted, and every one is in TensorRT's table.
    assert sum(report.op_counts.values()) == len(model.graph.node)
    assert not report.codes() & {"unknown-op", "unsupported-op", "custom-op"}
    # MobileFaceNet ends in a 7x7 global depthwise conv over a 7x7 map.
    assert "gdconv" in report.codes("info")


def test_dynamic_batch_export_is_compatible(dynamic_mobilefacenet: Path) -> None:
    report = check_onnx(dynamic_mobilefacenet, (1, 8, 32))
    assert report.count("error") == 0
    assert "dynamic-batch" in report.codes("info")
    assert not report.codes() & {"fixed-batch", "reshape-fixed-batch"}
    note = next(f for f in report.findings if f.code == "dynamic-batch")
    assert "1..32" in note.message


def test_dynamic_batch_copy_is_a_working_model(dynamic_mobilefacenet: Path, mobilefacenet_upstream_onnx: Path) -> None:
    """The fixture graph is real: batch 3 through it equals three batch-1 runs of the upstream."""
    import onnxruntime as ort

    x = np.random.default_rng(0).normal(size=(3, 3, 112, 112)).astype(np.float32)
    dyn = ort.InferenceSession(str(dynamic_mobilefacenet), providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(str(mobilefacenet_upstream_onnx), providers=["CPUExecutionProvider"])
    batched = dyn.run(None, {dyn.get_inputs()[0].name: x})[0]
    single = np.concatenate([ref.run(None, {ref.get_inputs()[0].name: x[i : i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-4)


def test_mobilefacenet_export_fixture_when_available(request: pytest.FixtureRequest) -> None:
    try:
        export_dir = request.getfixturevalue("mobilefacenet_export")
    except pytest.FixtureLookupError:
        pytest.skip("the mobilefacenet_export fixture (lead's export) is not in this checkout yet")
    from edgefkd.manifest import Manifest

    manifest = Manifest.read(export_dir)
    onnx_entry = manifest.find("onnx", "fp32")[0]
    report = check_onnx(Path(export_dir) / onnx_entry.path, (1, 8, 32))
    assert report.count("error") == 0
    assert "dynamic-batch" in report.codes("info") and "fixed-batch" not in report.codes()
    assert "contract" in report.codes("info")  # edgefkd exports carry the contract


def test_planted_unsupported_ops_make_it_incompatible(tmp_path: Path) -> None:
    report = check_onnx(planted_graph(tmp_path / "planted.onnx"))
    assert report.verdict == "incompatible"
    by_code = {f.code: f for f in report.findings}
    assert by_code["custom-op"].nodes == ["plugin"] and "com.example.faces" in by_code["custom-op"].message
    assert by_code["unsupported-op"].nodes == ["det"]
    assert by_code["resize-mode"].severity == "error" and "cubic" in by_code["resize-mode"].message
    assert by_code["prelu-slope"].severity == "warning" and by_code["prelu-slope"].nodes == ["prelu"]


def test_op_missing_from_the_table_and_ops_marked_n_are_errors(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from edgefkd.exporters import trt_onnx_ops

    assert "BitwiseAnd" in trt_onnx_ops.UNSUPPORTED  # a standard op the table marks "N"
    graph = helper.make_graph(
        [helper.make_node("BitwiseAnd", ["a", "b"], ["c"], name="band"),
         helper.make_node("L2NormalizeEmbedding", ["c"], ["y"], name="l2")],  # in no table at all
        "g",
        [helper.make_tensor_value_info(n, TensorProto.INT32, [4]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    path = tmp_path / "ops.onnx"
    onnx.save(model, str(path))
    report = check_onnx(path)
    by_code = {f.code: f.nodes for f in report.findings}
    assert by_code["unsupported-op"] == ["band"] and by_code["unknown-op"] == ["l2"]
    assert report.verdict == "incompatible"


def test_qdq_with_symmetric_int8_is_fine(tmp_path: Path) -> None:
    report = check_onnx(qdq_graph(tmp_path / "qdq.onnx"), (1, 8, 32))
    assert report.count("error") == 0
    placement = next(f for f in report.findings if f.code == "qdq-placement")
    assert "1 Conv/Gemm/MatMul layer(s) have Q/DQ on both" in placement.message


def test_qdq_with_non_zero_zero_point_is_an_error(tmp_path: Path) -> None:
    report = check_onnx(qdq_graph(tmp_path / "qdq_zp.onnx", zero_point=5), (1, 8, 32))
    assert report.verdict == "incompatible"
    finding = next(f for f in report.findings if f.code == "qdq-zero-point")
    assert set(finding.nodes) == {"q_x", "dq_x"}


def test_qdq_with_uint8_is_an_error(tmp_path: Path) -> None:
    report = check_onnx(qdq_graph(tmp_path / "qdq_u8.onnx", zero_point=128, zp_dtype="uint8"), (1, 8, 32))
    assert {"qdq-dtype", "qdq-zero-point"} <= report.codes("error")


def test_report_files_are_written(tmp_path: Path, mobilefacenet_upstream_onnx: Path) -> None:
    reports = [check_onnx(mobilefacenet_upstream_onnx), check_onnx(qdq_graph(tmp_path / "q.onnx", zero_point=5))]
    json_path, md_path = write_compat_report(reports, tmp_path / "out", root=tmp_path)
    data = json.loads(json_path.read_text())
    assert [m["verdict"] for m in data["models"]] == ["compatible with warnings", "incompatible"]
    assert data["models"][1]["onnx"] == "q.onnx"  # relative to the root given
    text = md_path.read_text()
    assert "fixed-batch" in text and "qdq-zero-point" in text


def test_not_an_onnx_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a readable ONNX model"):
        check_onnx(bad)
    with pytest.raises(InputError, match="does not exist"):
        check_onnx(tmp_path / "missing.onnx")


def _weight_qdq_graph(path: Path, op: str, axis: int, form: str, opset: int = 17) -> Path:
    """x -> op(x, W) with a per-channel quantized weight, in either standard form:
    'int8' = DQ(int8 initializer), 'fp32' = fp32 initializer -> Q -> DQ (ModelOpt/pytorch-quantization)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shapes = {"Conv": ((4, 3, 3, 3), ["batch", 3, 8, 8]), "ConvTranspose": ((3, 4, 3, 3), ["batch", 3, 8, 8]),
              "MatMul": ((16, 4), ["batch", 16])}
    w_shape, x_shape = shapes[op]
    rng = np.random.default_rng(0)
    channels = w_shape[axis]
    inits = [numpy_helper.from_array(np.full((channels,), 0.01, np.float32), "w_scale"),
             numpy_helper.from_array(np.zeros((channels,), np.int8), "w_zp")]
    nodes = []
    if form == "int8":
        inits.append(numpy_helper.from_array(rng.integers(-127, 128, size=w_shape).astype(np.int8), "w_q"))
    else:
        inits.append(numpy_helper.from_array(rng.normal(size=w_shape).astype(np.float32), "w"))
        nodes.append(helper.make_node("QuantizeLinear", ["w", "w_scale", "w_zp"], ["w_q"], name="q_w", axis=axis))
    nodes += [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["wd"], name="dq_w", axis=axis),
              helper.make_node(op, ["x", "wd"], ["y"], name="layer")]
    graph = helper.make_graph(nodes, "w", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("op, axis", [("Conv", 0), ("ConvTranspose", 1), ("MatMul", 1)])
@pytest.mark.parametrize("form", ["int8", "fp32"])
def test_per_channel_weights_on_the_output_axis_are_fine(tmp_path: Path, op: str, axis: int, form: str) -> None:
    report = check_onnx(_weight_qdq_graph(tmp_path / "w.onnx", op, axis, form))
    assert not report.codes() & {"qdq-per-channel-activation", "qdq-weight-axis"}, report.findings
    assert report.count("error") == 0


@pytest.mark.parametrize("op, axis", [("Conv", 1), ("ConvTranspose", 0), ("MatMul", 0)])
def test_per_channel_weights_on_another_axis_are_flagged(tmp_path: Path, op: str, axis: int) -> None:
    report = check_onnx(_weight_qdq_graph(tmp_path / "w.onnx", op, axis, "fp32"))
    finding = next(f for f in report.findings if f.code == "qdq-weight-axis")
    assert set(finding.nodes) == {"q_w", "dq_w"} and "qdq-per-channel-activation" not in report.codes()


@pytest.mark.parametrize("opset, severity, families", [
    (17, "info", ""), (18, "warning", "TensorRT 8.6 ("), (21, "warning", "TensorRT 8.6, TensorRT 10 ("), (25, "error", "TensorRT 11")])
def test_opset_is_checked_per_tensorrt_generation(tmp_path: Path, opset: int, severity: str, families: str) -> None:
    finding = next(f for f in check_onnx(_weight_qdq_graph(tmp_path / "w.onnx", "Conv", 0, "int8", opset)).findings
                   if f.code == "opset")
    assert finding.severity == severity and families in finding.message


def test_operator_tables_per_generation(tmp_path: Path) -> None:
    """LayerNormalization is in 8.6 (not flagged), Gelu is not (flagged for 8.6), Swish is 11-only."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.ones(8, np.float32), "g")]
    nodes = [helper.make_node("LayerNormalization", ["x", "g"], ["a"], name="ln"),
             helper.make_node("Gelu", ["a"], ["b"], name="gelu"),
             helper.make_node("Swish", ["b"], ["y"], name="swish")]
    graph = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 24)])
    model.ir_version = 10
    path = tmp_path / "ops.onnx"
    onnx.save(model, str(path))
    by_code = {f.code: f for f in check_onnx(path).findings}
    assert by_code["newer-op"].nodes == ["gelu"] and "8.6" in by_code["newer-op"].message
    assert by_code["trt11-op"].nodes == ["swish"] and "unknown-op" not in by_code
