"""Model FLOPs from an ONNX graph, and a matmul peak measured on the same machine.

Only multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul are counted (1 MAC =
2 FLOPs): they are >99% of the arithmetic of a face-recognition CNN; BatchNorm, PReLU and
additions are memory-bound and left out, as in the usual "MACs" of model cards. Shapes come
from ONNX shape inference after pinning every symbolic dimension (the dynamic batch) to 1.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

COUNTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class FlopCount:
    """MACs for one image (batch 1), in total and per operator type."""

    macs: int
    macs_by_op: dict[str, int] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "gflops": self.flops / 1e9, "macs_by_op": dict(self.macs_by_op)}


def _shape_map(model: Any) -> dict[str, list[int]]:
    """Static shapes of every tensor after shape inference with batch 1."""
    import onnx

    graph = model.graph
    for value in graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.Clear()
                dim.dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    shapes: dict[str, list[int]] = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _node_macs(node: Any, shapes: dict[str, list[int]]) -> int | None:
    """MACs of one counted node, None when a shape it needs is unknown."""
    from onnx import helper

    ins = [shapes.get(name) for name in node.input]
    out = shapes.get(node.output[0])
    if out is None or any(s is None for s in ins[:2]):
        return None
    if node.op_type == "Conv":
        weight = ins[1]  # (Cout, Cin/group, kH, kW...)
        return math.prod(out) * math.prod(weight[1:])
    if node.op_type == "ConvTranspose":
        weight = ins[1]  # (Cin, Cout/group, kH, kW...): each input element feeds Cout/group*k MACs
        return math.prod(ins[0]) * math.prod(weight[1:])
    if node.op_type == "Gemm":
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        a_shape = ins[0]
        k = a_shape[0] if attrs.get("transA", 0) else a_shape[1]
        return math.prod(out) * k
    # MatMul: numpy semantics; the contracted dimension is A's last.
    return math.prod(out) * ins[0][-1]


def count_onnx_macs(path: str | os.PathLike[str]) -> FlopCount:
    """Conv/Gemm/MatMul MACs of an ONNX model for one input image."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise InputError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValueError... for a non-ONNX file
        raise InputError(f"cannot read {path} as ONNX: {exc}") from None
    shapes = _shape_map(model)
    by_op: dict[str, int] = {}
    unknown = []
    for node in model.graph.node:
        if node.op_type not in COUNTED_OPS:
            continue
        macs = _node_macs(node, shapes)
        if macs is None:
            unknown.append(node.name or node.op_type)
            continue
        by_op[node.op_type] = by_op.get(node.op_type, 0) + macs
    if unknown:
        raise InputError(f"{path.name}: shapes unknown after inference for {len(unknown)} node(s), e.g. {unknown[0]}")
    return FlopCount(macs=sum(by_op.values()), macs_by_op=by_op)


def measure_matmul_peak_gflops(size: int = 1024, seconds: float = 1.0, threads: int | None = None) -> dict[str, float]:
    """Best sustained float32 GFLOP/s of square matmuls (numpy's BLAS and torch's, where present).

    The best of many repeats after a warm-up: this is the machine's achievable dense
    arithmetic rate, the yardstick for a model's achieved GFLOP/s.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    flop = 2.0 * size**3
    results: dict[str, float] = {}

    def best_rate(matmul: Any) -> float:
        matmul()
        best = math.inf
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter_ns()
            matmul()
            best = min(best, time.perf_counter_ns() - start)
        return flop / best  # FLOP per ns == GFLOP/s

    results["numpy"] = best_rate(lambda: a @ b)
    try:
        import torch
    except ImportError:
        return results
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        results["torch"] = best_rate(lambda: torch.mm(ta, tb))
    finally:
        torch.set_num_threads(previous)
    return results
