"""Several pair sets in one run: one combined image list, so each model embeds every set in
one activation and each set's images are decoded once; then the embeddings are cut back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .datasets import PairSet


@dataclass
class RecordingPairSet(PairSet):
    """A PairSet that remembers the stored (height, width) of every image it decodes."""

    decoded_sizes: dict[int, tuple[int, int]] = field(default_factory=dict)

    def decode(self, index: int) -> np.ndarray:
        face = super().decode(index)
        self.decoded_sizes[index] = (int(face.shape[0]), int(face.shape[1]))
        return face


def concat_pair_sets(pair_sets: Sequence[PairSet]) -> tuple[RecordingPairSet, list[slice]]:
    """All sets' unique images in one list (set after set) and each set's slice of it."""
    images: list = []
    pairs, labels, slices = [], [], []
    for pair_set in pair_sets:
        offset = len(images)
        images += pair_set.images
        pairs.append(pair_set.pairs + offset)
        labels.append(pair_set.is_same)
        slices.append(slice(offset, len(images)))
    name = " + ".join(p.name for p in pair_sets)
    kind = pair_sets[0].kind if len({p.kind for p in pair_sets}) == 1 else "mixed"
    combined = RecordingPairSet(name, kind, images, np.concatenate(pairs), np.concatenate(labels))
    return combined, slices


def _needs_resize(stored: tuple[int, int], size: tuple[int, int]) -> bool:
    # A face of the contract's height is at most centre-cropped in width (112x112 -> 112x96 is the
    # usual convention); any other face is rescaled, i.e. it was not an aligned crop of this size.
    (fh, fw), (h, w) = stored, size
    return fh != h or fw < w


def resize_warnings(
    combined: RecordingPairSet, slices: list[slice], pair_sets: Sequence[PairSet], sizes: Sequence[tuple[int, int]]
) -> list[list[str]]:
    """Per set, one warning per model input size for which some faces had to be rescaled."""
    out: list[list[str]] = []
    for pair_set, part in zip(pair_sets, slices):
        stored = [combined.decoded_sizes[i] for i in range(part.start, part.stop) if i in combined.decoded_sizes]
        warnings = []
        for size in sizes:
            resized = [s for s in stored if _needs_resize(s, size)]
            if resized:
                h, w = size
                warnings.append(
                    f"{pair_set.name}: {len(resized)} of {len(stored)} faces are not aligned {h}x{w} crops "
                    f"(first is {resized[0][0]}x{resized[0][1]}); they were rescaled to fit, which moves accuracy"
                )
        out.append(warnings)
    return out
