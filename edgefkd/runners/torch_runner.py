"""The PyTorch reference runner (eager, CPU)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..contract import PreprocessContract
from .base import Runner


class TorchRunner(Runner):
    backend = "torch"

    def __init__(self, module: Any, contract: PreprocessContract, name: str = "pytorch", threads: int | None = None) -> None:
        super().__init__(name, contract, "fp32")
        self.module = module
        self.threads = threads

    def _activate(self) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        self.module.eval()

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    def describe(self) -> dict[str, Any]:
        import torch

        return {**super().describe(), "torch": torch.__version__, "threads": torch.get_num_threads()}
