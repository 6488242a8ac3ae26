"""The 10-fold verification protocols, written once for plain and for weighted pairs.

Two protocols decide the same thing in different ways:

- ``insightface`` (the default): the protocol of insightface's ``verification.py``, so
  numbers match the LFW / CFP-FP / AgeDB-30 accuracies of papers and training logs. The
  score of a pair is the squared L2 distance of the L2-normalised embeddings; a pair is
  "same" when its distance is below a threshold taken from 0, 0.01, ..., 3.99; the pairs
  are cut into consecutive folds (scikit-learn's ``KFold`` without shuffling); each fold is
  decided with the FIRST threshold of best accuracy on the other folds.
- ``edgefkd``: cosine scores, thresholds at the midpoints between distinct scores, the
  middle one of tied best thresholds (less swing on small sets), consecutive folds.

Every protocol is expressed on a *similarity* (higher = more alike) and a list of candidate
thresholds in decreasing order, "same" meaning similarity > threshold. Then a pair is
accepted from one candidate index on (``accept_from``), which is what lets the bootstrap in
``statistics`` run the whole protocol, threshold selection included, on many weighted
resamples at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from . import metrics

PROTOCOLS = ("insightface", "edgefkd")
#: insightface's threshold grid on the squared distance (np.arange(0, 4, 0.01), as it writes it)
INSIGHTFACE_GRID = np.arange(0, 4, 0.01)


@dataclass(frozen=True)
class PairScores:
    """One set of pair scores in a protocol's terms."""

    protocol: str
    #: per pair, higher = more alike (insightface: minus the squared distance)
    similarity: np.ndarray
    #: per pair, the cosine of the two embeddings (ROC, AUC, score differences)
    cosine: np.ndarray
    is_same: np.ndarray
    #: candidate thresholds on `similarity`, decreasing ("same" when similarity > threshold)
    candidates: np.ndarray
    #: per pair, the first candidate index at which it is accepted (len(candidates): never)
    accept_from: np.ndarray
    #: tie rule among equally accurate candidates: "first" or "middle" (in increasing threshold order)
    tie: str

    @property
    def num_pairs(self) -> int:
        return int(len(self.similarity))


def check_protocol(name: str) -> str:
    if name not in PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}: use {' or '.join(PROTOCOLS)}")
    return name


