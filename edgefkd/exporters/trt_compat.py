"""Static compatibility report of an ONNX graph against TensorRT's ONNX parser.

Runs without TensorRT: it reads the graph with `onnx` and checks it against the operator
table in `trt_onnx_ops` (op types, attributes that matter, INT64 weights, Q/DQ placement
and zero points, which dimensions are dynamic, PReLU slopes, global depthwise convs).
Severities: "error" = the parser or builder will refuse it; "warning" = it builds but not
as edgefkd wants it (e.g. a fixed batch, or INT64 cast to INT32 on 8.6); "info" = a note.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import InputError
from ..fileio import atomic_write_json, atomic_write_text, sha256_file
from . import trt_onnx_ops as ops_table

SEVERITIES = ("error", "warning", "info")
_STANDARD_DOMAINS = ("", "ai.onnx")
_QDQ = ("QuantizeLinear", "DequantizeLinear")
_INT32_RANGE = (-(2**31), 2**31 - 1)
_SHOWN_NAMES = 5


@dataclass
class Finding:
    severity: str
    code: str
    message: str
    nodes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "message": self.message, "nodes": self.nodes}


@dataclass
class TensorInfo:
    name: str
    shape: list[int | str]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype}


@dataclass
class CompatReport:
    onnx: str
    sha256: str
    opset: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    op_counts: dict[str, int]
    findings: list[Finding]

    def count(self, severity: str) -> int:
        return sum(f.severity == severity for f in self.findings)

    def codes(self, severity: str | None = None) -> set[str]:
        return {f.code for f in self.findings if severity is None or f.severity == severity}

    @property
    def verdict(self) -> str:
        if self.count("error"):
            return "incompatible"
        return "compatible with warnings" if self.count("warning") else "compatible"

    def to_dict(self) -> dict[str, Any]:
        return {
            "onnx": self.onnx,
            "sha256": self.sha256,
            "opset": self.opset,
            "verdict": self.verdict,
            "summary": {s: self.count(s) for s in SEVERITIES},
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "op_counts": self.op_counts,
            "findings": [f.to_dict() for f in self.findings],
            "table": {
                "source": ops_table.TABLE_SOURCE,
                "tensorrt": ops_table.TABLE_TENSORRT,
                "opset_ranges": {family: list(r) for family, r in ops_table.OPSET_RANGES.items()},
            },
        }


def _names(items: Iterable[str]) -> list[str]:
    return sorted(set(items))


def _shown(names: list[str]) -> str:
    extra = len(names) - _SHOWN_NAMES
    return ", ".join(names[:_SHOWN_NAMES]) + (f" (+{extra} more)" if extra > 0 else "")


class _Graph:
    """The parts of a ModelProto the checks need: constants, shapes, producers."""

    def __init__(self, model: Any) -> None:
        import onnx
        from onnx import numpy_helper

        self.onnx = onnx
        graph = model.graph
        self.nodes = list(graph.node)
        self.constants: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.const_dtypes: dict[str, int] = {t.name: t.data_type for t in graph.initializer}
        for node in self.nodes:
            if node.op_type == "Constant" and node.domain in _STANDARD_DOMAINS:
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = numpy_helper.to_array(attr.t)
                        self.const_dtypes[node.output[0]] = attr.t.data_type
        try:
            inferred = onnx.shape_inference.infer_shapes(model).graph
            value_infos = list(inferred.value_info) + list(inferred.input) + list(inferred.output)
        except Exception:  # shape inference is a help for the GDConv note, never required
            value_infos = list(graph.input) + list(graph.output)
        self.shapes = {vi.name: _dims(vi) for vi in value_infos}
        self.consumers: dict[str, list[Any]] = {}
        self.producer: dict[str, Any] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
            for name in node.output:
                self.producer[name] = node

    def attr(self, node: Any, name: str, default: Any = None) -> Any:
        for a in node.attribute:
            if a.name == name:
                value = self.onnx.helper.get_attribute_value(a)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def const(self, name: str) -> np.ndarray | None:
        return self.constants.get(name)


def _dims(value_info: Any) -> list[int | str]:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return []
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in tensor_type.shape.dim]


def _tensor_info(value_info: Any) -> TensorInfo:
    from onnx import TensorProto

    elem = value_info.type.tensor_type.elem_type
    return TensorInfo(value_info.name, _dims(value_info), TensorProto.DataType.Name(elem).lower())


def _is_dynamic(dim: int | str) -> bool:
    return isinstance(dim, str) or dim <= 0


def check_onnx(onnx_path: str | Path, batch_range: tuple[int, int, int] | None = None) -> CompatReport:
    """Check one ONNX file against TensorRT's ONNX support.

    batch_range is the (min, opt, max) batch the optimisation profile will use; the
    report says whether the graph's inputs let that profile vary the batch.
    """
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise InputError(f"ONNX file {path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError/ValueError/... for non-ONNX input
        raise InputError(f"{path} is not a readable ONNX model: {exc}") from None
    from .trt_compat_qdq import check_qdq

    g = _Graph(model)
    opset = next((o.version for o in model.opset_import if o.domain in _STANDARD_DOMAINS), 0)
    initializer_names = {t.name for t in model.graph.initializer}
    inputs = [_tensor_info(i) for i in model.graph.input if i.name not in initializer_names]
    outputs = [_tensor_info(o) for o in model.graph.output]
    findings: list[Finding] = []
    findings += _check_opset(opset)
    findings += _check_ops(g)
    findings += _check_attributes(g)
    findings += _check_int64(g)
    findings += check_qdq(g)
    findings += _check_dynamic(g, inputs, batch_range)
    findings += _check_prelu(g)
    findings += _check_depthwise(g)
    findings += _check_metadata(model)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: order[f.severity])
    counts = Counter(n.op_type if n.domain in _STANDARD_DOMAINS else f"{n.domain}::{n.op_type}" for n in g.nodes)
    return CompatReport(
        onnx=str(path),
        sha256=sha256_file(path),
        opset=opset,
        inputs=inputs,
        outputs=outputs,
        op_counts=dict(sorted(counts.items())),
        findings=findings,
    )


def _check_opset(opset: int) -> list[Finding]:
    """Per TensorRT generation: 8.6's parser reads opsets up to 17, 10.x up to 20, 11.x up to 24."""
    ranges = ops_table.OPSET_RANGES
    outside = [f for f, (low, high) in ranges.items() if not low <= opset <= high]
    shown = ", ".join(f"{f}: {low}-{high}" for f, (low, high) in ranges.items())
    if not outside:
        return [Finding("info", "opset", f"opset {opset} is inside every parser's range ({shown})")]
    severity = "error" if len(outside) == len(ranges) else "warning"
    names = ", ".join(f"TensorRT {f}" for f in outside)
    return [Finding(severity, "opset", f"opset {opset} is outside the parser range of {names} ({shown}); re-export with opset 17 for all of them")]


