"""ExecuTorch `.pte`: torch.export -> XNNPACK delegate, run by ExecuTorch's Python runtime.

- fp32: the student as is; fp16: the student in half precision between a float32 input
  cast and a float32 output cast, so XNNPACK runs its fp16 kernels while the contract stays
  float32 in/out; int8: static, face-aware PT2E with the XNNPACK quantizer (per-channel
  symmetric weights, see formats/pt2e.py), calibrated on the calibration faces.
- Lowered at batch 1: a dynamic batch lowers, but the runtime then refuses batches above
  a bound fixed by memory planning, and PT2E calibration accepts only the exported shape.
  The runner reads the batch from the method's input metadata and splits larger batches.
- The contract travels in a sidecar `<model>.pte.json` (a .pte has no key/value metadata).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import METADATA_PREFIX, PreprocessContract
from ..errors import BackendUnavailable, ExportError, InputError
from ..runners.base import Runner
from .base import ExportContext, Format, read_sidecar, sidecar_path, write_sidecar
from .pt2e import calibration_inputs, quantize_static
from .torch_source import capture, converter_error, example_input, first_line

NAME = "executorch"


def available() -> str | None:
    """Whether the runtime is installed, found without importing it (list-formats stays fast)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("executorch.runtime") is not None
    except (ImportError, ValueError) as exc:
        return f"install edgefkd[executorch] ({exc})"
    return None if found else "install edgefkd[executorch] (no executorch package)"


def _half_precision(module: Any) -> Any:
    """The student computing in fp16 behind float32 input/output casts."""
    import torch

    class HalfPrecision(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = copy.deepcopy(inner).half().eval()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x.half()).float()

    return HalfPrecision(module)


def _program(ctx: ExportContext, precision: str, example: Any) -> tuple[Any, dict[str, Any] | None]:
    """(exported program to lower, quantization record) for a precision."""
    import torch

    if precision == "fp16":
        if isinstance(ctx.module, torch.jit.ScriptModule):
            return capture(ctx.module, example, NAME), None  # its one-line TorchScript error
        return capture(_half_precision(ctx.module), example, NAME), None
    if precision == "int8":
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        quantized, info = quantize_static(ctx.module, quantizer, calibration_inputs(ctx), fmt=NAME, keep_fp=ctx.keep_fp, log=ctx.log)
        return capture(quantized, example, NAME), info
    return capture(ctx.module, example, NAME), None


def export(ctx: ExportContext, precision: str) -> Path:
    """Write `executorch/model_<precision>.pte` and its sidecar into the stage."""
    from ..fileio import atomic_write_bytes

    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    except ImportError as exc:
        raise BackendUnavailable(f"executorch export needs executorch: install edgefkd[executorch] ({exc})") from None
    example = example_input(ctx.contract, NAME)
    program, quantization = _program(ctx, precision, example)
    try:
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    except (InputError, ExportError):
        raise
    except Exception as exc:
        raise converter_error(NAME, exc) from exc
    out = ctx.stage / NAME / f"model_{precision}.pte"
    atomic_write_bytes(out, lowered.buffer)
    write_sidecar(out, {**ctx.metadata, METADATA_PREFIX + "precision": precision})
    if quantization:
        ctx.record(out, quantization={**quantization, **ctx.calibration_provenance()})
    return out


def read_metadata(path: Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"artifact not found: {path}")
    return read_sidecar(path)


class ExecuTorchRunner(Runner):
    backend = "executorch"

    def __init__(
        self, path: str | Path, contract: PreprocessContract, precision: str = "fp32",
        threads: int | None = None, name: str | None = None, **_options: Any,
    ) -> None:
        super().__init__(name or Path(path).name, contract, precision)
        self.path = Path(path)
        self.threads = threads
        self.method: Any = None

    def _activate(self) -> None:
        reason = available()
        if reason:
            raise BackendUnavailable(f"cannot run {self.path.name}: {reason}")
        from executorch.runtime import Runtime

        if self.threads:
            # XNNPACK's threadpool is process-wide in the Python runtime
            from executorch.extension.pybindings import portable_lib

            portable_lib._unsafe_reset_threadpool(int(self.threads))
        try:
            self.method = Runtime.get().load_program(self.path).load_method("forward")
            sizes = list(self.method.metadata.input_tensor_meta(0).sizes())
        except Exception as exc:
            raise InputError(f"{self.path} is not a readable ExecuTorch program: {first_line(exc)}") from None
        if self.method is None:
            raise InputError(f"{self.path} has no 'forward' method")
        # lowered at a static shape: the base splits batches to it and pads the last one
        self.max_batch = int(sizes[0])
        self.fixed_batch = True

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        return self.method.execute([torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))])[0].numpy()

    def _deactivate(self) -> None:
        self.method = None

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {**super().describe(), "executorch": version("executorch"), "threads": self.threads or "default"}


def runner(path: str | Path, contract: PreprocessContract, precision: str = "fp32", **options: Any) -> ExecuTorchRunner:
    return ExecuTorchRunner(path, contract, precision, **options)


FORMAT = Format(
    name=NAME,
    title="ExecuTorch (XNNPACK)",
    suffixes=(".pte",),
    precisions=("fp32", "fp16", "int8"),
    source="torch",
    extra="executorch",
    runtime="executorch",
    requires=("executorch",),
    export=export,
    read_metadata=read_metadata,
    runner=runner,
    available=available,
    companions=lambda path: [p for p in [sidecar_path(path)] if p.is_file()],
)
