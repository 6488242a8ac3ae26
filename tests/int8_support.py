"""Helpers for the INT8 tests: real faces. Pair accuracy comes from edgefkd.verify.evaluator."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefkd.imaging import list_images, load_faces


def real_faces(faces_dir: Path, size: tuple[int, int]) -> np.ndarray:
    return load_faces(list_images(faces_dir), size)
