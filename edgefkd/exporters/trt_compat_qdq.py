"""Q/DQ checks of the TensorRT compatibility report: symmetric int8, weights per channel on
their output-channel axis, activations per tensor, and which layers get INT8 kernels."""

from __future__ import annotations

from typing import Any

import numpy as np

from .trt_compat import _QDQ, _STANDARD_DOMAINS, Finding, _Graph


def check_qdq(g: _Graph) -> list[Finding]:
    from onnx import TensorProto

    q_nodes = [n for n in g.nodes if n.op_type in _QDQ and n.domain in _STANDARD_DOMAINS]
    if not q_nodes:
        return []
    out: list[Finding] = []
    nonzero, wrong_type, activation_per_channel, weight_axis = [], [], [], []
    for node in q_nodes:
        label = node.name or node.output[0]
        scale = g.const(node.input[1]) if len(node.input) > 1 else None
        if len(node.input) > 2 and node.input[2]:
            zp_name = node.input[2]
            zp = g.const(zp_name)
            if zp is not None and np.any(zp != 0):
                nonzero.append(label)
            if g.const_dtypes.get(zp_name) not in (None, TensorProto.INT8):
                wrong_type.append(label)
        if scale is not None and scale.size > 1:
            if not _quantizes_weight(g, node):
                activation_per_channel.append(label)
            else:
                expected = _weight_output_axes(g, node)
                if expected and g.attr(node, "axis", 1) not in expected:
                    weight_axis.append(label)
    if nonzero:
        out.append(Finding("error", "qdq-zero-point", f"{len(nonzero)} Q/DQ node(s) have a non-zero zero point: TensorRT supports symmetric quantization only", nonzero))
    if wrong_type:
        out.append(Finding("error", "qdq-dtype", f"{len(wrong_type)} Q/DQ node(s) are not int8 (e.g. uint8): TensorRT's INT8 Q/DQ must be signed int8", wrong_type))
    if activation_per_channel:
        out.append(Finding("error", "qdq-per-channel-activation", f"{len(activation_per_channel)} Q/DQ node(s) quantize an activation per channel: TensorRT supports per-channel scales for weights only", activation_per_channel))
    if weight_axis:
        out.append(Finding("warning", "qdq-weight-axis", f"{len(weight_axis)} per-channel weight Q/DQ node(s) are not on the output-channel axis of the weight they feed (Conv 0, ConvTranspose 1, MatMul last, Gemm by transB)", weight_axis))
    quantized, float_layers = [], []
    for node in g.nodes:
        if node.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            continue
        producers = [g.producer.get(name) for name in node.input[:2]]
        if all(p is not None and p.op_type == "DequantizeLinear" for p in producers):
            quantized.append(node.name or node.output[0])
        else:
            float_layers.append(node.name or node.output[0])
    out.append(Finding(
        "info",
        "qdq-placement",
        f"{len(q_nodes)} Q/DQ nodes; {len(quantized)} Conv/Gemm/MatMul layer(s) have Q/DQ on both data and weights "
        f"(INT8 kernels), {len(float_layers)} stay in float",
        float_layers,
    ))
    dangling = [n.name or n.output[0] for n in q_nodes if n.op_type == "QuantizeLinear"
                and not any(c.op_type == "DequantizeLinear" for c in g.consumers.get(n.output[0], []))]
    if dangling:
        out.append(Finding("warning", "qdq-unpaired", f"{len(dangling)} QuantizeLinear node(s) are not followed by a DequantizeLinear", dangling))
    return out


def _quantizes_weight(g: _Graph, node: Any) -> bool:
    """True for Q/DQ on a constant weight: DQ(int8 initializer), or the fp32-weight -> Q -> DQ
    form pytorch-quantization and ModelOpt write (both the Q and its DQ count)."""
    if g.const(node.input[0]) is not None:
        return True
    producer = g.producer.get(node.input[0])
    return node.op_type == "DequantizeLinear" and producer is not None and producer.op_type == "QuantizeLinear" \
        and g.const(producer.input[0]) is not None


def _weight_output_axes(g: _Graph, node: Any) -> tuple[int, ...]:
    """Axis values (both signs) naming the output channels of the weight this Q/DQ feeds."""
    tensor = node.output[0]
    consumers = g.consumers.get(tensor, [])
    if node.op_type == "QuantizeLinear":  # judge the Q by what its DQ feeds
        consumers = [c for dq in consumers if dq.op_type == "DequantizeLinear" for c in g.consumers.get(dq.output[0], [])]
        tensor = next((dq.output[0] for dq in g.consumers.get(node.output[0], []) if dq.op_type == "DequantizeLinear"), tensor)
    weight = g.const(node.input[0])
    if weight is None and g.producer.get(node.input[0]) is not None:
        weight = g.const(g.producer[node.input[0]].input[0])
    rank = weight.ndim if weight is not None else 4
    for consumer in consumers:
        if len(consumer.input) < 2 or consumer.input[1] != tensor:
            continue
        axis = {"Conv": 0, "ConvTranspose": 1, "MatMul": rank - 1}.get(consumer.op_type)
        if consumer.op_type == "Gemm":
            axis = 0 if g.attr(consumer, "transB", 0) else 1
        if axis is not None:
            return (axis, axis - rank)
    return ()
