"""Calibration sources: one call turns a source string into fitted RGB uint8 faces.

A source is one of
- a folder of aligned face crops (jpg/png/..., any size, searched recursively);
- an insightface verification `.bin` (read with the restricted unpickler; identical
  images, which pairs repeat, are used once);
- a `.npy` array: uint8 RGB (N, H, W, 3), or floating RGB (N, H, W, 3) with values in
  [0, 1] (scaled by 255); read with allow_pickle=False and memory-mapped;
- `synthetic`, `synthetic:N` or `synthetic:N:SEED`: generated faces (see synthetic.py);
- `default` (or `calib_data` where no such folder exists in the working directory): the
  set shipped in the repository's `calib_data/`.
Faces are fitted to the requested size with imaging.fit_face, never normalised here.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import InputError
from ..imaging import decode_image, fit_face, list_images
from . import synthetic

#: Where a source checkout keeps the default set; installed, it is the package edgefkd.calib_data.
CHECKOUT_DIR = Path(__file__).resolve().parents[2] / "calib_data"
DEFAULT_SOURCE = "default"
_SHIPPED_NAMES = ("default", "calib_data", "calib_data/")
WARN_LIST_MAX = 10  # unreadable files named in the warning; the rest are counted


class CalibrationWarning(UserWarning):
    """Some calibration inputs were skipped (e.g. unreadable image files)."""


@dataclass(frozen=True)
class CalibrationSource:
    """A resolved source: `count` faces, each read (any size, RGB uint8) by `read(i)`."""

    description: str
    count: int
    read: Callable[[int], np.ndarray]
    name: Callable[[int], str]
    ordered: bool = False  # True where faces are i.i.d. draws, so a prefix is as good as a sample
    folder: Path | None = None  # set for folder sources (where a manifest.json may describe them)


def _installed_calibration_dir() -> Path | None:
    """The data package edgefkd.calib_data of an installed wheel (a namespace package: no code)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("edgefkd.calib_data")
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return next((Path(p) for p in locations if (Path(p) / "manifest.json").is_file()), None)


def shipped_calibration_dir() -> Path:
    """The default calibration set: installed as edgefkd.calib_data, or `calib_data/` of a checkout."""
    for candidate in (_installed_calibration_dir(), CHECKOUT_DIR):
        if candidate is not None and candidate.is_dir():
            return candidate
    raise InputError(
        "the default calibration set (package edgefkd.calib_data) is not present in this installation; "
        "pass --calib synthetic or a folder of aligned faces"
    )


def _parse_synthetic(spec: str, limit: int | None, seed: int) -> tuple[int, int]:
    parts = spec.split(":")
    if len(parts) > 3 or not all(p.strip().isdigit() for p in parts[1:]):
        raise InputError(f"bad synthetic source '{spec}': use synthetic, synthetic:N or synthetic:N:SEED")
    count = int(parts[1]) if len(parts) > 1 else (limit or synthetic.DEFAULT_COUNT)
    return count if limit is None else min(count, limit), int(parts[2]) if len(parts) > 2 else seed


def _folder_source(folder: Path) -> CalibrationSource:
    paths = list_images(folder)
    if not paths:
        raise InputError(f"no image files (jpg/png/...) found under {folder}")
    return CalibrationSource(
        f"folder {folder} ({len(paths)} image files)",
        len(paths),
        lambda i: decode_image(paths[i], what=str(paths[i])),
        lambda i: str(paths[i].relative_to(folder)),
        folder=folder,
    )


def _bin_source(path: Path) -> CalibrationSource:
    from ..safe_pickle import read_insightface_bin

    encoded, _ = read_insightface_bin(path)
    first_seen: dict[bytes, tuple[int, bytes]] = {}
    for index, data in enumerate(encoded):
        first_seen.setdefault(hashlib.sha256(data).digest(), (index, data))
    unique = list(first_seen.values())
    return CalibrationSource(
        f"insightface .bin {path} ({len(unique)} distinct of {len(encoded)} images)",
        len(unique),
        lambda i: decode_image(unique[i][1], what=f"image {unique[i][0]} of {path}"),
        lambda i: f"{path.name}[{unique[i][0]}]",
    )


