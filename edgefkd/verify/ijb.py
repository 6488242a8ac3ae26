"""IJB-B / IJB-C 1:1 template verification: the official layout, landmark alignment and
template pooling.

Layout (as distributed by NIST and used by insightface's evaluation scripts)::

    DIR/meta/<SET>_face_tid_mid.txt         image template_id media_id
    DIR/meta/<SET>_template_pair_label.txt  template_1 template_2 same(1|0)
    DIR/meta/<SET>_name_5pts_score.txt      image x1 y1 ... x5 y5 detector_score
    DIR/loose_crop/<image>

Faces are aligned from their five landmarks to the ArcFace 112x112 template by a
similarity transform (OpenCV), scaled to the model's input height; a 112x96 contract then
takes the centre crop exactly like the pair sets (`imaging.fit_face`). A template's
feature is the mean over its media of the mean over each media's images (L2-normalised
image embeddings, optionally weighted by the detector score), L2-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..imaging import fit_face
from .engine import FaceItem

IJB_SETS = ("IJBB", "IJBC")

#: The five ArcFace reference points (eyes, nose tip, mouth corners) in a 112x112 crop.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp an RGB face so its five landmarks land on the ArcFace template, fitted to `size`.

    The template is scaled to the input height (a square crop of side H), then `fit_face`
    takes the contract's width from it, so 112x96 is the usual centre crop of the 112x112.
    """
    try:
        import cv2
    except ImportError:
        raise InputError("aligning IJB faces needs OpenCV, an optional extra: pip install 'edgefkd[ijb]'") from None
    side = int(size[0])
    target = ARCFACE_TEMPLATE * (side / 112.0)
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(landmarks, dtype=np.float32).reshape(5, 2), target, method=cv2.LMEDS
    )
    if matrix is None:
        raise InputError("cannot fit a similarity transform to these five landmarks")
    warped = cv2.warpAffine(np.ascontiguousarray(image), matrix, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)
    return fit_face(warped, size)


@dataclass
class IJBSet:
    """One IJB-B/C protocol: its faces (paths + landmarks), their template/media, the template pairs."""

    root: Path
    set_name: str
    items: list[FaceItem]
    templates: np.ndarray  # (N,) template id of each face
    medias: np.ndarray  # (N,) media id of each face
    scores: np.ndarray  # (N,) detector score of each face
    template_pairs: np.ndarray  # (P, 2) template ids
    is_same: np.ndarray  # (P,) bool

    def describe(self) -> dict[str, Any]:
        return {
            "source": str(self.root),
            "format": f"ijb-{self.set_name.lower()}",
            "faces": len(self.items),
            "templates": int(len(np.unique(self.templates))),
            "media": int(len(np.unique(self.medias))),
            "pairs": int(len(self.is_same)),
            "same": int(self.is_same.sum()),
            "different": int((~self.is_same).sum()),
        }


def _rows(path: Path, columns: int) -> list[list[str]]:
    if not path.is_file():
        raise InputError(f"IJB file not found: {path}")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != columns:
                raise InputError(f"{path}:{number}: expected {columns} fields, got {len(fields)}")
            rows.append(fields)
    if not rows:
        raise InputError(f"{path} is empty")
    return rows


def read_ijb(root: str | Path, set_name: str) -> IJBSet:
    """Read an IJB-B/C 1:1 protocol in the official layout (images stay on disk)."""
    root = Path(root)
    set_name = set_name.upper()
    if set_name not in IJB_SETS:
        raise InputError(f"--ijb-set must be one of {', '.join(IJB_SETS)}, got {set_name!r}")
    meta = root / "meta"
    try:
        faces = _rows(meta / f"{set_name}_face_tid_mid.txt", 3)
        landmarks = {r[0]: r[1:] for r in _rows(meta / f"{set_name}_name_5pts_score.txt", 12)}
        pair_rows = _rows(meta / f"{set_name}_template_pair_label.txt", 3)
        templates = np.array([int(r[1]) for r in faces], dtype=np.int64)
        medias = np.array([int(r[2]) for r in faces], dtype=np.int64)
        pairs = np.array([[int(r[0]), int(r[1])] for r in pair_rows], dtype=np.int64)
        is_same = np.array([int(r[2]) for r in pair_rows], dtype=np.int64)
        points = []
        for name, *_ in faces:
            if name not in landmarks:
                raise InputError(f"{meta / f'{set_name}_name_5pts_score.txt'} has no landmarks for {name}")
            points.append([float(v) for v in landmarks[name]])
    except ValueError as exc:
        raise InputError(f"{meta}: not an IJB protocol file: {exc}") from None
    if not np.isin(is_same, (0, 1)).all():
        raise InputError(f"{meta / f'{set_name}_template_pair_label.txt'}: labels must be 0 or 1")
    unknown = np.setdiff1d(pairs.ravel(), templates)
    if len(unknown):
        raise InputError(f"template pairs name templates with no faces, e.g. {int(unknown[0])}")
    values = np.array(points, dtype=np.float32)
    crop = root / "loose_crop"
    items = [FaceItem(name, str(crop / name), values[i, :10].reshape(5, 2)) for i, (name, *_) in enumerate(faces)]
    return IJBSet(root, set_name, items, templates, medias, values[:, 10], pairs, is_same.astype(bool))


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def pool_templates(
    embeddings: np.ndarray, templates: np.ndarray, medias: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(template ids sorted, (T, D) L2-normalised features): media means, then their mean per template."""
    feats = l2_normalise(embeddings)
    if weights is not None:
        feats = feats * np.asarray(weights, dtype=np.float64)[:, None]
    # One group per (template, media): a media id may recur in several templates.
    keys = np.stack([templates, medias], axis=1)
    groups, group_of = np.unique(keys, axis=0, return_inverse=True)
    group_of = group_of.ravel()
    media_sum = np.zeros((len(groups), feats.shape[1]))
    np.add.at(media_sum, group_of, feats)
    media_mean = media_sum / np.bincount(group_of, minlength=len(groups))[:, None]
    template_ids, template_of = np.unique(groups[:, 0], return_inverse=True)
    template_sum = np.zeros((len(template_ids), feats.shape[1]))
    np.add.at(template_sum, template_of.ravel(), media_mean)
    template_mean = template_sum / np.bincount(template_of.ravel(), minlength=len(template_ids))[:, None]
    return template_ids, l2_normalise(template_mean)


def template_pair_scores(
    ids: np.ndarray, features_a: np.ndarray, features_b: np.ndarray, pairs: np.ndarray
) -> np.ndarray:
    """Cosine of each template pair: template 1 from `features_a`, template 2 from `features_b`."""
    first = np.searchsorted(ids, pairs[:, 0])
    second = np.searchsorted(ids, pairs[:, 1])
    return np.einsum("ij,ij->i", features_a[first], features_b[second])
