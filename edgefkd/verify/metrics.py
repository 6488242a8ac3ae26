"""Face-verification metrics on cosine scores. numpy only.

Convention everywhere: a pair is predicted "same person" when its score is strictly
greater than the threshold. FAR = impostor pairs accepted / impostor pairs, FRR = genuine
pairs rejected / genuine pairs, TAR = 1 - FRR.

Accuracy follows the LFW protocol: the pairs are cut into 10 consecutive folds; for each
fold the threshold that maximises accuracy on the other 9 folds is applied to it; the
mean and standard deviation of the 10 fold accuracies are reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

FAR_TARGETS = (1e-2, 1e-3)


def far_key(far: float) -> str:
    """JSON key of a FAR target: 1e-2 -> "1e-02"."""
    return f"{far:.0e}"


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `a` with the same row of `b` (0 for zero vectors)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)


def pair_scores(emb_a: np.ndarray, emb_b: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine score of each pair (i, j): emb_a[i] against emb_b[j]."""
    return cosine_rows(emb_a[pairs[:, 0]], emb_b[pairs[:, 1]])


def agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """How closely `candidate` reproduces `reference` embeddings of the same images."""
    cos = cosine_rows(reference, candidate)
    ref_norm = np.linalg.norm(np.asarray(reference, dtype=np.float64), axis=1)
    cand_norm = np.linalg.norm(np.asarray(candidate, dtype=np.float64), axis=1)
    ratio = np.divide(cand_norm, ref_norm, out=np.full_like(cand_norm, np.nan), where=ref_norm > 0)
    return {
        "cosine_min": float(cos.min()),
        "cosine_p1": float(np.percentile(cos, 1)),
        "cosine_mean": float(cos.mean()),
        "norm_ratio_mean": float(np.nanmean(ratio)),
        "norm_ratio_min": float(np.nanmin(ratio)),
        "norm_ratio_max": float(np.nanmax(ratio)),
        "samples": int(len(cos)),
    }


# -- ROC ----------------------------------------------------------------------------------


def roc_curve(scores: np.ndarray, is_same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every distinct threshold, from (0, 0) to (1, 1), FAR non-decreasing.

    Tied scores move together, so a tie between a genuine and an impostor pair becomes a
    diagonal step (it counts one half in the AUC).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(is_same, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # Last index of each run of equal scores: the ROC points.
    ends = np.r_[np.nonzero(np.diff(sorted_scores))[0], len(sorted_scores) - 1]
    tp = np.cumsum(sorted_labels)[ends]
    fp = np.cumsum(~sorted_labels)[ends]
    far = np.r_[0.0, fp / max(1, (~labels).sum())]
    tar = np.r_[0.0, tp / max(1, labels.sum())]
    return far, tar


def roc_auc(far: np.ndarray, tar: np.ndarray) -> float:
    """Area under the ROC (trapezoids)."""
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))


def equal_error_rate(far: np.ndarray, tar: np.ndarray) -> float:
    """The rate where FAR equals FRR, linearly interpolated between ROC points."""
    gap = far - (1.0 - tar)  # rises from -1 at (0, 0) to +1 at (1, 1)
    i = int(np.argmax(gap >= 0))
    if i == 0:
        return float(far[0])
    step = gap[i] - gap[i - 1]
    t = 0.0 if step == 0 else -gap[i - 1] / step
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


# -- thresholds ---------------------------------------------------------------------------


def rates_at(scores: np.ndarray, is_same: np.ndarray, threshold: float) -> dict[str, float]:
    """FAR, FRR and accuracy of the decision `score > threshold`."""
    labels = np.asarray(is_same, dtype=bool)
    accepted = np.asarray(scores) > threshold
    return {
        "far": float(accepted[~labels].mean()),
        "frr": float((~accepted[labels]).mean()),
        "accuracy": float((accepted == labels).mean()),
    }


