"""OpenVINO INT8 by NNCF post-training quantization, with the same face-aware defaults.

The fp32 model (ONNX, converted here, or an OpenVINO IR) is quantized by `nncf.quantize`
on the same prepared calibration batches as the Q/DQ ONNX. The ignored scope mirrors the
ONNX quantizer: the first convolution and the embedding head (last conv/linear, and any
conv/linear already working on pooled tensors, e.g. a global depthwise conv) stay float,
PReLU gets no quantizer of its own, and `keep_fp` patterns add more (matched on OpenVINO
op names, with the ONNX FrontEnd's "/WithoutBiases" suffix also stripped, or op types).

Preset: PERFORMANCE (symmetric weights and activations) by default; on the shared
MobileFaceNet it matched MIXED (asymmetric activations) in agreement and is the form the
CPU plugin runs fastest (see scripts/benchmark_latency.py and the int8 README section).

With `accuracy_control`, `nncf.quantize_with_accuracy_control` reverts layers until the
callback's metric drops by at most `max_drop` (absolute, in the callback's units).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import ExportError, InputError
from ..formats.openvino import get_rt_metadata, set_rt_metadata
from .openvino import save_ir_atomically
from .quantize_onnx import matches_pattern, peak_rss_mb, replayable_batches

if TYPE_CHECKING:  # pragma: no cover
    import openvino as ov

#: Prepared input batch (N, ...) -> embeddings (N, D).
EmbedFn = Callable[[np.ndarray], np.ndarray]
#: Metric (e.g. verification accuracy in percent) of a model given as an embed function.
AccuracyControlFn = Callable[[EmbedFn], float]

WEIGHTED_TYPES = ("Convolution", "GroupConvolution", "MatMul")
SENSITIVE_TYPES = ("PRelu",)
PRESETS = ("performance", "mixed")
#: "minmax": global min/max over the calibration set; "mean-minmax": NNCF's default, the
#: mean of per-sample extremes (tighter, so less robust when calibration faces differ from
#: deployment faces, e.g. the synthetic default set).
ACTIVATION_RANGES = ("minmax", "mean-minmax")


def read_fp32_openvino(path: Path) -> "ov.Model":
    """An OpenVINO model from an fp32 .xml IR or an ONNX file (converted in memory)."""
    import openvino as ov

    path = Path(path)
    if not path.is_file():
        raise InputError(f"model not found: {path}")
    try:
        if path.suffix.lower() == ".xml":
            return ov.Core().read_model(str(path))
        model = ov.convert_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError/GeneralFailure for unreadable models
        raise InputError(f"cannot read {path} with OpenVINO: {library_message(exc)}") from exc
    from ..runners import read_artifact_metadata

    set_rt_metadata(model, read_artifact_metadata(path))
    return model


def _is_pooled(op: "ov.Node") -> bool:
    shape = op.get_output_partial_shape(0)
    rank = shape.rank.get_length() if shape.rank.is_static else -1
    return rank == 2 or (rank == 4 and all(d.is_static and d.get_length() == 1 for d in list(shape)[2:]))


def face_aware_ignored_names(model: "ov.Model") -> list[str]:
    """Friendly names of the first convolution(s) and the embedding head (see module docstring)."""
    first: list[str] = []
    seen: set[str] = set()
    frontier = [target.get_node() for param in model.get_parameters() for target in param.output(0).get_target_inputs()]
    while frontier:
        op = frontier.pop()
        if op.get_friendly_name() in seen:
            continue
        seen.add(op.get_friendly_name())
        if op.get_type_name() in WEIGHTED_TYPES:
            first.append(op.get_friendly_name())
        else:
            frontier += [t.get_node() for out in op.outputs() for t in out.get_target_inputs()]
    head: list[str] = []
    seen = set()
    back = [(result.input_value(0).get_node(), False) for result in model.get_results()]
    while back:
        op, past_head = back.pop()
        if op.get_friendly_name() in seen or (past_head and not _is_pooled(op)):
            continue
        seen.add(op.get_friendly_name())
        if op.get_type_name() in WEIGHTED_TYPES:
            head.append(op.get_friendly_name())
            back.append((op.input_value(0).get_node(), True))
        elif op.get_type_name() not in ("Constant", "Parameter"):
            back += [(value.get_node(), past_head) for value in op.input_values()]
    return first + head


def keep_fp_names(model: "ov.Model", keep_fp: Sequence[str]) -> list[str]:
    names: list[str] = []
    weighted = [op for op in model.get_ordered_ops() if op.get_type_name() in WEIGHTED_TYPES]
    for pattern in keep_fp:
        hits = [
            op.get_friendly_name() for op in weighted
            if matches_pattern(pattern, op.get_friendly_name(), op.get_type_name())
            or matches_pattern(pattern, op.get_friendly_name().removesuffix("/WithoutBiases"), op.get_type_name())
        ]
        if not hits:
            raise InputError(f"--keep-fp pattern {pattern!r} matches no convolution/linear op of the OpenVINO model")
        names += hits
    return names


def compiled_embed(compiled: "ov.CompiledModel") -> EmbedFn:
    """An embed function over a compiled model; fixed-batch models are fed their batch size."""
    from ..runners.base import embed_batches

    shape = compiled.input(0).get_partial_shape()
    fixed = shape[0].get_length() if shape[0].is_static else None

    def embed(inputs: np.ndarray) -> np.ndarray:
        return embed_batches(lambda part: compiled(part)[0], inputs, fixed or 16).reshape(len(inputs), -1)

    return embed


def quantize_openvino_int8(
    fp32_onnx_or_xml: Path,
    out_xml: Path,
    calib_batches: Iterable[np.ndarray] | np.ndarray,
    keep_fp: Sequence[str] = (),
    face_aware: bool = True,
    accuracy_control: AccuracyControlFn | None = None,
    max_drop: float | None = None,
    preset: str = "performance",
    activation_range: str = "minmax",
) -> dict[str, Any]:
    """NNCF INT8 of an fp32 model, written to `out_xml` (+ .bin) with the source's rt_info.

    Returns: preset, ignored op names, calibration samples and seconds, peak RSS; with
    accuracy control also fp32/int8 metric and the drop bound.
    """
    import logging

    import nncf

    # NNCF's INFO lines list every node it skips; the face-aware plan is reported by edgefkd.
    nncf.set_log_level(logging.WARNING)
    if activation_range not in ACTIVATION_RANGES:
        raise InputError(f"activation range must be one of {', '.join(ACTIVATION_RANGES)}, got {activation_range!r}")
    if preset not in PRESETS:
        raise InputError(f"NNCF preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if accuracy_control is not None and (max_drop is None or max_drop < 0):
        raise InputError("accuracy-aware OpenVINO INT8 needs --max-acc-drop >= 0")
    model = read_fp32_openvino(Path(fp32_onnx_or_xml))
    rt_info = get_rt_metadata(model)
    samples = [sample[None] for batch in replayable_batches(calib_batches) for sample in batch]
    ignored = (face_aware_ignored_names(model) if face_aware else []) + keep_fp_names(model, keep_fp)
    ignored_scope = nncf.IgnoredScope(
        names=sorted(set(ignored)), types=list(SENSITIVE_TYPES) if face_aware else [], validate=False
    )
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    advanced = AdvancedQuantizationParameters()
    if activation_range == "minmax":
        advanced.activations_range_estimator_params = RangeEstimatorParametersSet.MINMAX
    options = dict(
        preset=getattr(nncf.QuantizationPreset, preset.upper()),
        subset_size=len(samples),
        ignored_scope=ignored_scope,
    )
    info: dict[str, Any] = {
        "format": "openvino-nncf",
        "preset": preset,
        "activation_range": activation_range,
        "face_aware": face_aware,
        "keep_fp": list(keep_fp),
        "ignored": sorted(set(ignored)),
        "calibration_samples": len(samples),
    }
    start = time.perf_counter()
    try:
        if accuracy_control is None:
            quantized = nncf.quantize(model, nncf.Dataset(samples), advanced_parameters=advanced, **options)
        else:
            def validate(compiled: "ov.CompiledModel", items: Iterable[Any]) -> tuple[float, list[list[Any]]]:
                # Returning per-item outputs puts NNCF in "output" mode: it ranks layers by how
                # far their outputs move instead of calling this (whole-pairs) metric once per item.
                outputs = [[compiled(item)[0]] for item in items]
                return float(accuracy_control(compiled_embed(compiled))), outputs

            quantized = nncf.quantize_with_accuracy_control(
                model, nncf.Dataset(samples), nncf.Dataset(samples), validate,
                max_drop=float(max_drop), drop_type=nncf.DropType.ABSOLUTE,
                advanced_quantization_parameters=advanced, **options,
            )
    except nncf.ValidationError as exc:
        raise InputError(f"NNCF rejected the quantization setup: {exc}") from exc
    except RuntimeError as exc:
        raise ExportError(f"NNCF quantization failed: {library_message(exc)}") from exc
    info["calibration_seconds"] = round(time.perf_counter() - start, 2)
    if accuracy_control is not None:
        import openvino as ov

        core = ov.Core()
        info["fp32_accuracy"] = accuracy_control(compiled_embed(core.compile_model(model, "CPU", _F32)))
        info["int8_accuracy"] = accuracy_control(compiled_embed(core.compile_model(quantized, "CPU", _F32)))
        info["max_drop"] = max_drop
    set_rt_metadata(quantized, {**rt_info, "edgefkd.precision": "int8", "edgefkd.quantization": json.dumps(info)})
    save_ir_atomically(quantized, out_xml, compress_to_fp16=False)
    info["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return info


#: Parity-grade compile config: OpenVINO runs "FP32" in bf16 on this CPU otherwise.
_F32 = {"INFERENCE_PRECISION_HINT": "f32"}
