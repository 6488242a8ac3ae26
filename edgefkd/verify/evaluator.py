"""Verification accuracy of a model on a pair set, as a callable (for accuracy-aware INT8).

The faces are decoded and prepared once; each evaluation only runs the model. Accuracy is
the same 10-fold LFW-protocol number verify-parity reports (percent).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..contract import PreprocessContract
from ..imaging import fit_face
from . import metrics
from .datasets import load_pairs


class PairAccuracy:
    """`evaluator(path)` / `evaluator.from_embed(fn)` -> 10-fold accuracy in percent."""

    def __init__(
        self,
        pairs: str | os.PathLike[str],
        contract: PreprocessContract,
        images_root: str | os.PathLike[str] | None = None,
        folds: int = 10,
    ) -> None:
        self.pair_set = load_pairs(pairs, images_root)
        self.contract = contract
        self.folds = folds
        faces = np.stack([fit_face(self.pair_set.decode(i), contract.input_size) for i in range(len(self.pair_set.images))])
        self.inputs = contract.prepare(faces)

    def from_embeddings(self, embeddings: np.ndarray) -> float:
        scores = metrics.pair_scores(embeddings, embeddings, self.pair_set.pairs)
        return 100.0 * metrics.kfold_accuracy(scores, self.pair_set.is_same, self.folds).accuracy

    def from_embed(self, embed: Callable[[np.ndarray], np.ndarray]) -> float:
        """Accuracy of `embed(prepared batch) -> embeddings` (NNCF's accuracy control hands one)."""
        from ..runners.base import embed_batches

        return self.from_embeddings(embed_batches(embed, self.inputs, 64))

    def __call__(self, model_path: str | os.PathLike[str]) -> float:
        from ..runners import open_runner

        with open_runner(Path(model_path), contract=self.contract) as runner:
            return self.from_embed(runner.infer)
