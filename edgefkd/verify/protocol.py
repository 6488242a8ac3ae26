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
        raise InputError(f"unknown protocol {name!r} (--protocol): use {' or '.join(PROTOCOLS)}")
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


def _middle_of_ties(correct: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per row, the index of the middle (len // 2-th) valid candidate of best accuracy."""
    masked = np.where(valid, correct, -np.inf)
    tied = valid & (masked == masked.max(axis=-1, keepdims=True))
    rank = np.cumsum(tied, axis=-1)
    return np.argmax(tied & (rank == tied.sum(axis=-1, keepdims=True) // 2 + 1), axis=-1)


def _edgefkd_choice(scores: PairScores, weights: np.ndarray, folds: np.ndarray, num_folds: int,
                    train: np.ndarray) -> np.ndarray:
    """edgefkd's threshold for each (resample, fold), exactly as on the resampled training pairs.

    Its candidates are the midpoints between the distinct scores *present* in the training
    pairs, so they are worked out per resample: the candidate after present score i is tied
    with the others of best accuracy, the middle one is taken, and its value (halfway to the
    next present score) decides the test fold. Returns the full-set candidate index that makes
    the same decisions.
    """
    distinct = np.unique(scores.similarity)
    d = len(distinct)
    r = weights.shape[0]
    index = d - scores.accept_from  # position of each pair's score among the distinct scores
    flat = (np.arange(r)[:, None] * (num_folds * d) + (folds * d + index)[None, :]).ravel()
    per_fold = np.bincount(flat, weights=weights.ravel(), minlength=r * num_folds * d).reshape(r, num_folds, d)
    present = (per_fold.sum(axis=1, keepdims=True) - per_fold) > 0
    # Ascending candidate m rejects distinct scores 0..m-1; m = 0 and m = i + 1 for present i exist.
    valid = np.concatenate([np.ones(present.shape[:-1] + (1,), dtype=bool), present], axis=-1)
    chosen = _middle_of_ties(train[..., ::-1], valid)
    positions = np.where(present, np.arange(d), d)
    next_present = np.minimum.accumulate(positions[..., ::-1], axis=-1)[..., ::-1]  # first present index >= i
    padded = np.r_[distinct, np.inf]
    below = np.clip(chosen - 1, 0, d - 1)
    after = np.take_along_axis(np.concatenate([next_present[..., 1:], np.full(present.shape[:-1] + (1,), d)], axis=-1),
                               below[..., None], axis=-1)[..., 0]
    first = next_present[..., 0]
    threshold = np.where(
        chosen == 0,
        distinct[np.minimum(first, d - 1)] - 1.0,
        np.where(after < d, (distinct[below] + padded[after]) / 2.0, distinct[below] + 1.0),
    )
    rejected = np.searchsorted(distinct, threshold, side="right")
    return d - rejected


def weighted_fold_accuracy(
    scores: PairScores, weights: np.ndarray, folds: np.ndarray, num_folds: int
) -> tuple[np.ndarray, np.ndarray]:
    """(R,) mean fold accuracy and (R, F) chosen candidate per fold, for each weighting."""
    per_fold = correct_counts(scores, weights, folds, num_folds)
    train = per_fold.sum(axis=1, keepdims=True) - per_fold
    if scores.tie == "first":
        # insightface: np.argmax over thresholds in increasing order = decreasing similarity.
        chosen = np.argmax(train, axis=-1)
    else:
        chosen = _edgefkd_choice(scores, weights, folds, num_folds, train)
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
    return float(scores.candidates[np.argmax(per_candidate)])


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
    chosen = np.argmax(per_fold.sum(axis=0, keepdims=True) - per_fold, axis=-1)
    sizes = np.bincount(folds, minlength=num_folds)
    fold_acc = per_fold[np.arange(num_folds), chosen] / sizes
    thresholds = [native_threshold(scores.protocol, scores.candidates[c]) for c in chosen]
    return ProtocolAccuracy(scores.protocol, float(fold_acc.mean()), float(fold_acc.std()),
                            [float(a) for a in fold_acc], thresholds, best, best_acc)
