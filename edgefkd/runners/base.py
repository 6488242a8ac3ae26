"""One runner interface for every backend (after Polygraphy's runners).

A runner wraps one artifact (or the PyTorch reference) and turns a prepared input batch
into embeddings. The export validator, verify-parity and benchmark-latency all drive the
same runners, so a parity number and a latency number always describe the same thing.

    with open_runner("export/x/model.onnx") as runner:
        emb = runner.infer(runner.contract.prepare(faces_rgb_uint8))

Lifecycle: `activate()` loads/compiles (timed as first-inference cost by the benchmark),
`infer()` runs one batch synchronously, `deactivate()` frees resources. Runners are
context managers. `infer` takes any batch size the artifact's profile allows.
"""

from __future__ import annotations

import abc
import time
from typing import Any

import numpy as np

from ..contract import PreprocessContract
from ..errors import EdgeFKDError


class Runner(abc.ABC):
    #: "torch", "onnxruntime", "openvino", "tensorrt"
    backend: str = "?"

    def __init__(self, name: str, contract: PreprocessContract, precision: str = "fp32") -> None:
        self.name = name
        self.contract = contract
        self.precision = precision
        self.is_active = False
        #: seconds spent in activate() (load + compile), for the benchmark
        self.activate_seconds: float | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def activate(self) -> "Runner":
        if not self.is_active:
            start = time.perf_counter()
            self._activate()
            self.activate_seconds = time.perf_counter() - start
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def __enter__(self) -> "Runner":
        return self.activate()

    def __exit__(self, *exc: Any) -> None:
        self.deactivate()

    # -- inference ---------------------------------------------------------------------
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Embeddings (N, D) float32 for a prepared input batch (see contract.prepare)."""
        if not self.is_active:
            raise EdgeFKDError(f"runner {self.name} used before activate()")
        out = np.asarray(self._infer(batch), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise EdgeFKDError(
                f"{self.name}: expected embeddings of shape (N={batch.shape[0]}, D), got {tuple(out.shape)}"
            )
        return out

    def embed_faces(self, faces_rgb: np.ndarray) -> np.ndarray:
        """Prepare RGB uint8 faces (N, H, W, 3) with this runner's contract and infer."""
        return self.infer(self.contract.prepare(faces_rgb))

    def describe(self) -> dict[str, Any]:
        """Backend details worth recording in a report (device, threads, provider...)."""
        return {"backend": self.backend, "precision": self.precision}

    @abc.abstractmethod
    def _activate(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...

    def _deactivate(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.precision}>"