def _check_ops(g: _Graph) -> list[Finding]:
    out: list[Finding] = []
    custom: dict[str, list[str]] = {}
    unsupported: dict[str, list[str]] = {}
    unknown: dict[str, list[str]] = {}
    restricted: dict[str, list[str]] = {}
    newer: dict[str, list[str]] = {}
    newer11: dict[str, list[str]] = {}
    for node in g.nodes:
        label = node.name or node.output[0]
        if node.domain not in _STANDARD_DOMAINS:
            custom.setdefault(f"{node.domain}::{node.op_type}", []).append(label)
        elif node.op_type in ops_table.TRT11_ONLY:
            newer11.setdefault(node.op_type, []).append(label)
        elif node.op_type in ops_table.UNSUPPORTED:
            unsupported.setdefault(node.op_type, []).append(label)
        elif node.op_type not in ops_table.SUPPORTED:
            unknown.setdefault(node.op_type, []).append(label)
        else:
            if ops_table.SUPPORTED[node.op_type]:
                restricted.setdefault(node.op_type, []).append(label)
            if node.op_type not in ops_table.TRT86_SUPPORTED:
                newer.setdefault(node.op_type, []).append(label)
    for op, nodes in sorted(custom.items()):
        out.append(Finding("error", "custom-op", f"{op} is a custom-domain op: TensorRT needs a plugin registered for it", nodes))
    for op, nodes in sorted(unsupported.items()):
        out.append(Finding("error", "unsupported-op", f"{op} is marked unsupported in TensorRT's ONNX operator table", nodes))
    for op, nodes in sorted(unknown.items()):
        out.append(Finding("error", "unknown-op", f"{op} is not in TensorRT's ONNX operator table", nodes))
    for op, nodes in sorted(newer.items()):
        out.append(Finding("warning", "newer-op", f"{op} is not in the TensorRT 8.6 operator table: it may fail on TensorRT 8.6 (JetPack 6.0)", nodes))
    for op, nodes in sorted(newer11.items()):
        out.append(Finding("warning", "trt11-op", f"{op} ({ops_table.TRT11_ONLY[op]}) is imported by TensorRT 11 only: 8.6 and 10.x cannot parse it", nodes))
    for op, nodes in sorted(restricted.items()):
        out.append(Finding("info", "op-restriction", f"{op} ({len(nodes)}x): {ops_table.SUPPORTED[op]}", nodes))
    return out


