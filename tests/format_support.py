"""Helpers for the per-format tests: an ExportContext for a loaded student, users' own
architectures, a TorchScript copy, and the agreement / AUC checks."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefkd.formats.base import ExportContext
from edgefkd.models.loading import LoadedStudent
from edgefkd.verify import metrics
from edgefkd.verify.evaluator import PairAccuracy

#: A user's own architectures: `tiny` (PReLU, a non-square 112x96 input, a fixed-size head),
#: `spatial` (an output that is not (N, D)) and `needs_svd` (an op converters reject).
USER_ARCH = textwrap.dedent(
    """
    import torch
    from torch import nn

    class TinyFaceNet(nn.Module):
        '''A small non-square student: 112x96 input, PReLU, 64-d embedding.'''

        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.PReLU(16),
                nn.Conv2d(16, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.PReLU(32),
            )
            # A fixed-size head: only a 112x96 input fits (28x24 feature map).
            self.head = nn.Linear(32 * 28 * 24, 64)

        def forward(self, x):
            return self.head(torch.flatten(self.body(x), 1))

    def tiny(**kwargs):
        return TinyFaceNet()

    class SpatialMap(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, 1, 1)

        def forward(self, x):
            return self.conv(x)

    def spatial(**kwargs):
        return SpatialMap()

    class NeedsSvd(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 8)

        def forward(self, x):
            s = torch.linalg.svdvals(x.mean(1))
            return self.fc(s.mean(1, keepdim=True).expand(-1, 3))

    def needs_svd(**kwargs):
        return NeedsSvd()
    """
)


def save_torchscript(student: LoadedStudent, path: Path) -> Path:
    """A traced TorchScript copy of a loaded student (what a user exports with torch.jit)."""
    import torch

    example = torch.from_numpy(student.contract.example_input(1))
    torch.jit.trace(student.module, example).save(str(path))
    return path


def export_context(student: LoadedStudent, stage: Path, keep_fp: Sequence[str] = ()) -> ExportContext:
    """What the export pipeline hands a format, built from a loaded student.

    Calibration uses the shipped synthetic faces, never the real faces the tests judge on.
    """
    from edgefkd.calib import load_calibration_faces

    meta = {
        "edgefkd.model": student.name,
        "edgefkd.arch": student.arch,
        "edgefkd.embedding_size": str(student.embedding_size),
        "edgefkd.checkpoint_sha256": student.checkpoint_sha256,
        **student.contract.to_metadata(),
    }
    stage.mkdir(parents=True, exist_ok=True)
    return ExportContext(
        module=student.module, contract=student.contract, fp32_onnx=stage / "unused.onnx", stage=stage,
        metadata=meta, calibration_faces=lambda: load_calibration_faces("default", student.contract.input_size),
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
