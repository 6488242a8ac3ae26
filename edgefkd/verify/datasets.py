"""Face-verification pair sets: insightface `.bin`, LFW `pairs.txt`, and CSV.

A PairSet holds the *unique* images of a pair list (as file paths or encoded bytes, never
decoded pixels) and, per pair, the two image indices and the same/different label. Images
are decoded later, batch by batch, so a large set never sits decoded in memory.

insightface `.bin` files are pickles. They are read with a restricted unpickler that
resolves only the constructors the format needs (list, tuple, bytes, bytearray, bool,
int); any other global (os.system, eval, a class with __reduce__ ...) is refused when the
unpickler meets its name, before anything could be called.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import InputError
from ..imaging import decode_image
from ..safe_pickle import read_insightface_bin

@dataclass
class PairSet:
    """Unique images plus pairs of indices into them."""

    name: str
    kind: str  # "bin" | "lfw" | "csv"
    images: list[Path | bytes]
    pairs: np.ndarray  # (P, 2) int64 indices into images
    is_same: np.ndarray  # (P,) bool

    def __post_init__(self) -> None:
        if len(self.is_same) == 0:
            raise InputError(f"{self.name}: no pairs")
        if self.is_same.all() or not self.is_same.any():
            raise InputError(f"{self.name}: verification needs both same-person and different-person pairs")

    @property
    def num_pairs(self) -> int:
        return int(len(self.is_same))

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "format": self.kind,
            "pairs": self.num_pairs,
            "same": int(self.is_same.sum()),
            "different": int((~self.is_same).sum()),
            "unique_images": len(self.images),
        }

    def decode(self, index: int) -> np.ndarray:
        """Decoded RGB uint8 face of unique image `index` (at its stored size)."""
        src = self.images[index]
        what = str(src) if isinstance(src, Path) else f"image {index} of {self.name}"
        return decode_image(src, what=what)

    def iter_decoded(self, batch_size: int) -> Iterator[tuple[range, list[np.ndarray]]]:
        """Yield (index range, decoded faces) over the unique images, batch by batch."""
        for start in range(0, len(self.images), batch_size):
            stop = min(start + batch_size, len(self.images))
            yield range(start, stop), [self.decode(i) for i in range(start, stop)]


def _index_images(keys: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    """Deduplicate `keys` keeping first-seen order; return (unique keys, index per key)."""
    position: dict[Any, int] = {}
    index = np.empty(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        index[i] = position.setdefault(key, len(position))
    return list(position), index


# -- insightface .bin ---------------------------------------------------------------------


def load_bin_pairs(path: str | os.PathLike[str]) -> PairSet:
    """An insightface verification .bin: images 2i and 2i+1 form pair i."""
    path = Path(path)
    blobs, labels = read_insightface_bin(path)
    # Identical JPEG bytes are the same image: decode it once.
    digests = [hashlib.sha256(b).digest() for b in blobs]
    first_blob = dict(zip(reversed(digests), reversed(blobs)))
    unique_digests, index = _index_images(digests)
    images: list[Path | bytes] = [first_blob[d] for d in unique_digests]
    return PairSet(str(path), "bin", images, index.reshape(-1, 2), np.asarray(labels, dtype=bool))


# -- path-based sets ----------------------------------------------------------------------


def _path_pair_set(name: str, kind: str, rows: list[tuple[Path, Path, bool]]) -> PairSet:
    missing = [p for a, b, _ in rows for p in (a, b) if not p.is_file()]
    if missing:
        raise InputError(
            f"{name}: {len(missing)} pair image(s) not found, first {missing[0]} (set --images-root?)"
        )
    unique, index = _index_images([p for a, b, _ in rows for p in (a, b)])
    return PairSet(name, kind, unique, index.reshape(-1, 2), np.asarray([s for *_, s in rows], dtype=bool))


_TRUE = {"1", "true", "yes", "same", "y", "t"}
_FALSE = {"0", "false", "no", "different", "diff", "n", "f"}


def _parse_label(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InputError(f"{where}: is_same must be 1/0 or true/false, got {text!r}")


def load_csv_pairs(path: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None) -> PairSet:
    """A CSV with a `file_a,file_b,is_same` header; paths relative to `images_root` or the CSV's folder."""
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read pairs file {path}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    needed = {"file_a", "file_b", "is_same"}
    if reader.fieldnames is None or not needed <= {f.strip() for f in reader.fieldnames}:
        raise InputError(f"{path}: CSV needs the header file_a,file_b,is_same, got {reader.fieldnames}")
    rows = []
    for line_no, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "") for k, v in row.items() if k is not None}
        if not row["file_a"].strip() or not row["file_b"].strip():
            raise InputError(f"{path}:{line_no}: empty file name")
        rows.append(
            (
                root / row["file_a"].strip(),
                root / row["file_b"].strip(),
                _parse_label(row["is_same"], f"{path}:{line_no}"),
            )
        )
    return _path_pair_set(str(path), "csv", rows)


def load_lfw_pairs(
    path: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None, suffix: str = ".jpg"
) -> PairSet:
    """LFW `pairs.txt`: `name n1 n2` (same) / `name1 n1 name2 n2` (different).

    Accepts the official form (a first line `10 300`: folds and pairs per class per fold)
    and plain pair lines. Images are `<root>/<name>/<name>_<NNNN>.jpg`; `root` defaults
    to the pairs file's folder.
    """
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    try:
        lines = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read pairs file {path}: {exc}") from None
    numbered = [(no, tokens) for no, tokens in enumerate(lines, start=1) if tokens]
    expected = None
    if numbered and len(numbered[0][1]) == 2 and all(t.isdigit() for t in numbered[0][1]):
        folds, per_class = (int(t) for t in numbered[0][1])
        expected = 2 * folds * per_class
        numbered = numbered[1:]

    def image(name: str, number: str, line_no: int) -> Path:
        if not number.isdigit():
            raise InputError(f"{path}:{line_no}: image number must be an integer, got {number!r}")
        return root / name / f"{name}_{int(number):04d}{suffix}"

    rows = []
    for line_no, tokens in numbered:
        if len(tokens) == 3:
            rows.append((image(tokens[0], tokens[1], line_no), image(tokens[0], tokens[2], line_no), True))
        elif len(tokens) == 4:
            rows.append((image(tokens[0], tokens[1], line_no), image(tokens[2], tokens[3], line_no), False))
        else:
            raise InputError(f"{path}:{line_no}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {' '.join(tokens)!r}")
    if expected is not None and len(rows) != expected:
        raise InputError(f"{path}: header promises {expected} pairs, found {len(rows)}")
    return _path_pair_set(str(path), "lfw", rows)


def load_pairs(path: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None) -> PairSet:
    """Open a pair set by its suffix: .bin (insightface), .csv, or .txt (LFW pairs.txt)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pairs file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".bin":
        return load_bin_pairs(path)
    if suffix == ".csv":
        return load_csv_pairs(path, images_root)
    if suffix == ".txt":
        return load_lfw_pairs(path, images_root)
    raise InputError(f"unknown pairs format {path.name}: use an insightface .bin, an LFW pairs.txt or a CSV")
