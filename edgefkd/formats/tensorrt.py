"""TensorRT engines (`.engine`/`.plan`/`.trt`), built from the exported ONNX on the target
GPU; the contract lives in a sidecar `<engine>.json` (an engine holds no key/value metadata).

An engine is specific to one GPU and TensorRT version, so export writes a bundle (trtexec
command files, pre-filled sidecars, a compatibility report) and builds engines only where
TensorRT and a GPU are present. The heavy lifting stays in exporters/tensorrt.py and
runners/tensorrt_runner.py; this module only declares the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..contract import PreprocessContract
from .base import ExportContext, Format, read_sidecar

SUFFIXES = (".engine", ".plan", ".trt")


def read_metadata(path: Path) -> dict[str, str]:
    return read_sidecar(path)


def runner(path: Path, contract: PreprocessContract, precision: str, *, name: str | None = None,
           device: str = "CPU", **_: Any) -> Any:
    from ..runners.tensorrt_runner import TensorRTRunner

    return TensorRTRunner(path, contract, precision, name=name, device=device)


def available() -> str | None:
    from ..runners.tensorrt_runner import tensorrt_unavailable_reason

    return tensorrt_unavailable_reason()


def bundle(ctx: ExportContext, manifest: Any, precisions: Sequence[str]) -> list[Any]:
    """Engines (or the deferred bundle) for the ONNX artifacts the manifest lists so far."""
    from ..exporters.tensorrt import TensorRTOptions, export_tensorrt

    manifest.write(ctx.stage)
    options = TensorRTOptions(calib_source=ctx.options.get("calib"), **ctx.options.get("tensorrt", {}))
    return export_tensorrt(ctx.stage, manifest, precisions, options)


FORMAT = Format(
    name="tensorrt",
    title="TensorRT engine",
    suffixes=SUFFIXES,
    precisions=("fp32", "fp16", "int8"),
    source="onnx",
    extra="tensorrt",
    export=None,
    read_metadata=read_metadata,
    runner=runner,
    available=available,
    runtime="tensorrt",
    bundle=bundle,
)
