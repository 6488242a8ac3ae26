"""ONNX Runtime Mobile (`.ort`): the fp32/fp16/int8 ONNX converted to ONNX Runtime's
flatbuffer format, which the minimal (mobile) ONNX Runtime builds load.

Conversion is ONNX Runtime's own `convert_onnx_models_to_ort` with fixed optimisations
for a target platform: `arm` (phones, ARM boards; the default) leaves out the x86-only NCHWc
layout transform and keeps Q/DQ pairs as int8 kernels can use them, `amd64` optimises for
x86. The optimised graph is saved, so a phone does no graph optimisation at load time.

The `.ort` flatbuffer keeps no edgefkd metadata_props, so the contract travels in a sidecar
`<model>.ort.json`. The full ONNX Runtime wheel loads `.ort` files too, which is how the
artifact is validated here.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..contract import METADATA_PREFIX
from ..errors import ExportError, InputError
from .base import ExportContext, Format, read_sidecar, write_sidecar
from .onnx import onnx_variant, onnxruntime_available, onnxruntime_runner

TARGETS = ("arm", "amd64")


def convert_to_ort(onnx_path: Path, out: Path, target: str) -> Path:
    """`onnx_path` -> `out` (.ort) optimised for `target`, written atomically."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    if target not in TARGETS:
        raise InputError(f"unknown --ort-target {target!r}; choose from {', '.join(TARGETS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", dir=out.parent))
    try:
        # The converter takes a file or folder and names its output after the input.
        source = work / "in" / "model.onnx"
        source.parent.mkdir()
        shutil.copyfile(onnx_path, source)
        # It prints a line per step and logs the operator config it writes beside the model.
        logging.disable(logging.INFO)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                convert_onnx_models_to_ort(
                    source, output_dir=work / "out", optimization_styles=[OptimizationStyle.Fixed], target_platform=target
                )
        finally:
            logging.disable(logging.NOTSET)
        ort_files = sorted((work / "out").glob("*.ort"))
        if len(ort_files) != 1:
            raise ExportError(f"ONNX Runtime wrote {len(ort_files)} .ort files for {onnx_path.name}, expected one")
        os.replace(ort_files[0], out)
    except ExportError:
        raise
    except Exception as exc:  # the converter raises whatever ONNX Runtime raised while optimising
        raise ExportError(f"ONNX Runtime could not convert {onnx_path.name} to .ort: {str(exc).strip().splitlines()[0][:240]}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def export(ctx: ExportContext, precision: str) -> Path:
    target = ctx.options.get("ort_target") or "arm"
    source = onnx_variant(ctx, precision)
    out = convert_to_ort(source, ctx.stage / "ort" / f"model_{precision}.ort", target)
    # The artifact's own sidecar carries what the source ONNX carried, plus the target.
    from .onnx import read_metadata as read_onnx_metadata

    metadata = {**read_onnx_metadata(source), METADATA_PREFIX + "precision": precision, METADATA_PREFIX + "ort_target": target}
    write_sidecar(out, metadata)
    quantization = ctx.artifact_info.get(source, {}).get("quantization")
    ctx.record(out, ort_target=target, **({"quantization": quantization} if quantization else {}))
    return out


def read_metadata(path: Path) -> dict[str, str]:
    return read_sidecar(path)


FORMAT = Format(
    name="ort",
    title="ONNX Runtime Mobile (.ort)",
    suffixes=(".ort",),
    precisions=("fp32", "fp16", "int8"),
    source="onnx",
    extra=None,
    export=export,
    read_metadata=read_metadata,
    runner=onnxruntime_runner,
    available=onnxruntime_available,
    runtime="onnxruntime",
    requires=("onnx", "onnxruntime"),
)