def _check_attributes(g: _Graph) -> list[Finding]:
    out: list[Finding] = []
    for node in g.nodes:
        label = node.name or node.output[0]
        op = node.op_type
        if op == "Resize":
            mode = g.attr(node, "mode", "nearest")
            coord = g.attr(node, "coordinate_transformation_mode", "half_pixel")
            nearest = g.attr(node, "nearest_mode", "round_prefer_floor")
            if mode not in ops_table.RESIZE_MODES:
                out.append(Finding("error", "resize-mode", f"Resize mode {mode!r} is unsupported (nearest/linear only)", [label]))
            if coord not in ops_table.RESIZE_COORDINATE_MODES:
                out.append(Finding("error", "resize-mode", f"Resize coordinate_transformation_mode {coord!r} is unsupported", [label]))
            if mode == "nearest" and nearest not in ops_table.RESIZE_NEAREST_MODES:
                out.append(Finding("error", "resize-mode", f"Resize nearest_mode {nearest!r} is unsupported", [label]))
            if g.attr(node, "antialias", 0):
                out.append(Finding("error", "resize-mode", "Resize with antialias=1 is unsupported", [label]))
        if op in ("Conv", "ConvTranspose", "AveragePool", "MaxPool", "LpPool"):
            auto_pad = g.attr(node, "auto_pad", "NOTSET")
            if auto_pad not in ("NOTSET", "VALID"):
                out.append(Finding("warning", "auto-pad", f"{op} uses auto_pad={auto_pad}: TensorRT maps it to a padding mode; explicit pads are safer across profile shapes", [label]))
            kernel = g.attr(node, "kernel_shape")
            if kernel is not None and len(kernel) not in (2, 3):
                out.append(Finding("warning", "conv-rank", f"{op} is {len(kernel)}-D: TensorRT implements 2-D/3-D natively and reshapes other ranks", [label]))
        if op in ("AveragePool", "MaxPool", "LpPool") and any(d != 1 for d in (g.attr(node, "dilations") or [])):
            out.append(Finding("error", "pool-dilation", f"{op} with dilations != 1 is unsupported", [label]))
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            out.append(Finding("error", "maxpool-indices", "MaxPool's Indices output is unsupported", [label]))
        if op == "Constant" and any(a.name in ("sparse_value", "value_string", "value_strings") for a in node.attribute):
            out.append(Finding("error", "constant-kind", "sparse or string Constant values are unsupported", [label]))
        if op == "TopK" and g.attr(node, "sorted", 1) == 0:
            out.append(Finding("error", "topk-sorted", "TopK with sorted=0 is unsupported", [label]))
    return out


