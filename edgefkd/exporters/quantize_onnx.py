"""Explicit Q/DQ INT8 ONNX in the form TensorRT consumes, calibrated by streaming.

The graph this writes is the single INT8 artifact that ONNX Runtime runs on CPU for
checking and that TensorRT builds as a strongly-typed network:

- symmetric: every QuantizeLinear/DequantizeLinear zero point is an int8 0;
- weights: int8 initializers with a per-channel DequantizeLinear on the output-channel
  axis (0 for Conv, the output axis for Gemm/MatMul), scale = max|w| / 127;
- activations: one per-tensor QuantizeLinear -> DequantizeLinear pair on each input of a
  quantized op (Q/DQ at op inputs), scale = calibrated amax / 127.

Calibration streams: pass 1 keeps a running abs-max per collected tensor, pass 2 (entropy
and percentile only) fills a fixed-range histogram of |x| per tensor. Only the tensors that
feed quantized ops are collected, a batch at a time, so memory is bounded by one batch of
activations plus (tensors x bins) counters, not by the whole calibration set. ONNX
Runtime's own entropy/percentile calibrators keep every activation of every batch (13 GB
for an IResNet-50 in a trial here), which is why they are not used.

Face-aware defaults keep the first convolution (pixel-level detail, 3 input channels: tiny
cost in float) and the embedding head (the last conv/linear before the output, whose error
lands directly on the embedding) in float. PReLU is treated as sensitive: it gets no Q/DQ
of its own, and where its output feeds a quantized op that tensor is calibrated with its
full abs-max range, because PReLU's learned negative slopes make a long, asymmetric tail
that entropy/percentile clipping cuts into.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import ExportError, InputError
from ..fileio import atomic_path
from ..formats.onnx import merge_metadata

if TYPE_CHECKING:  # pragma: no cover
    import onnx

CALIBRATION_METHODS = ("entropy", "percentile", "minmax")
QUANTIZABLE_OPS = ("Conv", "Gemm", "MatMul")
SENSITIVE_PRODUCERS = ("PRelu",)
#: int8 symmetric restricted range, as TensorRT uses it.
INT8_MAX = 127.0
#: ir_version ONNX Runtime 1.31 accepts for models we touch (onnx 1.23 defaults to 14).
MAX_IR_VERSION = 10
MIN_OPSET = 13  # per-axis DequantizeLinear
QUANTIZATION_METADATA_KEY = "edgefkd.quantization"
PRECISION_METADATA_KEY = "edgefkd.precision"


# --------------------------------------------------------------------------------------
# calibration data
# --------------------------------------------------------------------------------------
def replayable_batches(calib_batches: Iterable[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Calibration input as a list of prepared batches that can be iterated several times.

    Prepared model inputs are small next to the activations they produce (512 faces at
    112x112 are 77 MB), so a one-shot iterator is materialised once rather than asking
    the caller to rebuild it for each calibration pass.
    """
    if isinstance(calib_batches, np.ndarray):
        batches = [calib_batches]
    else:
        batches = [np.asarray(b) for b in calib_batches]
    batches = [b[None] if b.ndim == 3 else b for b in batches]
    if not batches or sum(len(b) for b in batches) == 0:
        raise InputError("no calibration data: give at least one prepared face batch")
    return batches


