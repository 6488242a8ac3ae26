"""Validate an artifact against the PyTorch reference right after export (after Optimum).

Embeddings of the same faces are compared at batch 1 and at a larger batch (a fixed-batch
graph or a batch-dependent bug shows up there). Shape mismatches fail at once; tolerance
misses are reported with numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ValidationError
from ..runners.base import Runner
from ..verify.metrics import agreement

#: precision -> (statistic, minimum). INT8 is judged on the 1st percentile so that one
#: outlier face does not hide how the bulk behaves, and because its bar is lower.
THRESHOLDS: dict[str, tuple[str, float]] = {
    "fp32": ("cosine_min", 0.999),
    "fp16": ("cosine_min", 0.999),
    "int8": ("cosine_p1", 0.97),
}


def parity_stats(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """verify-parity's agreement statistics plus the largest absolute difference."""
    stats = agreement(reference, candidate)
    stats["max_abs"] = float(np.max(np.abs(reference.astype(np.float64) - candidate.astype(np.float64))))
    return stats


def compare_runners(
    reference: Runner,
    candidate: Runner,
    faces: np.ndarray,
    batch_sizes: tuple[int, ...] = (1, 8),
    reference_embeddings: np.ndarray | None = None,
) -> dict[str, Any]:
    """Parity of `candidate` vs `reference` on RGB uint8 faces, at each batch size.

    Each runner prepares the faces with its own contract, so an artifact with folded
    preprocessing (uint8 input) is compared on exactly the same pixels.
    """
    if reference_embeddings is None:
        reference_embeddings = reference.embed_faces(faces, max(batch_sizes))
    candidate_input = candidate.contract.prepare(faces)
    per_batch = []
    for bs in batch_sizes:
        emb = candidate.embed(candidate_input, bs)
        if emb.shape != reference_embeddings.shape:
            raise ValidationError(
                f"{candidate.name}: embeddings of shape {emb.shape} at batch {bs}, PyTorch gives {reference_embeddings.shape}"
            )
        per_batch.append(parity_stats(reference_embeddings, emb))
    worst = min(per_batch, key=lambda s: s["cosine_min"])
    return {
        "cosine_min": min(s["cosine_min"] for s in per_batch),
        "cosine_p1": min(s["cosine_p1"] for s in per_batch),
        "cosine_mean": float(np.mean([s["cosine_mean"] for s in per_batch])),
        "max_abs": max(s["max_abs"] for s in per_batch),
        "samples": worst["samples"] * len(batch_sizes),
        "batch_sizes": list(batch_sizes),
    }


def check_parity(name: str, precision: str, parity: dict[str, Any]) -> str | None:
    """None when `parity` meets the precision's threshold, else a one-line reason."""
    stat, minimum = THRESHOLDS.get(precision, THRESHOLDS["fp32"])
    value = parity[stat]
    if value < minimum:
        return f"{name}: {stat} {value:.6f} < {minimum} vs PyTorch (mean {parity['cosine_mean']:.6f}, max |diff| {parity['max_abs']:.3g})"
    return None
