"""1:N identification: probes searched in a gallery (closed-set ranks, open-set TPIR at FPIR).

The gallery holds one entry per identity (several gallery images of one identity are
pooled: mean of L2-normalised embeddings, re-normalised). Every probe is scored by cosine
against every entry.

- closed set (probes whose identity is enrolled): rank-k accuracy = share of probes whose
  identity scores among the k best entries;
- open set (when some probes are not enrolled): at a threshold t chosen so that at most
  FPIR of the non-mated probes have a best score above t, TPIR = share of mated probes
  whose rank-1 entry is their own identity with a score above t (NIST FRVT's definition).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .engine import FaceItem
from .ijb import l2_normalise

RANKS = (1, 5)
FPIR_TARGETS = (1e-2, 1e-1)


@dataclass
class IdentityList:
    """A gallery or probe list: faces and the identity of each."""

    source: Path
    items: list[FaceItem]
    identities: list[str]


def read_identity_csv(path: str | Path, images_root: str | Path | None = None, role: str = "gallery") -> IdentityList:
    """CSV `file,identity` (header optional); files relative to the CSV's folder or `images_root`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{role} list not found: {path}")
    root = Path(images_root) if images_root else path.parent
    items, identities = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for number, row in enumerate(csv.reader(fh), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise InputError(f"{path}:{number}: expected file,identity")
            file, identity = row[0].strip(), row[1].strip()
            if number == 1 and (file.lower(), identity.lower()) == ("file", "identity"):
                continue
            location = file if "://" in file else str(root / file)
            items.append(FaceItem(f"{role}:{number}", location))
            identities.append(identity)
    if not items:
        raise InputError(f"{path}: no {role} faces")
    return IdentityList(path, items, identities)


def enrol(embeddings: np.ndarray, identities: list[str]) -> tuple[list[str], np.ndarray]:
    """(identity names sorted, (G, D) normalised entries): one pooled entry per identity."""
    names, index = np.unique(np.asarray(identities), return_inverse=True)
    sums = np.zeros((len(names), embeddings.shape[1]))
    np.add.at(sums, index.ravel(), l2_normalise(embeddings))
    return [str(n) for n in names], l2_normalise(sums)


def _fpir_point(best: np.ndarray, mated_hit: np.ndarray, nonmated_best: np.ndarray, fpir: float) -> dict[str, Any]:
    needed = math.ceil(1.0 / fpir - 1e-9)
    if len(nonmated_best) < needed:
        return {"tpir": None, "threshold": None, "fpir": None, "non_mated_probes": int(len(nonmated_best)),
                "note": f"not enough non-mated probes: FPIR {fpir:g} needs at least {needed}, have {len(nonmated_best)}"}
    ordered = np.sort(nonmated_best)[::-1]
    allowed = int(math.floor(fpir * len(ordered) + 1e-9))
    threshold = float(ordered[allowed]) if allowed < len(ordered) else float(ordered[-1] - 1.0)
    return {
        "tpir": float((mated_hit & (best > threshold)).mean()),
        "threshold": threshold,
        "fpir": float((nonmated_best > threshold).mean()),
        "non_mated_probes": int(len(nonmated_best)),
        "note": None,
    }


@dataclass
class Identification:
    """Per-probe outcomes (for the bootstrap) and the summary."""

    rank_of_truth: np.ndarray  # (M,) 1-based rank of the true identity, mated probes only
    summary: dict[str, Any]


def identify(
    gallery_names: list[str], gallery: np.ndarray, probes: np.ndarray, probe_identities: list[str]
) -> Identification:
    """Rank-k accuracy over mated probes and TPIR at FPIR over all probes."""
    if gallery.shape[1] != probes.shape[1]:
        raise InputError(f"gallery embeds {gallery.shape[1]}-d, probes {probes.shape[1]}-d: not one embedding space")
    scores = l2_normalise(probes) @ gallery.T
    position = {name: i for i, name in enumerate(gallery_names)}
    truth = np.array([position.get(identity, -1) for identity in probe_identities])
    mated = truth >= 0
    if not mated.any():
        raise InputError("no probe identity is in the gallery: nothing to identify")
    mated_scores = scores[mated]
    true_score = mated_scores[np.arange(mated.sum()), truth[mated]]
    # Rank = 1 + entries scoring strictly higher than the true identity.
    rank = 1 + (mated_scores > true_score[:, None]).sum(axis=1)
    summary: dict[str, Any] = {
        "gallery_identities": len(gallery_names),
        "probes": int(len(probe_identities)),
        "mated_probes": int(mated.sum()),
        "non_mated_probes": int((~mated).sum()),
        **{f"rank{k}": float((rank <= k).mean()) for k in RANKS},
        "tpir_at_fpir": {},
    }
    if (~mated).any():
        best = scores.max(axis=1)
        hit = rank == 1
        summary["tpir_at_fpir"] = {
            f"{f:.0e}": _fpir_point(best[mated], hit, best[~mated], f) for f in FPIR_TARGETS
        }
    return Identification(rank, summary)


def rank1_drop_bootstrap(baseline_rank: np.ndarray, candidate_rank: np.ndarray, resamples: int, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the rank-1 drop (pp, baseline - candidate), resampling mated probes jointly."""
    base = (np.asarray(baseline_rank) == 1).astype(np.float64)
    cand = (np.asarray(candidate_rank) == 1).astype(np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), size=(resamples, len(base)))
    drops = 100 * (base[idx].mean(axis=1) - cand[idx].mean(axis=1))
    low, high = np.percentile(drops, [2.5, 97.5])
    return float(low), float(high)