def rebatch(batches: Sequence[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """Yield the samples of `batches` in chunks of `batch_size` (last one may be short)."""
    pending: list[np.ndarray] = []
    count = 0
    for batch in batches:
        for start in range(0, len(batch), batch_size):
            part = batch[start : start + batch_size]
            pending.append(part)
            count += len(part)
            while count >= batch_size:
                merged = np.concatenate(pending) if len(pending) > 1 else pending[0]
                yield merged[:batch_size]
                rest = merged[batch_size:]
                pending, count = ([rest], len(rest)) if len(rest) else ([], 0)
    if count:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


# --------------------------------------------------------------------------------------
# which nodes to quantize
# --------------------------------------------------------------------------------------
@dataclass
class QuantizationPlan:
    """Quantized ops (name -> weight input index and axis) and kept ones (name -> reason)."""

    quantized: dict[str, tuple[int, int]] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)

    def without(self, names: Iterable[str], reason: str) -> "QuantizationPlan":
        names = set(names)
        plan = QuantizationPlan({k: v for k, v in self.quantized.items() if k not in names}, dict(self.kept))
        plan.kept.update({n: reason for n in names if n in self.quantized})
        return plan


def matches_pattern(pattern: str, name: str, op_type: str) -> bool:
    """A keep-fp pattern: `re:REGEX` searched in the name, else an fnmatch glob on name or op type."""
    if pattern.startswith("re:"):
        return re.search(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(op_type, pattern)


def _weight_axis(node: "onnx.NodeProto", initializers: dict[str, Any]) -> tuple[int, int] | None:
    """(weight input index, output-channel axis) for a quantizable node, None if no constant weight."""
    if len(node.input) < 2 or node.input[1] not in initializers:
        return None
    rank = len(initializers[node.input[1]].dims)
    if node.op_type == "Conv":
        return 1, 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 1, 0 if trans_b else 1
    return 1, rank - 1  # MatMul: (..., in, out)


def ensure_node_names(model: "onnx.ModelProto") -> None:
    """Give unnamed nodes a stable name so keep-fp patterns and reports can refer to them."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)


def _consumers(graph: "onnx.GraphProto") -> dict[str, list["onnx.NodeProto"]]:
    out: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _producers(graph: "onnx.GraphProto") -> dict[str, "onnx.NodeProto"]:
    return {name: node for node in graph.node for name in node.output}


def first_quantizable_nodes(graph: "onnx.GraphProto") -> list[str]:
    """Quantizable nodes reached from the graph inputs without crossing another one."""
    consumers = _consumers(graph)
    initializer_names = {i.name for i in graph.initializer}
    frontier = [i.name for i in graph.input if i.name not in initializer_names]
    found: list[str] = []
    seen: set[str] = set()
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            if node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type in QUANTIZABLE_OPS:
                found.append(node.name)
            else:
                frontier.extend(node.output)
    return found


def pooled_tensors(model: "onnx.ModelProto") -> set[str]:
    """Tensors with no spatial extent left: rank 2, or rank 4 with H = W = 1 (shape inference)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # unknown custom ops: no shapes, the head is then the last conv/linear only
        return set()
    pooled = set()
    graph = inferred.graph
    for info in list(graph.value_info) + list(graph.output):
        dims = info.type.tensor_type.shape.dim
        if len(dims) == 2 or (len(dims) == 4 and all(d.HasField("dim_value") and d.dim_value == 1 for d in dims[2:])):
            pooled.add(info.name)
    return pooled


def head_quantizable_nodes(graph: "onnx.GraphProto", pooled: set[str] = frozenset()) -> list[str]:
    """The embedding head: the last conv/linear before each output, and any conv/linear
    before it that already works on pooled tensors (e.g. MobileFaceNet's global depthwise
    conv, whose 7x7 kernel does the pooling). The walk back stops at the first spatial
    tensor past the last conv/linear, so squeeze-excitation 1x1 convs are not reached."""
    producers = _producers(graph)
    frontier = [(o.name, False) for o in graph.output]
    found: list[str] = []
    seen: set[str] = set()
    while frontier:
        tensor, past_head = frontier.pop()
        if past_head and tensor not in pooled:
            continue
        node = producers.get(tensor)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in QUANTIZABLE_OPS:
            found.append(node.name)
            frontier.append((node.input[0], True))
        else:
            frontier.extend((name, past_head) for name in node.input)
    return found


def plan_quantization(
    model: "onnx.ModelProto", keep_fp: Sequence[str] = (), face_aware: bool = True
) -> QuantizationPlan:
    """Decide which Conv/Gemm/MatMul nodes get Q/DQ and why the others stay float."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    plan = QuantizationPlan()
    for node in graph.node:
        if node.op_type not in QUANTIZABLE_OPS:
            continue
        weight = _weight_axis(node, initializers)
        if weight is None:
            plan.kept[node.name] = "no constant weight"
        else:
            plan.quantized[node.name] = weight
    if face_aware:
        plan = plan.without(first_quantizable_nodes(graph), "face-aware: first convolution")
        plan = plan.without(head_quantizable_nodes(graph, pooled_tensors(model)), "face-aware: embedding head")
    op_types = {n.name: n.op_type for n in graph.node}
    for pattern in keep_fp:
        hits = [n for n in list(plan.quantized) + list(plan.kept) if matches_pattern(pattern, n, op_types[n])]
        if not hits:
            raise InputError(f"--keep-fp pattern {pattern!r} matches no Conv/Gemm/MatMul node of the model")
        plan = plan.without(hits, f"keep-fp {pattern}")
    return plan


def activation_inputs(model: "onnx.ModelProto", plan: QuantizationPlan) -> list[str]:
    """Names of the activation tensors feeding quantized nodes (input 0), in graph order."""
    names: list[str] = []
    for node in model.graph.node:
        if node.name in plan.quantized and node.input[0] not in names:
            names.append(node.input[0])
    return names


# --------------------------------------------------------------------------------------
# streaming calibration
# --------------------------------------------------------------------------------------
def _fixed_batch(model: "onnx.ModelProto") -> int | None:
    dim = model.graph.input[0].type.tensor_type.shape.dim
    return dim[0].dim_value if dim and dim[0].HasField("dim_value") else None


def _collector_session(model: "onnx.ModelProto", tensor_names: Sequence[str]):
    """An ONNX Runtime session whose outputs are the tensors to calibrate."""
    import onnx
    import onnxruntime as ort

    collector = onnx.ModelProto()
    collector.CopyFrom(model)
    del collector.graph.output[:]
    collector.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in tensor_names
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Every collected tensor is a graph output, so the arena cannot recycle its blocks; without
    # the arena each batch's buffers are returned to the allocator instead of being pooled.
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(collector.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _iterate_activations(
    model: "onnx.ModelProto", tensor_names: Sequence[str], batches: Sequence[np.ndarray], batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
    """Per batch: {tensor name: value} for the requested tensors (graph inputs included)."""
    input_name = model.graph.input[0].name
    computed = [n for n in tensor_names if n != input_name]
    session = _collector_session(model, computed) if computed else None
    fixed = _fixed_batch(model)
    for batch in rebatch(batches, fixed or batch_size):
        values = dict(zip(computed, session.run(computed, {input_name: batch}))) if session else {}
        if input_name in tensor_names:
            values[input_name] = batch.astype(np.float32, copy=False)
        yield values
        del values


def entropy_amax(hist: np.ndarray, amax: float, quant_bins: int = 128, stride: int = 4) -> float:
    """TensorRT-style KL-divergence threshold on a histogram of |x| over [0, amax]."""
    hist = hist.astype(np.float64)
    # After ReLU/Clip most values are exact zeros; left in, that spike dominates the
    # divergence and drags the threshold far too low (as TensorRT's calibrator, flatten it).
    hist[0] = hist[1]
    nbins = len(hist)
    bin_width = amax / nbins
    best_kl, best_i = np.inf, nbins
    for i in range(quant_bins, nbins + 1, stride):
        reference = hist[:i]
        p = reference.copy()
        p[-1] += hist[i:].sum()  # clipped outliers pile up on the last kept bin
        chunk = (np.arange(i) * quant_bins) // i
        nonzero = reference > 0
        sums = np.bincount(chunk, weights=reference, minlength=quant_bins)
        counts = np.bincount(chunk, weights=nonzero, minlength=quant_bins)
        q = np.where(nonzero, (sums / np.maximum(counts, 1))[chunk], 0.0)
        p_total, q_total = p.sum(), q.sum()
        if p_total == 0 or q_total == 0:
            continue
        mask = p > 0
        p_n = p[mask] / p_total
        q_n = np.maximum(q[mask] / q_total, 1e-12)
        kl = float(np.sum(p_n * np.log(p_n / q_n)))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return (best_i + 0.5) * bin_width if best_i < nbins else amax


def percentile_amax(hist: np.ndarray, amax: float, percentile: float) -> float:
    """The |x| value below which `percentile` % of the histogram mass lies."""
    cumulative = np.cumsum(hist, dtype=np.float64)
    if cumulative[-1] == 0:
        return amax
    index = int(np.searchsorted(cumulative, cumulative[-1] * percentile / 100.0))
    return min(amax, (index + 1) * amax / len(hist))


def calibrate_ranges(
    model: "onnx.ModelProto",
    tensor_names: Sequence[str],
    calib_batches: Sequence[np.ndarray],
    method: str = "entropy",
    full_range: Iterable[str] = (),
    batch_size: int = 16,
    bins: int = 2048,
    percentile: float = 99.99,
) -> dict[str, float]:
    """Symmetric amax per tensor, streamed a batch at a time.

    Tensors in `full_range` (the sensitive ones) always get their abs-max.
    """
    if method not in CALIBRATION_METHODS:
        raise InputError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    amax = {name: 0.0 for name in tensor_names}
    for values in _iterate_activations(model, tensor_names, calib_batches, batch_size):
        for name, value in values.items():
            amax[name] = max(amax[name], float(np.max(np.abs(value))) if value.size else 0.0)
    if method == "minmax":
        return amax
    full_range = set(full_range)
    hist_names = [n for n in tensor_names if n not in full_range and amax[n] > 0]
    hists = {name: np.zeros(bins, dtype=np.int64) for name in hist_names}
    if hist_names:
        for values in _iterate_activations(model, hist_names, calib_batches, batch_size):
            for name in hist_names:
                scaled = np.abs(values[name]).ravel() * np.float32(bins / amax[name])
                index = np.minimum(scaled.astype(np.int64), bins - 1)
                hists[name] += np.bincount(index, minlength=bins)
    ranges = dict(amax)
    for name in hist_names:
        if method == "entropy":
            ranges[name] = entropy_amax(hists[name], amax[name])
        else:
            ranges[name] = percentile_amax(hists[name], amax[name], percentile)
    return ranges


# --------------------------------------------------------------------------------------
# Q/DQ insertion
# --------------------------------------------------------------------------------------
def _scale_and_zero(name: str, scale: np.ndarray) -> list["onnx.TensorProto"]:
    from onnx import numpy_helper

    scale = np.asarray(scale, dtype=np.float32)
    zero = np.zeros(scale.shape, dtype=np.int8)
    return [numpy_helper.from_array(scale, name + "_scale"), numpy_helper.from_array(zero, name + "_zero_point")]


def build_qdq_model(
    model: "onnx.ModelProto", plan: QuantizationPlan, ranges: dict[str, float]
) -> "onnx.ModelProto":
    """A copy of `model` with Q/DQ on the inputs of the planned nodes."""
    import onnx
    from onnx import helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    initializers = {i.name: i for i in graph.initializer}
    new_initializers: list[onnx.TensorProto] = []
    dq_of_activation: dict[str, str] = {}
    dq_of_weight: dict[str, str] = {}
    new_nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.name in plan.quantized:
            weight_index, axis = plan.quantized[node.name]
            activation = node.input[0]
            if activation not in dq_of_activation:
                amax = ranges[activation]
                scale = np.float32(amax / INT8_MAX if amax > 0 else 1.0)
                base = f"{activation}_qdq"
                new_initializers += _scale_and_zero(base, scale)
                new_nodes.append(helper.make_node(
                    "QuantizeLinear", [activation, base + "_scale", base + "_zero_point"], [base + "_q"],
                    name=base + "/QuantizeLinear"))
                new_nodes.append(helper.make_node(
                    "DequantizeLinear", [base + "_q", base + "_scale", base + "_zero_point"], [base + "_dq"],
                    name=base + "/DequantizeLinear"))
                dq_of_activation[activation] = base + "_dq"
            weight = node.input[weight_index]
            if weight not in dq_of_weight:
                w = numpy_helper.to_array(initializers[weight]).astype(np.float32)
                w_axis_last = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
                w_amax = np.abs(w_axis_last).max(axis=1)
                # An all-zero channel still needs a positive scale (TensorRT rejects 0).
                scale = np.where(w_amax > 0, w_amax / INT8_MAX, 1.0).astype(np.float32)
                shape = [1] * w.ndim
                shape[axis] = -1
                q = np.clip(np.round(w / scale.reshape(shape)), -INT8_MAX, INT8_MAX).astype(np.int8)
                base = f"{weight}_qdq"
                new_initializers.append(numpy_helper.from_array(q, base + "_int8"))
                new_initializers += _scale_and_zero(base, scale)
                new_nodes.append(helper.make_node(
                    "DequantizeLinear", [base + "_int8", base + "_scale", base + "_zero_point"], [base + "_dq"],
                    name=base + "/DequantizeLinear", axis=axis))
                dq_of_weight[weight] = base + "_dq"
            node.input[0] = dq_of_activation[activation]
            node.input[weight_index] = dq_of_weight[weight]
        new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    still_used = {name for node in graph.node for name in node.input}
    kept_initializers = [i for i in graph.initializer if i.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers + new_initializers)
    out.ir_version = min(out.ir_version or MAX_IR_VERSION, MAX_IR_VERSION)
    return out


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux ru_maxrss is in KB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_fp32_onnx(fp32_onnx: Path) -> "onnx.ModelProto":
    import onnx

    if not Path(fp32_onnx).is_file():
        raise InputError(f"ONNX model not found: {fp32_onnx}")
    try:
        model = onnx.load(str(fp32_onnx))
    except Exception as exc:  # onnx raises DecodeError/ValueError/... for non-ONNX files
        raise InputError(f"cannot read ONNX model {fp32_onnx}: {exc}") from exc
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise InputError(f"{fp32_onnx} has opset {opset}; per-channel INT8 needs opset >= {MIN_OPSET}: re-export it")
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        raise InputError(f"{fp32_onnx} is already quantized (it has Q/DQ nodes); give the fp32 model")
    ensure_node_names(model)
    return model


def sensitive_tensors(model: "onnx.ModelProto") -> list[str]:
    """Tensors produced by PReLU: calibrated with their full range (see module docstring)."""
    return [out for node in model.graph.node if node.op_type in SENSITIVE_PRODUCERS for out in node.output]


def write_qdq_model(
    model: "onnx.ModelProto", out_path: Path, info: dict[str, Any]
) -> None:
    """Check the Q/DQ form, then save atomically with the source's metadata plus the
    edgefkd.quantization record."""
    import onnx

    check_qdq_graph(model)
    merge_metadata(model, {PRECISION_METADATA_KEY: "int8", QUANTIZATION_METADATA_KEY: json.dumps(info)})
    with atomic_path(out_path) as tmp:
        onnx.save(model, str(tmp))


@dataclass
class Calibrated:
    """A loaded fp32 model with its quantization plan and calibrated activation ranges."""

    model: "onnx.ModelProto"
    batches: list[np.ndarray]
    plan: QuantizationPlan
    ranges: dict[str, float]
    seconds: float


def calibrate_model(
    fp32_onnx: Path,
    calib_batches: Iterable[np.ndarray] | np.ndarray,
    method: str = "entropy",
    keep_fp: Sequence[str] = (),
    face_aware: bool = True,
    batch_size: int = 16,
    percentile: float = 99.99,
) -> Calibrated:
    """Load, plan and calibrate (streaming) the activations feeding every planned node."""
    if method not in CALIBRATION_METHODS:
        raise InputError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    model = load_fp32_onnx(Path(fp32_onnx))
    batches = replayable_batches(calib_batches)
    plan = plan_quantization(model, keep_fp, face_aware)
    if not plan.quantized:
        raise InputError(f"nothing to quantize in {fp32_onnx}: every Conv/Gemm/MatMul is kept in float")
    start = time.perf_counter()
    ranges = calibrate_ranges(
        model, activation_inputs(model, plan), batches, method,
        sensitive_tensors(model) if face_aware else (), batch_size, percentile=percentile,
    )
    return Calibrated(model, batches, plan, ranges, time.perf_counter() - start)


def quantize_onnx_qdq(
    fp32_onnx: Path,
    out_path: Path,
    calib_batches: Iterable[np.ndarray] | np.ndarray,
    method: str = "entropy",
    keep_fp: Sequence[str] = (),
    face_aware: bool = True,
    batch_size: int = 16,
    percentile: float = 99.99,
) -> dict[str, Any]:
    """Quantize an fp32 ONNX model to explicit symmetric Q/DQ INT8 and write it to `out_path`.

    `calib_batches` are prepared model inputs (PreprocessContract.prepare), one array or an
    iterable of arrays. Returns: method, quantized/kept node counts, kept node names with
    reasons, calibration samples and seconds, peak RSS.
    """
    calibrated = calibrate_model(fp32_onnx, calib_batches, method, keep_fp, face_aware, batch_size, percentile)
    info = quantization_info(calibrated, method, face_aware, keep_fp)
    quantized = build_qdq_model(calibrated.model, calibrated.plan, calibrated.ranges)
    write_qdq_model(quantized, Path(out_path), info)
    info["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return info


def quantization_info(
    calibrated: Calibrated, method: str, face_aware: bool, keep_fp: Sequence[str]
) -> dict[str, Any]:
    """The edgefkd.quantization record (also returned to the caller)."""
    plan = calibrated.plan
    return {
        "format": "onnx-qdq",
        "scheme": "int8 symmetric; per-channel weights (output-channel axis); per-tensor activations",
        "method": method,
        "face_aware": face_aware,
        "keep_fp": list(keep_fp),
        "quantized_nodes": len(plan.quantized),
        "kept_nodes": len(plan.kept),
        "kept": dict(plan.kept),
        "calibration_samples": int(sum(len(b) for b in calibrated.batches)),
        "calibration_seconds": round(calibrated.seconds, 2),
    }


def check_qdq_graph(model: "onnx.ModelProto") -> None:
    """Raise ExportError unless every Q/DQ is symmetric int8 (zero point 0), TensorRT-style."""
    from onnx import TensorProto, numpy_helper

    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        zero = initializers.get(node.input[2]) if len(node.input) > 2 else None
        if zero is None or zero.data_type != TensorProto.INT8 or np.any(numpy_helper.to_array(zero) != 0):
            raise ExportError(f"{node.name}: Q/DQ zero point must be an int8 0 for TensorRT")