def _check_int64(g: _Graph) -> list[Finding]:
    from onnx import TensorProto

    int64 = [n for n, t in g.const_dtypes.items() if t == TensorProto.INT64]
    doubles = [n for n, t in g.const_dtypes.items() if t == TensorProto.DOUBLE]
    out: list[Finding] = []
    if int64:
        overflow = [
            n for n in int64
            if g.constants[n].size and (g.constants[n].min() < _INT32_RANGE[0] or g.constants[n].max() > _INT32_RANGE[1])
        ]
        out.append(Finding(
            "warning" if overflow else "info",
            "int64-weights",
            f"{len(int64)} INT64 constant(s) ({_shown(_names(int64))}): TensorRT 8.6 casts them to INT32"
            + (f"; {len(overflow)} hold values outside INT32 and will be clamped" if overflow else " (all values fit)")
            + "; TensorRT 10+ keeps INT64",
            _names(int64),
        ))
    if doubles:
        out.append(Finding("warning", "double-weights", f"{len(doubles)} DOUBLE constant(s): TensorRT casts them to FLOAT", _names(doubles)))
    return out


def _check_dynamic(g: _Graph, inputs: list[TensorInfo], batch_range: tuple[int, int, int] | None) -> list[Finding]:
    out: list[Finding] = []
    for info in inputs:
        if not info.shape:
            out.append(Finding("error", "input-rank", f"input {info.name} has no declared shape: the profile cannot be set", [info.name]))
            continue
        batch, rest = info.shape[0], info.shape[1:]
        dynamic_rest = [i + 1 for i, d in enumerate(rest) if _is_dynamic(d)]
        if dynamic_rest:
            out.append(Finding("error", "dynamic-non-batch", f"input {info.name} has dynamic dimension(s) {dynamic_rest} besides the batch: edgefkd's profile only varies the batch", [info.name]))
        if _is_dynamic(batch):
            covered = f"; the profile covers batch {batch_range[0]}..{batch_range[2]} (opt {batch_range[1]})" if batch_range else ""
            out.append(Finding("info", "dynamic-batch", f"input {info.name} has a dynamic batch ({batch!r}){covered}", [info.name]))
        else:
            out.append(Finding("warning", "fixed-batch", f"input {info.name} has a FIXED batch of {batch}: the batch is not dynamic, so the engine runs batch {batch} only and the min/opt/max profile cannot apply; re-export with a dynamic batch axis", [info.name]))
    baked = []
    for node in g.nodes:
        if node.op_type == "Reshape" and len(node.input) > 1:
            shape = g.const(node.input[1])
            if shape is not None and shape.size and int(shape.flat[0]) > 0:
                baked.append((node.name or node.output[0], int(shape.flat[0])))
    if baked:
        out.append(Finding("warning", "reshape-fixed-batch", f"{len(baked)} Reshape(s) hard-code a leading dimension (e.g. {baked[0][1]}): a dynamic batch will fail there; use 0 or -1 for the batch", [n for n, _ in baked]))
    return out


def _check_prelu(g: _Graph) -> list[Finding]:
    bad, good = [], []
    for node in g.nodes:
        if node.op_type != "PRelu":
            continue
        label = node.name or node.output[0]
        slope = g.const(node.input[1])
        data_shape = g.shapes.get(node.input[0], [])
        if slope is None:
            bad.append((label, "a non-constant slope"))
            continue
        if len(data_shape) == 4 and slope.ndim == 1 and slope.size > 1:
            # ONNX broadcasts a (C,) slope against the LAST axis (W), not channels.
            bad.append((label, f"slope shape {list(slope.shape)} broadcasts over width, not channels"))
        else:
            good.append(label)
    out: list[Finding] = []
    if bad:
        out.append(Finding("warning", "prelu-slope", f"{len(bad)} PRelu node(s) with {bad[0][1]}: reshape slopes to (C,1,1)", [n for n, _ in bad]))
    if good:
        out.append(Finding("info", "prelu", f"{len(good)} PRelu node(s) with per-channel (C,1,1) slopes: supported; TensorRT runs them as a separate activation layer (in INT8 they stay between Q/DQ pairs)", good))
    return out


