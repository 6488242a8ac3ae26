"""A small IJB-C-layout fixture and a 1:N gallery/probe split built from ../shared/faces.

No real IJB data can be had here. Each of the 75 aligned shared faces becomes one media
with two "frames": loose crops in which the face was placed by a known random similarity
transform (scale, rotation, offset) inside a larger canvas. The five landmarks written to
the protocol are the ArcFace template points moved by that same transform, so alignment
has real work to undo. An identity with two or more faces gets two templates (its faces
split in halves), a single-face identity one; the pair list holds every template pair
(same and different identities).

Numbers on this fixture prove the mechanics (reading, alignment, pooling, metrics, verdicts,
engines), not the model: 26 genuine template pairs cannot measure a FAR-1e-4 TAR.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgefkd.verify.ijb import ARCFACE_TEMPLATE

CANVAS = (200, 176)  # loose crop H, W
#: identities kept out of the 1:N gallery (their faces become non-mated probes), besides single-face ones
NON_GALLERY = ("deepface_id_img9", "deepface_id_img12", "deepface_id_img17", "deepface_id_img19")


def read_faces(faces_root: Path) -> list[tuple[str, str]]:
    """(absolute file, identity) of every shared face, in images.csv order."""
    faces_root = faces_root.resolve()
    with open(faces_root / "images.csv", newline="") as fh:
        return [(str(faces_root / row["file"]), row["identity"]) for row in csv.DictReader(fh)]


def _placement(rng: np.random.Generator) -> np.ndarray:
    """A random similarity transform (2x3) from the 112x112 crop into the loose canvas."""
    scale = rng.uniform(0.85, 1.3)
    angle = math.radians(rng.uniform(-20, 20))
    a, b = scale * math.cos(angle), scale * math.sin(angle)
    linear = np.array([[a, -b], [b, a]])
    centre = np.array([CANVAS[1] / 2, CANVAS[0] / 2]) + rng.uniform(-12, 12, size=2)
    offset = centre - linear @ np.array([56.0, 56.0])
    return np.hstack([linear, offset[:, None]])


def build_ijb_fixture(faces_root: Path, out: Path, seed: int = 0, set_name: str = "IJBC") -> Path:
    """Write `out/meta/*.txt` and `out/loose_crop/*.jpg` in the official IJB layout."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(seed)
    faces = read_faces(faces_root)
    by_identity: dict[str, list[int]] = defaultdict(list)
    for index, (_, identity) in enumerate(faces):
        by_identity[identity].append(index)
    (out / "meta").mkdir(parents=True)
    (out / "loose_crop").mkdir()
    face_rows, point_rows, template_identity = [], [], []
    for identity, indices in by_identity.items():
        half = math.ceil(len(indices) / 2)
        groups = [indices[:half], indices[half:]] if len(indices) > 1 else [indices]
        for group in groups:
            template_identity.append(identity)
            template_id = len(template_identity)
            for index in group:
                aligned = np.asarray(Image.open(faces[index][0]).convert("RGB"))
                for frame in range(2):  # two frames of one media: the same face, placed twice
                    matrix = _placement(rng)
                    loose = cv2.warpAffine(aligned, matrix, (CANVAS[1], CANVAS[0]), borderMode=cv2.BORDER_REFLECT)
                    name = f"{index + 1}_{frame}.jpg"
                    Image.fromarray(loose).save(out / "loose_crop" / name, quality=95)
                    points = ARCFACE_TEMPLATE @ matrix[:, :2].T + matrix[:, 2]
                    face_rows.append(f"{name} {template_id} {index + 1}")
                    score = rng.uniform(0.6, 1.0)
                    point_rows.append(name + " " + " ".join(f"{v:.3f}" for v in points.ravel()) + f" {score:.4f}")
    pair_rows = [
        f"{i + 1} {j + 1} {int(template_identity[i] == template_identity[j])}"
        for i in range(len(template_identity)) for j in range(i + 1, len(template_identity))
    ]
    for suffix, rows in (("face_tid_mid", face_rows), ("name_5pts_score", point_rows), ("template_pair_label", pair_rows)):
        (out / "meta" / f"{set_name}_{suffix}.txt").write_text("\n".join(rows) + "\n")
    return out


def build_identification_split(faces_root: Path, out: Path) -> tuple[Path, Path]:
    """gallery.csv (first face of each enrolled identity) and probes.csv (the rest + non-gallery identities)."""
    faces = read_faces(faces_root)
    counts: dict[str, int] = defaultdict(int)
    for _, identity in faces:
        counts[identity] += 1
    gallery, probes, enrolled = [], [], set()
    for file, identity in faces:
        if counts[identity] >= 2 and identity not in NON_GALLERY and identity not in enrolled:
            enrolled.add(identity)
            gallery.append((file, identity))
        else:
            probes.append((file, identity))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in (("gallery.csv", gallery), ("probes.csv", probes)):
        with open(out / name, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "identity"])
            writer.writerows(rows)
        paths.append(out / name)
    return paths[0], paths[1]
