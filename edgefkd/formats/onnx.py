"""ONNX (`.onnx`), run by ONNX Runtime; the contract lives in the model's metadata_props.

The fp32 ONNX is the validated source every ONNX-based format converts from; the pipeline
writes it before any format step. fp16 and int8 are derived from it once per export by
`onnx_variant`, which the `ort` format shares.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..contract import METADATA_PREFIX, PreprocessContract
from ..errors import InputError
from .base import ExportContext, Format

#: Where each precision's ONNX is written inside the export directory.
FILENAMES = {"fp32": "model_fp32.onnx", "fp16": "model_fp16.onnx", "int8": "model_int8_qdq.onnx"}


def merge_metadata(model: Any, metadata: dict[str, str]) -> None:
    """Add/replace metadata_props of an in-memory ONNX model (sorted, one entry per key)."""
    merged = {p.key: p.value for p in model.metadata_props}
    merged.update(metadata)
    del model.metadata_props[:]
    for key, value in sorted(merged.items()):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def set_onnx_metadata(path: str | Path, metadata: dict[str, str]) -> None:
    """Add/replace metadata_props of an ONNX file in place (atomically)."""
    import onnx

    from ..fileio import atomic_path

    model = onnx.load(str(path))
    merge_metadata(model, metadata)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def read_metadata(path: Path) -> dict[str, str]:
    """The `edgefkd.*` metadata_props of an ONNX file."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise InputError(f"{path} is not a readable ONNX model: {str(exc).splitlines()[0][:200]}") from None
    return {p.key: p.value for p in model.metadata_props if p.key.startswith(METADATA_PREFIX)}


def onnxruntime_runner(path: Path, contract: PreprocessContract, precision: str, *, providers: list[str] | None = None,
                       threads: int | None = None, name: str | None = None, **_: Any) -> Any:
    """An ONNX Runtime runner; shared by `.onnx` and `.ort` (ONNX Runtime loads both)."""
    from ..runners.onnxruntime_runner import OnnxRuntimeRunner

    return OnnxRuntimeRunner(path, contract, precision, providers=providers, threads=threads, name=name)


def onnxruntime_available() -> str | None:
    return None if importlib.util.find_spec("onnxruntime") else "ONNX Runtime is not installed (pip install onnxruntime)"


def _int8(ctx: ExportContext, out: Path) -> Path:
    """Q/DQ INT8 from the fp32 ONNX, accuracy-aware when the export asks for it."""
    batches = ctx.calibration_batches()
    evaluator = ctx.pair_evaluator()
    if evaluator is not None:
        from ..exporters.accuracy_aware import quantize_onnx_accuracy_aware

        info = quantize_onnx_accuracy_aware(ctx.fp32_onnx, out, batches, evaluator, ctx.options["max_acc_drop"],
                                            method=ctx.calib_method, keep_fp=ctx.keep_fp)  # fmt: skip
        reverted = ", ".join(r["node"] for r in info["reverted"]) or "none"
        ctx.log(f"accuracy-aware Q/DQ: fp32 {info['fp32_accuracy']:.2f}% -> int8 {info['int8_accuracy']:.2f}% "
                f"(bound {ctx.options['max_acc_drop']} pp); reverted to float: {reverted}")  # fmt: skip
    else:
        from ..exporters.quantize_onnx import quantize_onnx_qdq

        info = quantize_onnx_qdq(ctx.fp32_onnx, out, batches, method=ctx.calib_method, keep_fp=ctx.keep_fp)
    ctx.record(out, quantization={**info, **ctx.calibration_provenance()})
    return out


def onnx_variant(ctx: ExportContext, precision: str) -> Path:
    """The ONNX of `precision` inside the export, built once and shared by the formats made from it."""
    out = ctx.stage / "onnx" / FILENAMES[precision]
    if precision == "fp32":
        return ctx.fp32_onnx
    if out.is_file():
        return out
    if precision == "fp16":
        from ..exporters.onnx import convert_onnx_fp16

        return convert_onnx_fp16(ctx.fp32_onnx, out, {METADATA_PREFIX + "precision": "fp16"})
    return _int8(ctx, out)


def export(ctx: ExportContext, precision: str) -> Path:
    return onnx_variant(ctx, precision)


FORMAT = Format(
    name="onnx",
    title="ONNX (ONNX Runtime)",
    suffixes=(".onnx",),
    precisions=("fp32", "fp16", "int8"),
    source="torch",
    extra=None,
    export=export,
    read_metadata=read_metadata,
    runner=onnxruntime_runner,
    available=onnxruntime_available,
    runtime="onnxruntime",
    requires=("onnx", "onnxruntime"),
)