def _check_depthwise(g: _Graph) -> list[Finding]:
    depthwise, gdconv = [], []
    for node in g.nodes:
        if node.op_type != "Conv":
            continue
        weight = g.const(node.input[1]) if len(node.input) > 1 else None
        group = g.attr(node, "group", 1)
        if weight is None or group <= 1 or weight.ndim != 4 or weight.shape[1] != 1 or group != weight.shape[0]:
            continue
        label = node.name or node.output[0]
        depthwise.append(label)
        spatial = g.shapes.get(node.input[0], [])[2:]
        if spatial and list(spatial) == list(weight.shape[2:]):
            gdconv.append((label, f"{weight.shape[2]}x{weight.shape[3]}", group))
    out: list[Finding] = []
    if depthwise:
        out.append(Finding("info", "depthwise-conv", f"{len(depthwise)} depthwise Conv(s) (group = channels): supported natively", depthwise))
    if gdconv:
        label, kernel, channels = gdconv[0]
        out.append(Finding("info", "gdconv", f"global depthwise conv (GDConv, {kernel} kernel over a {kernel} map, groups={channels}): a plain depthwise Conv to TensorRT; keep it per-channel quantized in INT8 since one scale per channel feeds the embedding directly", [n for n, *_ in gdconv]))
    return out


def _check_metadata(model: Any) -> list[Finding]:
    keys = {p.key for p in model.metadata_props}
    if "edgefkd.preprocess" in keys:
        return [Finding("info", "contract", "the preprocessing contract (edgefkd.preprocess) is in the ONNX metadata and goes into each engine's sidecar JSON")]
    return [Finding("warning", "contract", "no edgefkd.preprocess metadata: the engine sidecar takes the contract from the export manifest")]


def write_compat_report(reports: list[CompatReport], directory: str | Path, root: Path | None = None) -> tuple[Path, Path]:
    """Write compat.json + compat.md for the given reports; ONNX paths shown relative to root."""
    directory = Path(directory)
    payload = [r.to_dict() for r in reports]
    if root is not None:
        for item in payload:
            onnx_path = Path(item["onnx"]).resolve()
            if onnx_path.is_relative_to(root.resolve()):
                item["onnx"] = onnx_path.relative_to(root.resolve()).as_posix()
    json_path, md_path = directory / "compat.json", directory / "compat.md"
    atomic_write_json(json_path, {"models": payload})
    atomic_write_text(md_path, render_markdown(payload))
    return json_path, md_path


def render_markdown(payload: list[dict[str, Any]]) -> str:
    lines = ["# TensorRT compatibility (static check)", ""]
    ranges = ", ".join(f"{f}: {low}-{high}" for f, (low, high) in ops_table.OPSET_RANGES.items())
    lines.append(f"Checked against {ops_table.TABLE_SOURCE}; opsets per TensorRT {ranges}. "
                 "No TensorRT was run: this is what the graph says, not a build.")
    for item in payload:
        s = item["summary"]
        lines += ["", f"## {item['onnx']}", "",
                  f"**{item['verdict']}** — {s['error']} error(s), {s['warning']} warning(s), {s['info']} note(s); "
                  f"opset {item['opset']}; sha256 `{item['sha256'][:16]}…`", ""]
        for t in item["inputs"]:
            lines.append(f"- input `{t['name']}` {t['dtype']} {t['shape']}")
        for t in item["outputs"]:
            lines.append(f"- output `{t['name']}` {t['dtype']} {t['shape']}")
        lines += ["", "Ops: " + ", ".join(f"{op}×{n}" for op, n in item["op_counts"].items()), "",
                  "| severity | check | finding |", "|---|---|---|"]
        for f in item["findings"]:
            lines.append(f"| {f['severity']} | {f['code']} | {f['message'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"

