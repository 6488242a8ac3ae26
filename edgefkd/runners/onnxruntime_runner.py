"""ONNX Runtime runner (.onnx and ONNX Runtime Mobile .ort): CPU by default; CUDA/TensorRT
execution providers when present."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..contract import PreprocessContract
from ..errors import InputError, library_message
from .base import Runner


class OnnxRuntimeRunner(Runner):
    backend = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        contract: PreprocessContract,
        precision: str = "fp32",
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name or Path(path).name, contract, precision)
        self.path = Path(path)
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]
        self.threads = threads
        self.session: Any = None

    def _activate(self) -> None:
        import onnxruntime as ort

        available = set(ort.get_available_providers())
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise InputError(f"ONNX Runtime providers not available here: {missing} (available: {sorted(available)})")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=self.providers)
        except Exception as exc:
            raise InputError(f"ONNX Runtime cannot load {self.path}: {str(exc).splitlines()[0][:240]}") from None
        declared = self.session.get_inputs()[0]
        self.input_name = declared.name
        # A number (not a symbolic name) on the batch axis: the graph takes exactly that many.
        batch_dim = declared.shape[0] if declared.shape else None
        self.max_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self.fixed_batch = self.max_batch is not None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def _deactivate(self) -> None:
        self.session = None

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {**super().describe(), "onnxruntime": ort.__version__, "providers": self.providers, "threads": self.threads or "default"}