def _npy_source(path: Path) -> CalibrationSource:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read {path} as a .npy array (object arrays are refused): {exc}") from None
    shape = tuple(array.shape)
    if array.ndim != 4 or shape[-1] != 3:
        hint = " (it looks like NCHW; transpose it to NHWC)" if array.ndim == 4 and shape[1] == 3 else ""
        raise InputError(f"{path}: expected RGB faces shaped (N, H, W, 3), got {shape}{hint}")
    if shape[0] == 0:
        raise InputError(f"{path} holds no faces")
    if array.dtype == np.uint8:

        def read(index: int) -> np.ndarray:
            return np.asarray(array[index])

    elif np.issubdtype(array.dtype, np.floating):
        low, high = float(np.min(array)), float(np.max(array))
        if not (np.isfinite(low) and np.isfinite(high) and 0.0 <= low and high <= 1.0):
            raise InputError(
                f"{path}: floating faces must be RGB in [0, 1], found values in [{low:g}, {high:g}]; "
                "save uint8 0-255 RGB instead"
            )

        def read(index: int) -> np.ndarray:
            return np.round(np.asarray(array[index], dtype=np.float64) * 255.0).astype(np.uint8)

    else:
        raise InputError(f"{path}: faces must be uint8 RGB 0-255 or float RGB in [0, 1], got dtype {array.dtype}")
    return CalibrationSource(f"array {path} {shape} {array.dtype}", shape[0], read, lambda i: f"{path.name}[{i}]")


def open_calibration_source(source: str | os.PathLike[str], limit: int | None = None, seed: int = 0) -> CalibrationSource:
    """Resolve a source string or path to a CalibrationSource (nothing decoded yet)."""
    text = os.fspath(source)
    if text == "synthetic" or text.startswith("synthetic:"):
        count, synth_seed = _parse_synthetic(text, limit, seed)
        faces = synthetic.synthesize_faces(count, synth_seed)
        return CalibrationSource(
            f"synthetic DCGAN faces (n={count}, seed={synth_seed})",
            count,
            lambda i: faces[i],
            lambda i: f"synthetic[{i}]",
            ordered=True,
        )
    path = Path(text).expanduser()
    if text in _SHIPPED_NAMES and not path.is_dir():
        path = shipped_calibration_dir()
    if path.is_dir():
        return _folder_source(path)
    if not path.exists():
        raise InputError(
            f"calibration source not found: {text} (use a folder of aligned faces, a .bin, a .npy, "
            "'synthetic[:N[:SEED]]' or 'default')"
        )
    suffix = path.suffix.lower()
    if suffix == ".bin":
        return _bin_source(path)
    if suffix == ".npy":
        return _npy_source(path)
    raise InputError(f"unsupported calibration source {path}: expected a folder, a .bin or a .npy")


def _check_request(size: tuple[int, int], limit: int | None, batch_size: int) -> None:
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
        raise InputError(f"face size must be two positive integers (H, W), got {size}")
    if limit is not None and limit < 1:
        raise InputError(f"the calibration limit must be at least 1, got {limit}")
    if batch_size < 1:
        raise InputError(f"the batch size must be at least 1, got {batch_size}")


def iter_calibration_batches(
    source: str | os.PathLike[str] | CalibrationSource,
    size: tuple[int, int],
    batch_size: int = 64,
    limit: int | None = None,
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Stream calibration faces as (<=batch_size, H, W, 3) uint8 RGB batches fitted to `size`.

    With `limit`, a seeded random sample of that many readable faces is taken (synthetic
    sources just generate `limit` faces). Unreadable images are skipped and named in one
    CalibrationWarning after the last batch; a source with no readable face raises InputError.
    `source` may also be an already opened CalibrationSource.
    """
    _check_request(size, limit, batch_size)
    src = source if isinstance(source, CalibrationSource) else open_calibration_source(source, limit=limit, seed=seed)
    wanted = src.count if limit is None else min(limit, src.count)
    if limit is None or src.ordered or wanted == src.count:
        order: Iterator[int] = iter(range(src.count))
    else:
        order = iter(np.random.default_rng(seed).permutation(src.count).tolist())
    skipped: list[str] = []
    batch: list[np.ndarray] = []
    produced = 0
    for index in order:
        if produced + len(batch) >= wanted:
            break
        try:
            batch.append(fit_face(src.read(index), tuple(size)))
        except InputError:
            skipped.append(src.name(index))
            continue
        if len(batch) == batch_size:
            produced += len(batch)
            yield np.stack(batch)
            batch = []
    if batch:
        produced += len(batch)
        yield np.stack(batch)
    if produced == 0:
        raise InputError(f"no readable face in {src.description}: {len(skipped)} unreadable file(s)")
    if skipped:
        named = ", ".join(skipped[:WARN_LIST_MAX]) + (f" and {len(skipped) - WARN_LIST_MAX} more" if len(skipped) > WARN_LIST_MAX else "")
        warnings.warn(f"skipped {len(skipped)} unreadable calibration image(s) in {src.description}: {named}", CalibrationWarning, stacklevel=2)


def load_calibration_faces(
    source: str | os.PathLike[str] | CalibrationSource, size: tuple[int, int], limit: int | None = None, seed: int = 0
) -> np.ndarray:
    """All calibration faces of `source` as one (N, H, W, 3) uint8 RGB array fitted to `size`.

    See iter_calibration_batches for `limit`, `seed`, skipped files and errors.
    """
    return np.concatenate(list(iter_calibration_batches(source, size, batch_size=256, limit=limit, seed=seed)))
