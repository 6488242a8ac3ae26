"""A contact sheet of faces, to look at what calibration will use."""

from __future__ import annotations

import os

import numpy as np

from ..fileio import atomic_path


def write_contact_sheet(faces: np.ndarray, path: str | os.PathLike[str], columns: int = 8) -> None:
    """Tile (N, H, W, 3) uint8 RGB faces into one PNG, `columns` per row (atomic write)."""
    from PIL import Image

    count, height, width, _ = faces.shape
    rows = -(-count // columns)
    sheet = np.zeros((rows * height, min(count, columns) * width, 3), dtype=np.uint8)
    for index, face in enumerate(faces):
        row, col = divmod(index, columns)
        sheet[row * height : (row + 1) * height, col * width : (col + 1) * width] = face
    with atomic_path(path) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
