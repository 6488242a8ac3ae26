"""LiteRT (TFLite) `.tflite`: converted by litert-torch, run by the ai-edge-litert interpreter.

- fp32: the student as is; fp16: fp16 weights dequantized at load, float compute (the
  converter's fp16 recipe); int8: static, face-aware PT2E (see formats/pt2e.py) calibrated
  on the calibration faces. Every precision keeps float32 input and output, so the
  preprocessing contract is the same as for every other artifact (a fully-int8 model would
  take a quantized input whose scale clips normalised pixels).
- The converter lowers a fixed batch: a flatten into the embedding is a reshape with a
  constant shape, so the interpreter cannot resize the batch. The runner reads the input
  signature and splits larger batches.
- The contract travels in a sidecar `<model>.tflite.json` (TFLite metadata needs the
  TensorFlow-only metadata writers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..contract import METADATA_PREFIX, PreprocessContract
from ..errors import BackendUnavailable, ExportError, InputError
from ..runners.base import Runner
from .base import ExportContext, Format, read_sidecar, sidecar_path, write_sidecar
from .pt2e import calibration_inputs, quantize_static
from .torch_source import capture, converter_error, example_input, first_line

NAME = "litert"


def available() -> str | None:
    """Whether the runtime is installed, found without importing it (list-formats stays fast)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("ai_edge_litert.interpreter") is not None
    except (ImportError, ValueError) as exc:
        return f"install edgefkd[litert] ({exc})"
    return None if found else "install edgefkd[litert] (no ai_edge_litert package)"


def _converter() -> Any:
    try:
        import litert_torch
    except ImportError as exc:
        raise BackendUnavailable(f"litert export needs litert-torch: install edgefkd[litert] ({exc})") from None
    return litert_torch


def _quant_config(ctx: ExportContext, precision: str) -> tuple[Any, Any, dict[str, Any] | None]:
    """(module to convert, quant_config, quantization record) for a precision."""
    if precision == "fp16":
        from litert_torch.generative.quantize import quant_recipes

        return ctx.module, quant_recipes.full_fp16_recipe(), None
    if precision == "int8":
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig

        quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
        module, info = quantize_static(
            ctx.module, quantizer, calibration_inputs(ctx), fmt=NAME, keep_fp=ctx.keep_fp, log=ctx.log,
            fold_quantize=False,
        )
        return module, QuantConfig(pt2e_quantizer=quantizer), info
    return ctx.module, None, None


def export(ctx: ExportContext, precision: str) -> Path:
    """Write `litert/model_<precision>.tflite` and its sidecar into the stage."""
    from ..fileio import atomic_path

    litert_torch = _converter()
    example = example_input(ctx.contract, NAME)
    if precision == "fp32":
        capture(ctx.module, example, NAME)  # a clear error for TorchScript / unexportable models
    module, quant_config, quantization = _quant_config(ctx, precision)
    out = ctx.stage / NAME / f"model_{precision}.tflite"
    try:
        edge_model = litert_torch.convert(module, (example,), quant_config=quant_config)
        with atomic_path(out) as tmp:
            edge_model.export(str(tmp))
    except (InputError, ExportError):
        raise
    except Exception as exc:
        raise converter_error(NAME, exc) from exc
    write_sidecar(out, {**ctx.metadata, METADATA_PREFIX + "precision": precision})
    if quantization:
        ctx.record(out, quantization={**quantization, **ctx.calibration_provenance()})
    return out


def read_metadata(path: Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"artifact not found: {path}")
    return read_sidecar(path)


class LiteRTRunner(Runner):
    backend = "litert"

    def __init__(
        self, path: str | Path, contract: PreprocessContract, precision: str = "fp32",
        threads: int | None = None, name: str | None = None, **_options: Any,
    ) -> None:
        super().__init__(name or Path(path).name, contract, precision)
        self.path = Path(path)
        self.threads = threads
        self.interpreter: Any = None

    def _activate(self) -> None:
        reason = available()
        if reason:
            raise BackendUnavailable(f"cannot run {self.path.name}: {reason}")
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads or None)
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise InputError(f"{self.path} is not a readable LiteRT model: {first_line(exc)}") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        if self.input["dtype"] != np.float32:
            raise InputError(f"{self.path}: input is {np.dtype(self.input['dtype']).name}, edgefkd runs float32-input models")
        # the input signature says whether the batch is fixed (the base splits and pads to it)
        batch = int(self.input["shape_signature"][0])
        self.max_batch = None if batch == -1 else batch
        self.fixed_batch = self.max_batch is not None
        self._batch = int(self.input["shape"][0])

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._batch:  # only a dynamic-batch model gets here
            self.interpreter.resize_tensor_input(self.input["index"], list(batch.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self.input["index"], np.ascontiguousarray(batch, dtype=np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()

    def _deactivate(self) -> None:
        self.interpreter = None

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {**super().describe(), "ai-edge-litert": version("ai-edge-litert"), "threads": self.threads or "default"}


def runner(path: str | Path, contract: PreprocessContract, precision: str = "fp32", **options: Any) -> LiteRTRunner:
    return LiteRTRunner(path, contract, precision, **options)


FORMAT = Format(
    name=NAME,
    title="LiteRT (TFLite)",
    suffixes=(".tflite",),
    precisions=("fp32", "fp16", "int8"),
    source="torch",
    extra="litert",
    runtime="ai-edge-litert",
    requires=("litert_torch", "ai_edge_litert"),
    export=export,
    read_metadata=read_metadata,
    runner=runner,
    available=available,
    companions=lambda path: [p for p in [sidecar_path(path)] if p.is_file()],
)
