"""Small ONNX graphs for the TensorRT tests (built here; never copied from shared/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save(model, path: Path) -> Path:
    import onnx

    model.ir_version = 10  # onnx 1.23 defaults to IR 14, which ONNX Runtime 1.31 refuses
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def dynamic_batch_copy(upstream_onnx: Path, out: Path) -> Path:
    """The upstream fixed-batch MobileFaceNet with a dynamic batch axis and a batch-agnostic
    Reshape (0 = copy the batch): what a proper export looks like."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(upstream_onnx))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    reshape_shapes = {n.input[1] for n in model.graph.node if n.op_type == "Reshape"}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] in reshape_shapes:
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array([0, -1], dtype=np.int64)))
    return save(model, out)


def planted_graph(out: Path) -> Path:
    """Conv -> PRelu with a (C,) slope -> cubic Resize -> custom-domain op, plus an unsupported Det."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    slope = numpy_helper.from_array(np.full((4,), 0.25, np.float32), "slope")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c", "slope"], ["p"], name="prelu"),
        helper.make_node("Resize", ["p", "", "scales"], ["r"], name="resize", mode="cubic"),
        helper.make_node("FaceAlignPlugin", ["r"], ["y"], name="plugin", domain="com.example.faces"),
        helper.make_node("Det", ["m"], ["d"], name="det"),
    ]
    graph = helper.make_graph(
        nodes, "planted",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8]),
         helper.make_tensor_value_info("m", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("d", TensorProto.FLOAT, [])],
        [w, slope, scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.faces", 1)])
    import onnx

    model.ir_version = 10
    onnx.save(model, str(out))  # the custom op has no schema, so the checker is skipped
    return out


def qdq_graph(out: Path, zero_point: int = 0, zp_dtype: str = "int8") -> Path:
    """x -> Q/DQ (per-tensor) -> Conv with per-channel DQ int8 weights -> y (dynamic batch)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w_q = numpy_helper.from_array(rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8), "w_q")
    w_scale = numpy_helper.from_array(np.full((4,), 0.01, np.float32), "w_scale")
    w_zp = numpy_helper.from_array(np.zeros((4,), np.int8), "w_zp")
    x_scale = numpy_helper.from_array(np.array(0.02, np.float32), "x_scale")
    x_zp = numpy_helper.from_array(np.array(zero_point, dtype=np.dtype(zp_dtype)), "x_zp")
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xd"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["wd"], name="dq_w", axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["y"], name="conv", pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes, "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 8, 8])],
        [w_q, w_scale, w_zp, x_scale, x_zp],
    )
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), out)
