"""Decoding and fitting aligned face crops. Pillow only; no OpenCV, no torchvision.

All faces inside edgefkd are numpy uint8 arrays (H, W, 3) in RGB order. Channel-order
and normalisation are applied later, in exactly one place: PreprocessContract.prepare.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def decode_image(data: bytes | str | os.PathLike[str], what: str = "image") -> np.ndarray:
    """Decode a file path or encoded bytes to RGB uint8 (H, W, 3).

    Grayscale, palette, CMYK and alpha images are converted to RGB (alpha is dropped).
    Raises InputError for anything Pillow cannot decode.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        with Image.open(src) as img:
            img.load()
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot decode {what}: {exc}") from None


def fit_face(face: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit an aligned face to (H, W).

    Scale so the height is H (keeping the aspect ratio), then centre-crop the width to W.
    So a 112x112 ArcFace crop becomes 112x96 by a centre crop (the common 112x96
    convention), and a 224x224 crop becomes 112x112 by a plain resize. If the scaled width
    is narrower than W the image is resized to (H, W) directly.
    """
    from PIL import Image

    h, w = size
    fh, fw = face.shape[:2]
    if (fh, fw) == (h, w):
        return face
    img = Image.fromarray(face)
    new_w = max(1, round(fw * h / fh))
    if new_w < w:
        return np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.uint8)
    if (fh, new_w) != (h, fw):
        img = img.resize((new_w, h), Image.BILINEAR)
    left = (new_w - w) // 2
    return np.asarray(img.crop((left, 0, left + w, h)), dtype=np.uint8)


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files below `folder`, recursively, in a stable (sorted) order."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"image folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_faces(paths: Iterable[str | os.PathLike[str]], size: tuple[int, int]) -> np.ndarray:
    """Decode and fit several faces into one (N, H, W, 3) uint8 array."""
    faces = [fit_face(decode_image(p, what=str(p)), size) for p in paths]
    if not faces:
        raise InputError("no face images to load")
    return np.stack(faces)

