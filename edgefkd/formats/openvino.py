"""OpenVINO IR (`.xml` + `.bin`), converted from the fp32 ONNX; the contract lives in
rt_info["edgefkd"]. INT8 is NNCF post-training quantization (exporters/openvino_int8.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..contract import METADATA_PREFIX, PreprocessContract
from ..errors import InputError
from .base import ExportContext, Format

RT_INFO_SECTION = "edgefkd"


def set_rt_metadata(model: Any, metadata: dict[str, str]) -> None:
    """Write edgefkd.* metadata into rt_info["edgefkd"][key] (prefix dropped)."""
    for key, value in metadata.items():
        short = key[len(METADATA_PREFIX):] if key.startswith(METADATA_PREFIX) else key
        model.set_rt_info(value, [RT_INFO_SECTION, short])


def get_rt_metadata(model: Any) -> dict[str, str]:
    """rt_info["edgefkd"] as flat `edgefkd.<key>` -> string (the inverse of set_rt_metadata)."""
    if not model.has_rt_info([RT_INFO_SECTION]):
        return {}
    keys = list(model.get_rt_info()[RT_INFO_SECTION].keys())
    return {METADATA_PREFIX + str(k): model.get_rt_info([RT_INFO_SECTION, str(k)]).astype(str) for k in keys}


def read_metadata(path: Path) -> dict[str, str]:
    import openvino as ov

    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:
        raise InputError(f"{path} is not a readable OpenVINO IR: {str(exc).splitlines()[0][:200]}") from None
    return get_rt_metadata(model)


def runner(path: Path, contract: PreprocessContract, precision: str, *, device: str = "CPU",
           inference_precision: str | None = "f32", performance_hint: str = "LATENCY", threads: int | None = None,
           name: str | None = None, **_: Any) -> Any:
    from ..runners.openvino_runner import OpenVINORunner

    return OpenVINORunner(path, contract, precision, device=device, inference_precision=inference_precision,
                          performance_hint=performance_hint, threads=threads, name=name)  # fmt: skip


def available() -> str | None:
    return None if importlib.util.find_spec("openvino") else "OpenVINO is not installed (pip install openvino)"


def export(ctx: ExportContext, precision: str) -> Path:
    out = ctx.stage / "openvino" / f"model_{precision}.xml"
    if precision == "int8":
        from ..exporters.openvino_int8 import quantize_openvino_int8

        evaluator = ctx.pair_evaluator()
        info = quantize_openvino_int8(
            ctx.fp32_onnx, out, ctx.calibration_batches(), keep_fp=ctx.keep_fp,
            accuracy_control=evaluator.from_embed if evaluator is not None else None,
            max_drop=ctx.options.get("max_acc_drop") if evaluator is not None else None,
        )  # fmt: skip
        if evaluator is not None:
            ctx.log(f"accuracy-controlled OpenVINO INT8: fp32 {info['fp32_accuracy']:.2f}% -> int8 {info['int8_accuracy']:.2f}%")
        ctx.record(out, quantization={**info, **ctx.calibration_provenance()})
        return out
    from ..exporters.openvino import export_openvino

    metadata = {**ctx.metadata, METADATA_PREFIX + "precision": precision}
    return export_openvino(ctx.fp32_onnx, out, fp16=precision == "fp16", metadata=metadata)


def companions(path: Path) -> list[Path]:
    weights = Path(path).with_suffix(".bin")
    return [weights] if weights.is_file() else []


FORMAT = Format(
    name="openvino",
    title="OpenVINO IR",
    suffixes=(".xml",),
    precisions=("fp32", "fp16", "int8"),
    source="onnx",
    extra=None,
    export=export,
    read_metadata=read_metadata,
    runner=runner,
    available=available,
    companions=companions,
    runtime="openvino",
    requires=("openvino",),
)
