"""One runner interface for every backend (after Polygraphy's runners).

A runner wraps one artifact (or the PyTorch reference) and turns a prepared input batch
into embeddings. The export validator, verify-parity and benchmark-latency all drive the
same runners, so a parity number and a latency number always describe the same thing.

    with open_runner("export/x/model.onnx") as runner:
        emb = runner.infer(runner.contract.prepare(faces_rgb_uint8))

Lifecycle: `activate()` loads/compiles (timed as first-inference cost by the benchmark),
`infer()` runs one batch synchronously, `deactivate()` frees resources. Runners are
context managers. `infer` takes any batch size: a runner whose artifact takes at most
`max_batch` inputs per call (a fixed batch-1 ONNX, say) splits the batch itself, so callers
never need to know an artifact's batch limit. `embed_batches` is the one loop that embeds
many inputs in bounded batches.
"""

from __future__ import annotations

import abc
import time
from typing import Any, Callable

import numpy as np

from ..contract import PreprocessContract
from ..errors import EdgeFKDError


def embed_batches(infer: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, batch_size: int | None) -> np.ndarray:
    """`infer` over `inputs` in batches of at most `batch_size` (None: all at once), concatenated."""
    if batch_size is None or len(inputs) <= batch_size:
        return np.asarray(infer(inputs))
    return np.concatenate([np.asarray(infer(inputs[i : i + batch_size])) for i in range(0, len(inputs), batch_size)])


class Runner(abc.ABC):
    #: "torch", "onnxruntime", "openvino", "tensorrt"
    backend: str = "?"
    #: The most inputs one call of the artifact takes (None: any). Subclasses set it when
    #: they activate, from the artifact's declared input shape.
    max_batch: int | None = None
    #: True when the artifact takes exactly `max_batch` inputs (a fixed batch axis): a
    #: shorter last chunk is padded and the padding's outputs dropped.
    fixed_batch: bool = False

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
        out = np.asarray(embed_batches(self._infer_limited, batch, self.max_batch), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise EdgeFKDError(
                f"{self.name}: expected embeddings of shape (N={batch.shape[0]}, D), got {tuple(out.shape)}"
            )
        return out

    def _infer_limited(self, chunk: np.ndarray) -> np.ndarray:
        short = (self.max_batch or 0) - len(chunk)
        if not (self.fixed_batch and short > 0):
            return self._infer(chunk)
        padded = np.concatenate([chunk, np.zeros((short, *chunk.shape[1:]), dtype=chunk.dtype)])
        return np.asarray(self._infer(padded))[: len(chunk)]

    def embed(self, inputs: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Embeddings of prepared inputs, `batch_size` at a time (bounds memory; None: one call)."""
        return embed_batches(self.infer, inputs, batch_size)

    def embed_faces(self, faces_rgb: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Prepare RGB uint8 faces (N, H, W, 3) with this runner's contract and embed them."""
        return self.embed(self.contract.prepare(faces_rgb), batch_size)

    def describe(self) -> dict[str, Any]:
        """Backend details worth recording in a report (device, threads, provider...)."""
        return {"backend": self.backend, "precision": self.precision, "max_batch": self.max_batch}

    @abc.abstractmethod
    def _activate(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...

    def _deactivate(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.precision}>"