def best_accuracy_threshold(scores: np.ndarray, is_same: np.ndarray) -> float:
    """The threshold that maximises accuracy on these pairs.

    Candidates are the midpoints between consecutive distinct scores (plus one below and
    one above the range). Ties in accuracy go to the middle one of the tied candidates:
    taking an edge of the plateau (the lowest, say) makes the threshold chosen on 9 folds
    swing with one or two pairs, and the 10-fold accuracy with it, on small pair sets.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(is_same, dtype=bool)
    distinct = np.unique(scores)
    # Candidate k rejects every score <= distinct[k-1] (k = 0 rejects nothing).
    candidates = np.r_[distinct[0] - 1.0, (distinct[:-1] + distinct[1:]) / 2.0, distinct[-1] + 1.0]
    rejected_neg = np.r_[0, np.searchsorted(np.sort(scores[~labels]), distinct, side="right")]
    rejected_pos = np.r_[0, np.searchsorted(np.sort(scores[labels]), distinct, side="right")]
    correct = rejected_neg + (labels.sum() - rejected_pos)
    tied = np.flatnonzero(correct == correct.max())
    return float(candidates[tied[len(tied) // 2]])


def threshold_at_far(scores: np.ndarray, is_same: np.ndarray, target_far: float) -> float:
    """The lowest threshold whose FAR on these pairs is at most `target_far`."""
    impostors = np.sort(np.asarray(scores, dtype=np.float64)[~np.asarray(is_same, dtype=bool)])[::-1]
    allowed = int(math.floor(target_far * len(impostors) + 1e-9))
    if allowed >= len(impostors):
        return float(impostors[-1] - 1.0)
    # Accept at most `allowed` impostors: reject the (allowed+1)-th highest and all below.
    return float(impostors[allowed])


def tar_at_far(scores: np.ndarray, is_same: np.ndarray, target_far: float) -> dict[str, Any]:
    """TAR at a FAR target, or a marker when there are too few impostor pairs to resolve it."""
    impostors = int((~np.asarray(is_same, dtype=bool)).sum())
    needed = math.ceil(1.0 / target_far - 1e-9)
    if impostors < needed:
        return {
            "tar": None,
            "threshold": None,
            "far": None,
            "impostor_pairs": impostors,
            "note": f"not enough impostor pairs: FAR {target_far:g} needs at least {needed}, have {impostors}",
        }
    threshold = threshold_at_far(scores, is_same, target_far)
    rates = rates_at(scores, is_same, threshold)
    return {
        "tar": 1.0 - rates["frr"],
        "threshold": threshold,
        "far": rates["far"],
        "impostor_pairs": impostors,
        "note": None,
    }


# -- 10-fold accuracy ---------------------------------------------------------------------


@dataclass
class FoldedAccuracy:
    accuracy: float
    accuracy_std: float
    fold_accuracies: list[float]
    fold_thresholds: list[float]
    #: per pair: was its out-of-fold prediction right
    correct: np.ndarray


def kfold_accuracy(scores: np.ndarray, is_same: np.ndarray, folds: int = 10) -> FoldedAccuracy:
    """LFW-protocol accuracy: consecutive folds, threshold chosen on the other folds."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(is_same, dtype=bool)
    if len(scores) < folds:
        raise InputError(f"{folds}-fold accuracy needs at least {folds} pairs, got {len(scores)}")
    correct = np.zeros(len(scores), dtype=bool)
    accuracies, thresholds = [], []
    for test in np.array_split(np.arange(len(scores)), folds):
        train = np.ones(len(scores), dtype=bool)
        train[test] = False
        if labels[train].all() or not labels[train].any():
            raise InputError("a training split has only one class of pairs: shuffle or balance the pair list")
        threshold = best_accuracy_threshold(scores[train], labels[train])
        correct[test] = (scores[test] > threshold) == labels[test]
        accuracies.append(float(correct[test].mean()))
        thresholds.append(threshold)
    return FoldedAccuracy(
        accuracy=float(np.mean(accuracies)),
        accuracy_std=float(np.std(accuracies)),
        fold_accuracies=accuracies,
        fold_thresholds=thresholds,
        correct=correct,
    )


@dataclass
class Verification:
    """Verification metrics of one set of pair scores."""

    scores: np.ndarray
    is_same: np.ndarray
    folded: FoldedAccuracy
    far: np.ndarray
    tar: np.ndarray
    auc: float
    eer: float
    tar_at_far: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        best = best_accuracy_threshold(self.scores, self.is_same)
        return {
            "accuracy": self.folded.accuracy,
            "accuracy_std": self.folded.accuracy_std,
            # Optimistic: the threshold is tuned on the very pairs it is scored on.
            "best_threshold_accuracy": rates_at(self.scores, self.is_same, best)["accuracy"],
            "best_threshold": best,
            "auc": self.auc,
            "eer": self.eer,
            "tar_at_far": self.tar_at_far,
            "fold_thresholds": self.folded.fold_thresholds,
        }


def verify_scores(scores: np.ndarray, is_same: np.ndarray, folds: int = 10) -> Verification:
    """Every verification metric for one set of pair scores."""
    far, tar = roc_curve(scores, is_same)
    return Verification(
        scores=np.asarray(scores, dtype=np.float64),
        is_same=np.asarray(is_same, dtype=bool),
        folded=kfold_accuracy(scores, is_same, folds),
        far=far,
        tar=tar,
        auc=roc_auc(far, tar),
        eer=equal_error_rate(far, tar),
        tar_at_far={far_key(t): tar_at_far(scores, is_same, t) for t in FAR_TARGETS},
    )


def threshold_drift(reference: Verification, candidate: Verification, far_target: float = 1e-2) -> dict[str, Any]:
    """Apply the reference's operating thresholds unchanged to the candidate's scores.

    A deployed system keeps the threshold it was tuned with; re-optimising it per model
    would hide exactly the drift this reports.
    """
    out: dict[str, Any] = {}
    operating_points = {
        "best_accuracy": best_accuracy_threshold(reference.scores, reference.is_same),
        f"far_{far_key(far_target)}": threshold_at_far(reference.scores, reference.is_same, far_target),
    }
    for name, threshold in operating_points.items():
        out[name] = {
            "threshold": threshold,
            "reference": rates_at(reference.scores, reference.is_same, threshold),
            "artifact": rates_at(candidate.scores, candidate.is_same, threshold),
        }
    impostors = int((~reference.is_same).sum())
    if impostors < math.ceil(1.0 / far_target - 1e-9):
        out[f"far_{far_key(far_target)}"]["note"] = (
            f"only {impostors} impostor pairs: the threshold is the strictest that keeps FAR <= {far_target:g} here"
        )
    return out
