"""Face-aware static INT8 through PyTorch 2 Export quantization (PT2E), for LiteRT and ExecuTorch.

Both mobile formats quantize the same way: the student is captured with `torch.export`,
rewritten to avoid the traps below, annotated by the runtime's own quantizer (XNNPACK's for
ExecuTorch, litert-torch's for LiteRT; both int8 per-channel symmetric weights, per-tensor
activations), calibrated on faces, and converted to Q/DQ form for the format's lowering.

Traps this module removes, each measured on the real MobileFaceNet:

- ReLU6 is `hardtanh(0, 6)`, which no PT2E quantizer fuses with the conv before it: the conv
  output is then quantized over its pre-activation range (negative half included) and
  half the int8 codes are wasted. It is rewritten as `clamp(relu(x), max=6)` so the
  conv -> relu pattern fuses and the clamp shares the relu's range.
- The first convolution sees normalised pixels whose range the input observer clips, and
  the embedding head (the last conv/linear and every conv/linear on pooled tensors, e.g.
  MobileFaceNet's 7x7 global depthwise conv) puts its error straight on the embedding:
  both stay float, as in the ONNX INT8 path (`--keep-fp` adds more).
- PReLU has no quantized pattern in either quantizer: it runs in float between the
  quantized convs around it, which keeps its learned negative slopes exact.
- BatchNorm after a conv is folded into the conv's weights by PT2E before observing, so
  the weights are quantized after folding (per channel, which absorbs the BN scales).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..errors import ExportError, InputError
from .torch_source import capture, first_line

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: calibration faces (an even spread over the set), kept modest: PT2E observers run op by op in Python
DEFAULT_CALIBRATION_COUNT = 128
#: faces per calibration forward where the model takes a dynamic batch
CALIBRATION_BATCH = 16
#: ONNX-style op types, so one `--keep-fp Conv` pattern means the same in every format
_OP_TYPES = {"conv1d": "Conv", "conv2d": "Conv", "conv3d": "Conv", "linear": "Gemm"}
_CHAIN_OPS = ("relu", "relu_", "hardtanh", "hardtanh_", "clamp", "batch_norm", "_native_batch_norm_legit_no_training")


def _op_name(node: Any) -> str:
    target = getattr(node, "target", None)
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0]


def _is_quantizable(node: Any) -> bool:
    return node.op == "call_function" and _op_name(node) in _OP_TYPES


def rewrite_relu6(graph_module: Any) -> int:
    """Replace hardtanh(x, 0, 6) by clamp(relu(x), max=6) in place; returns how many."""
    import torch

    count = 0
    graph = graph_module.graph
    for node in list(graph.nodes):
        if node.op != "call_function" or _op_name(node) not in ("hardtanh", "hardtanh_"):
            continue
        low = node.args[1] if len(node.args) > 1 else node.kwargs.get("min_val", -1.0)
        high = node.args[2] if len(node.args) > 2 else node.kwargs.get("max_val", 1.0)
        if float(low) != 0.0:
            continue
        with graph.inserting_before(node):
            relu = graph.call_function(torch.ops.aten.relu.default, (node.args[0],))
            clamp = graph.call_function(torch.ops.aten.clamp.default, (relu, None, float(high)))
        relu.meta = dict(node.meta)
        clamp.meta = dict(node.meta)
        node.replace_all_uses_with(clamp)
        graph.erase_node(node)
        count += 1
    graph.lint()
    graph_module.recompile()
    return count


def _is_pooled(node: Any) -> bool:
    value = node.meta.get("val") if hasattr(node, "meta") else None
    shape = getattr(value, "shape", None)
    if shape is None:
        return False
    return len(shape) == 2 or (len(shape) >= 3 and all(int(d) == 1 for d in shape[2:]))


def first_layers(graph: Any) -> list[Any]:
    """Conv/linear nodes reached from the user input without crossing another one."""
    inputs = [n for n in graph.nodes if n.op == "placeholder" and n.users and _is_tensor_input(n)]
    found, seen, frontier = [], set(), list(inputs[:1])
    while frontier:
        for user in frontier.pop().users:
            if user in seen:
                continue
            seen.add(user)
            (found if _is_quantizable(user) else frontier).append(user)
    return found


def _is_tensor_input(node: Any) -> bool:
    value = node.meta.get("val")
    return getattr(value, "ndim", 0) >= 3


def head_layers(graph: Any) -> list[Any]:
    """The last conv/linear before the output and every conv/linear before it on pooled tensors."""
    output = next(n for n in graph.nodes if n.op == "output")
    found, seen = [], set()
    frontier = [(arg, False) for arg in output.all_input_nodes]
    while frontier:
        node, past_head = frontier.pop()
        if node in seen or node.op != "call_function" or (past_head and not _is_pooled(node)):
            continue
        seen.add(node)
        if _is_quantizable(node):
            found.append(node)
            frontier.append((node.args[0], True))
        else:
            frontier.extend((arg, past_head) for arg in node.all_input_nodes)
    return found


def _layer_names(node: Any) -> list[str]:
    """What a keep-fp pattern may name: the module path (e.g. conv1.0), the FX node name."""
    names = [node.name]
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        names.insert(0, list(stack.values())[-1][0])
    return names


def keep_float_layers(graph: Any, keep_fp: Sequence[str] = ()) -> dict[Any, str]:
    """Conv/linear nodes that stay float -> why (face-aware defaults and keep-fp patterns)."""
    from ..exporters.quantize_onnx import matches_pattern

    kept: dict[Any, str] = {}
    for node in first_layers(graph):
        kept[node] = "face-aware: first convolution"
    for node in head_layers(graph):
        kept.setdefault(node, "face-aware: embedding head")
    layers = [n for n in graph.nodes if _is_quantizable(n)]
    for pattern in keep_fp:
        hits = [n for n in layers if any(matches_pattern(pattern, name, _OP_TYPES[_op_name(n)]) for name in _layer_names(n))]
        if not hits:
            raise InputError(f"--keep-fp pattern {pattern!r} matches no conv/linear layer of the model")
        for node in hits:
            kept.setdefault(node, f"keep-fp {pattern}")
    return kept


def _strip_annotations(graph: Any, kept: dict[Any, str]) -> None:
    """Drop the quantization annotations of kept layers (and of the relu/clamp fused after
    them), then of every op whose annotation shares a range with a dropped one."""
    from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec

    key = "quantization_annotation"
    for node in kept:
        node.meta.pop(key, None)
        chain = node
        while len(chain.users) == 1 and _op_name(next(iter(chain.users))) in _CHAIN_OPS:
            chain = next(iter(chain.users))
            chain.meta.pop(key, None)
    changed = True
    while changed:
        changed = False
        for node in graph.nodes:
            annotation = node.meta.get(key)
            if annotation is None:
                continue
            specs = list(annotation.input_qspec_map.values()) + [annotation.output_qspec]
            for spec in specs:
                if isinstance(spec, SharedQuantizationSpec):
                    # an edge (producer, consumer) shares the consumer's input spec, a node its output spec
                    edge = spec.edge_or_node
                    owner = edge[1] if isinstance(edge, tuple) else edge
                    if key not in owner.meta:
                        node.meta.pop(key)
                        changed = True
                        break


def face_aware_quantizer(inner: Any, keep_fp: Sequence[str], log: Callable[[str], None], kept_out: dict[str, str]) -> Any:
    """Wrap a PT2E quantizer so face-sensitive layers keep no quantization annotation;
    `kept_out` receives layer name -> why it stays float."""
    from torchao.quantization.pt2e.quantizer import Quantizer

    class FaceAwareQuantizer(Quantizer):
        def transform_for_annotation(self, model: Any) -> Any:
            return inner.transform_for_annotation(model)

        def annotate(self, model: Any) -> Any:
            kept = keep_float_layers(model.graph, keep_fp)
            model = inner.annotate(model)
            _strip_annotations(model.graph, kept)
            for node, reason in kept.items():
                kept_out[_layer_names(node)[0]] = reason
                log(f"int8: {_layer_names(node)[0]} stays float ({reason})")
            return model

        def validate(self, model: Any) -> None:
            inner.validate(model)

    return FaceAwareQuantizer()


def quantize_static(
    module: Any,
    inner_quantizer: Any,
    calibration: np.ndarray,
    *,
    fmt: str,
    keep_fp: Sequence[str] = (),
    log: Callable[[str], None] = lambda msg: None,
    fold_quantize: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """(Q/DQ GraphModule of `module`, what was done for the manifest), calibrated on
    prepared faces (N, C, H, W).

    The returned module takes and returns float tensors; the format lowers it (ExecuTorch
    with torch.export again, LiteRT through its converter in STATIC Q/DQ mode). LiteRT's
    converter needs `fold_quantize=False`: it reads each weight as float -> Q -> DQ and
    rejects a DQ on an already-int8 constant.
    """
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if len(calibration) == 0:
        raise InputError(f"{fmt} int8: no calibration faces")
    graph_module, batch = _capture_for_calibration(module, calibration, fmt)
    rewritten = rewrite_relu6(graph_module)
    if rewritten:
        log(f"int8: {rewritten} ReLU6 written as clamp(relu) so each fuses with its conv")
    try:
        kept: dict[str, str] = {}
        prepared = prepare_pt2e(graph_module, face_aware_quantizer(inner_quantizer, keep_fp, log, kept))
        with torch.no_grad():
            for start in range(0, len(calibration), batch):
                prepared(torch.from_numpy(np.ascontiguousarray(calibration[start : start + batch])))
        info = {"method": "pt2e static", "quantizer": type(inner_quantizer).__name__,
                "weights": "int8 per-channel symmetric", "activations": "int8 per-tensor",
                "calibration_samples": int(len(calibration)), "relu6_as_clamp_relu": rewritten, "kept_float": kept}
        return convert_pt2e(prepared, fold_quantize=fold_quantize), info
    except (InputError, ExportError):
        raise
    except Exception as exc:
        raise ExportError(f"{fmt} int8: PT2E quantization failed: {first_line(exc)}") from exc


def _capture_for_calibration(module: Any, calibration: np.ndarray, fmt: str) -> tuple[Any, int]:
    """(graph module, calibration batch): a dynamic batch where torch.export allows one, as
    observing a batch at a time is far faster than one face at a time; else batch 1."""
    import torch

    batch = min(CALIBRATION_BATCH, len(calibration))
    if batch > 1 and not isinstance(module, torch.jit.ScriptModule):
        example = torch.from_numpy(np.ascontiguousarray(calibration[:batch]))
        dims = ({0: torch.export.Dim("batch", min=1, max=4096)},)
        try:
            return torch.export.export(module, (example,), dynamic_shapes=dims).module(), batch
        except Exception:  # a batch-specialised model (e.g. a reshape to a fixed size)
            pass
    return capture(module, torch.from_numpy(np.ascontiguousarray(calibration[:1])), fmt).module(), 1


def calibration_inputs(ctx: Any, count: int = DEFAULT_CALIBRATION_COUNT) -> np.ndarray:
    """Up to `count` prepared calibration faces, spread evenly over the calibration set."""
    faces = ctx.calibration_faces()
    if len(faces) > count:
        faces = faces[np.linspace(0, len(faces) - 1, count).round().astype(int)]
    return ctx.contract.prepare(faces)