def _normalise(emb: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import normalize

    return normalize(np.asarray(emb))


def pair_scores(
    protocol: str, emb_a: np.ndarray, emb_b: np.ndarray, pairs: np.ndarray, is_same: np.ndarray
) -> PairScores:
    """Scores of pairs (i, j): emb_a[i] against emb_b[j], in `protocol`'s terms."""
    check_protocol(protocol)
    labels = np.asarray(is_same, dtype=bool)
    cosine = metrics.pair_scores(emb_a, emb_b, pairs)
    if protocol == "insightface":
        # As insightface computes it: normalise in the embeddings' own dtype, then square and sum.
        na, nb = _normalise(emb_a), _normalise(emb_b)
        dist = np.sum(np.square(np.subtract(na[pairs[:, 0]], nb[pairs[:, 1]])), 1)
        similarity = -np.asarray(dist, dtype=np.float64)
        candidates = -INSIGHTFACE_GRID
        # Same when dist < t, i.e. from the first grid index whose threshold exceeds the distance.
        accept_from = np.searchsorted(INSIGHTFACE_GRID, dist, side="right")
        return PairScores(protocol, similarity, cosine, labels, candidates, accept_from, "first")
    distinct = np.unique(cosine)
    ascending = np.r_[distinct[0] - 1.0, (distinct[:-1] + distinct[1:]) / 2.0, distinct[-1] + 1.0]
    # Decreasing candidate k accepts the scores above it: distinct index idx from k = D - idx on.
    accept_from = len(distinct) - np.searchsorted(distinct, cosine)
    return PairScores(protocol, cosine, cosine, labels, ascending[::-1].copy(), accept_from, "middle")


def fold_ids(num_pairs: int, folds: int) -> np.ndarray:
    """Consecutive folds, the first ones one pair larger (scikit-learn's KFold, np.array_split)."""
    if num_pairs < folds:
        raise InputError(f"{folds}-fold accuracy needs at least {folds} pairs, got {num_pairs}")
    ids = np.empty(num_pairs, dtype=np.int64)
    for f, part in enumerate(np.array_split(np.arange(num_pairs), folds)):
        ids[part] = f
    return ids


def correct_counts(scores: PairScores, weights: np.ndarray, folds: np.ndarray, num_folds: int) -> np.ndarray:
    """Weighted number of correctly decided pairs per (resample, fold, candidate).

    `weights` is (R, P): how often each pair is drawn in each resample. Returns (R, F, K).
    """
    k = len(scores.candidates)
    r = weights.shape[0]
    cls = scores.is_same.astype(np.int64)
    # One histogram per (resample, fold, class) over the index a pair starts to be accepted.
    cell = (folds * 2 + cls) * (k + 1) + scores.accept_from
    flat = (np.arange(r)[:, None] * (num_folds * 2 * (k + 1)) + cell[None, :]).ravel()
    hist = np.bincount(flat, weights=weights.ravel(), minlength=r * num_folds * 2 * (k + 1))
    hist = hist.reshape(r, num_folds, 2, k + 1)
    accepted = np.cumsum(hist[..., :k], axis=-1)  # pairs accepted at candidate k, per class
    negatives = hist[:, :, 0, :].sum(axis=-1, keepdims=True)
    return accepted[:, :, 1, :] + (negatives - accepted[:, :, 0, :])


def pick_candidates(train_correct: np.ndarray, tie: str) -> np.ndarray:
    """Index of the best candidate along the last axis, with the protocol's tie rule."""
    if tie == "first":
        # insightface: np.argmax over thresholds in increasing order = decreasing similarity.
        return np.argmax(train_correct, axis=-1)
    best = train_correct.max(axis=-1, keepdims=True)
    tied = train_correct == best
    count = tied.sum(axis=-1, keepdims=True)
    # The middle tied candidate in increasing-threshold order is the ((L - 1) // 2)-th in ours.
    rank = np.cumsum(tied, axis=-1)
    return np.argmax(tied & (rank == (count - 1) // 2 + 1), axis=-1)


def weighted_fold_accuracy(
    scores: PairScores, weights: np.ndarray, folds: np.ndarray, num_folds: int
) -> tuple[np.ndarray, np.ndarray]:
    """(R,) mean fold accuracy and (R, F) chosen candidate per fold, for each weighting."""
    per_fold = correct_counts(scores, weights, folds, num_folds)
    train = per_fold.sum(axis=1, keepdims=True) - per_fold
    chosen = pick_candidates(train, scores.tie)
    test_correct = np.take_along_axis(per_fold, chosen[..., None], axis=-1)[..., 0]
    sizes = np.stack([weights[:, folds == f].sum(axis=1) for f in range(num_folds)], axis=1)
    fold_acc = np.divide(test_correct, sizes, out=np.zeros_like(test_correct), where=sizes > 0)
    return fold_acc.mean(axis=1), chosen


@dataclass
class ProtocolAccuracy:
    """The protocol's accuracy on the full set."""

    protocol: str
    accuracy: float
    accuracy_std: float
    fold_accuracies: list[float]
    #: the threshold of each fold in the protocol's own unit (insightface: squared distance)
    fold_thresholds: list[float]
    #: the best-accuracy threshold on all pairs (similarity units) and its accuracy
    best_threshold: float
    best_threshold_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "accuracy": self.accuracy,
            "accuracy_std": self.accuracy_std,
            "fold_accuracies": self.fold_accuracies,
            "fold_thresholds": self.fold_thresholds,
            "threshold_unit": native_unit(self.protocol),
            "best_threshold": native_threshold(self.protocol, self.best_threshold),
            "best_threshold_accuracy": self.best_threshold_accuracy,
        }


def native_unit(protocol: str) -> str:
    return "squared L2 distance (same when below)" if protocol == "insightface" else "cosine (same when above)"


def native_threshold(protocol: str, similarity_threshold: float) -> float:
    return float(-similarity_threshold) if protocol == "insightface" else float(similarity_threshold)


def best_threshold(scores: PairScores) -> float:
    """The protocol's best-accuracy threshold on all pairs (similarity units)."""
    if scores.protocol == "edgefkd":
        return metrics.best_accuracy_threshold(scores.similarity, scores.is_same)
    ones = np.ones((1, scores.num_pairs))
    per_candidate = correct_counts(scores, ones, np.zeros(scores.num_pairs, dtype=np.int64), 1)[0, 0]
    return float(scores.candidates[pick_candidates(per_candidate, "first")])


def protocol_accuracy(scores: PairScores, num_folds: int = 10) -> ProtocolAccuracy:
    """The protocol run once on all pairs."""
    best = best_threshold(scores)
    best_acc = metrics.rates_at(scores.similarity, scores.is_same, best)["accuracy"]
    if scores.protocol == "edgefkd":
        folded = metrics.kfold_accuracy(scores.similarity, scores.is_same, num_folds)
        return ProtocolAccuracy(scores.protocol, folded.accuracy, folded.accuracy_std, folded.fold_accuracies,
                                folded.fold_thresholds, best, best_acc)
    folds = fold_ids(scores.num_pairs, num_folds)
    ones = np.ones((1, scores.num_pairs))
    per_fold = correct_counts(scores, ones, folds, num_folds)[0]
    chosen = pick_candidates(per_fold.sum(axis=0, keepdims=True) - per_fold, "first")
    sizes = np.bincount(folds, minlength=num_folds)
    fold_acc = per_fold[np.arange(num_folds), chosen] / sizes
    thresholds = [native_threshold(scores.protocol, scores.candidates[c]) for c in chosen]
    return ProtocolAccuracy(scores.protocol, float(fold_acc.mean()), float(fold_acc.std()),
                            [float(a) for a in fold_acc], thresholds, best, best_acc)
