"""How sure a comparison of two models on one pair set is.

- A paired bootstrap over pairs that re-runs the whole 10-fold protocol (threshold
  selection on 9 folds, accuracy on the 10th) on every resample, for several score series
  at once (reference, artifact, teacher, cross-model...), all on the same resamples so the
  differences are paired. Resampling is stratified by fold (each fold is redrawn from its
  own pairs, with replacement), which keeps the protocol's fold layout and lets a resample be
  a weight per pair: then all resamples run as a few histogram and cumulative-sum passes.
- Decision flips at fixed operating thresholds with an exact McNemar test.
- The distribution of per-pair score differences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from . import metrics
from .protocol import INSIGHTFACE_GRID, PairScores, fold_ids, native_threshold, weighted_fold_accuracy

#: bytes one chunk of resamples may use while it is evaluated
CHUNK_BUDGET = 256 * 2**20
#: share of the memory available now that a bootstrap may plan to use
MEMORY_SHARE = 0.5
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0


def _candidates_bound(num_pairs: int, protocol: str) -> int:
    return len(INSIGHTFACE_GRID) if protocol == "insightface" else num_pairs + 1


def _bytes_per_resample(num_pairs: int, num_folds: int, protocol: str) -> int:
    """Working memory of one resample: weights and indices per pair, a few arrays per (fold, candidate)."""
    k = _candidates_bound(num_pairs, protocol)
    return 24 * num_pairs + 12 * num_folds * (k + 1) * 8


def chunk_size(num_pairs: int, num_folds: int, protocol: str) -> int:
    """Resamples per pass: fixed by the set's size and protocol, so results never depend on the machine."""
    return max(1, CHUNK_BUDGET // _bytes_per_resample(num_pairs, num_folds, protocol))


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable on Linux, else physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def bootstrap_memory(resamples: int, set_sizes: list[int], series: int, num_folds: int, protocol: str) -> int:
    """Bytes a bootstrap needs: the kept accuracy per resample and series, plus one chunk."""
    if resamples <= 0 or not set_sizes:
        return 0
    largest = max(set_sizes)
    chunk = min(resamples, chunk_size(largest, num_folds, protocol))
    kept = 8 * resamples * series * len(set_sizes)
    return kept + chunk * _bytes_per_resample(largest, num_folds, protocol)


def check_bootstrap(resamples: int, set_sizes: list[int], series: int, num_folds: int, protocol: str) -> None:
    """Refuse, before any work, a resample count whose memory would not fit here."""
    if resamples < 0:
        raise InputError(f"--bootstrap must be 0 (off) or a positive number of resamples, got {resamples}")
    need = bootstrap_memory(resamples, set_sizes, series, num_folds, protocol)
    have = int(available_memory() * MEMORY_SHARE)
    if need > have:
        per = max(1, need // resamples)
        raise InputError(
            f"--bootstrap {resamples} needs about {need / 2**30:.1f} GiB for {series} score series on "
            f"{max(set_sizes)} pairs, more than the {have / 2**30:.1f} GiB it may use here; "
            f"at most {have // per} resamples fit"
        )


def fold_weights(rng: np.random.Generator, folds: np.ndarray, num_folds: int, count: int) -> np.ndarray:
    """(count, P) draws per pair: each fold redrawn with replacement from its own pairs."""
    num_pairs = len(folds)
    picks = []
    for f in range(num_folds):
        members = np.flatnonzero(folds == f)
        picks.append(members[rng.integers(0, len(members), size=(count, len(members)))])
    flat = (np.arange(count)[:, None] * num_pairs + np.concatenate(picks, axis=1)).ravel()
    weights = np.bincount(flat, minlength=count * num_pairs).reshape(count, num_pairs).astype(np.float64)
    return weights


def bootstrap_accuracies(
    series: Mapping[str, PairScores], num_folds: int, resamples: int, seed: int = DEFAULT_SEED
) -> dict[str, np.ndarray]:
    """Protocol accuracy of every series on the same `resamples` fold-stratified resamples."""
    if not series or resamples <= 0:
        return {}
    first = next(iter(series.values()))
    num_pairs = first.num_pairs
    for name, scores in series.items():
        if scores.num_pairs != num_pairs or not np.array_equal(scores.is_same, first.is_same):
            raise ValueError(f"series {name} is not on the same pairs")
    folds = fold_ids(num_pairs, num_folds)
    rng = np.random.default_rng(seed)
    step = chunk_size(num_pairs, num_folds, first.protocol)
    out = {name: np.empty(resamples) for name in series}
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        weights = fold_weights(rng, folds, num_folds, stop - start)
        for name, scores in series.items():
            out[name][start:stop] = weighted_fold_accuracy(scores, weights, folds, num_folds)[0]
    return out


def interval_pp(drops: np.ndarray) -> tuple[float, float]:
    """95 % percentile interval of drops given in accuracy units, in percentage points."""
    low, high = np.percentile(100.0 * drops, [2.5, 97.5])
    return float(low), float(high)


# -- decision flips and score differences ----------------------------------------------------


@dataclass(frozen=True)
class OperatingPoint:
    name: str
    #: on the similarity scale ("same" when above)
    threshold: float
    note: str | None = None


def operating_points(reference: PairScores, best_threshold: float) -> list[OperatingPoint]:
    """The reference's best-accuracy threshold and the FAR targets this set can resolve."""
    points = [OperatingPoint("best_accuracy", best_threshold)]
    impostors = int((~reference.is_same).sum())
    for target in metrics.FAR_TARGETS:
        needed = int(np.ceil(1.0 / target - 1e-9))
        name = f"far_{metrics.far_key(target)}"
        if impostors < needed:
            points.append(OperatingPoint(name, float("nan"), f"not enough impostor pairs: FAR {target:g} needs at least {needed}, have {impostors}"))
        else:
            points.append(OperatingPoint(name, metrics.threshold_at_far(reference.similarity, reference.is_same, target)))
    return points


def decision_flips(reference: PairScores, candidate: PairScores, points: list[OperatingPoint]) -> dict[str, Any]:
    """Pairs whose same/different decision changes at each fixed threshold, with an exact McNemar test."""
    from scipy.stats import binomtest

    labels = reference.is_same
    out: dict[str, Any] = {}
    for point in points:
        if point.note:
            out[point.name] = {"threshold": None, "note": point.note}
            continue
        ref_ok = (reference.similarity > point.threshold) == labels
        cand_ok = (candidate.similarity > point.threshold) == labels
        lost = int((ref_ok & ~cand_ok).sum())  # the reference right, the candidate wrong
        gained = int((~ref_ok & cand_ok).sum())
        flipped = lost + gained
        # Exact McNemar: under "no difference" each discordant pair goes either way with p = 1/2.
        p_value = 1.0 if flipped == 0 else float(binomtest(lost, flipped, 0.5).pvalue)
        out[point.name] = {
            "threshold": native_threshold(reference.protocol, point.threshold),
            "flipped": flipped,
            "reference_right_candidate_wrong": lost,
            "reference_wrong_candidate_right": gained,
            "reference_accuracy": float(ref_ok.mean()),
            "candidate_accuracy": float(cand_ok.mean()),
            "mcnemar_p": p_value,
            "note": None,
        }
    return out


def score_differences(reference_cosine: np.ndarray, candidate_cosine: np.ndarray) -> dict[str, float]:
    """Distribution of per-pair cosine score differences, candidate minus reference."""
    diff = np.asarray(candidate_cosine, dtype=np.float64) - np.asarray(reference_cosine, dtype=np.float64)
    p1, p5, p50, p95, p99 = np.percentile(diff, [1, 5, 50, 95, 99])
    return {
        "mean": float(diff.mean()),
        "std": float(diff.std()),
        "min": float(diff.min()),
        "p1": float(p1),
        "p5": float(p5),
        "median": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(diff.max()),
        "abs_max": float(np.abs(diff).max()),
    }
