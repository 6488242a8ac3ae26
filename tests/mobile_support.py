"""Shared by the LiteRT and ExecuTorch format tests: one export context, faces, accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefkd.calib import load_calibration_faces
from edgefkd.formats.base import ExportContext
from edgefkd.verify import metrics
from edgefkd.verify.evaluator import PairAccuracy


def export_context(student: Any, stage: Path, keep_fp: Sequence[str] = ()) -> ExportContext:
    """What the export pipeline hands a format, built from a loaded student.

    Calibration uses the shipped synthetic faces, never the real faces the tests judge on.
    """
    return ExportContext(
        module=student.module,
        contract=student.contract,
        fp32_onnx=stage / "unused.onnx",
        stage=stage,
        metadata=student.contract.to_metadata(model=student.name),
        calibration_faces=lambda: load_calibration_faces("default", student.contract.input_size),
        keep_fp=tuple(keep_fp),
    )


def embed_with(runner: Any, inputs: np.ndarray) -> np.ndarray:
    with runner:
        return runner.infer(inputs)


def pair_auc(embeddings: np.ndarray, pairs: PairAccuracy) -> float:
    """ROC AUC of the pair cosine scores (scikit-learn)."""
    from sklearn.metrics import roc_auc_score

    scores = metrics.pair_scores(embeddings, embeddings, pairs.pair_set.pairs)
    return float(roc_auc_score(pairs.pair_set.is_same, scores))


def cosine_p1(reference: np.ndarray, candidate: np.ndarray) -> float:
    return float(np.percentile(metrics.cosine_rows(reference, candidate), 1))
