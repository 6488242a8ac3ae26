"""Label-free synthetic calibration faces (the SynthDistill idea applied to calibration).

Faces come from the DCGAN generator in `dcgan.py` (64x64) and are upscaled to the
ArcFace 112x112 aligned-face framing. The generator was trained on DigiFace-1M crops,
which are already aligned to the ArcFace 5-point template; matching the mean generated
face against the mean of real aligned faces (normalised cross-correlation over the face
interior, over crop boxes of 44-72 px and offsets of +-6 px) put eyes, nose and mouth on
the template within about a pixel for the whole 64x64 frame, so CROP_BOX is the full frame.

Generated sets are cached on disk (EDGEFKD_CACHE, default ~/.cache/edgefkd) under a key
of everything that decides their pixels, and `write_synthetic_set` writes the shipped
`calib_data/` layout: JPEG files, manifest.json and README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import InputError
from ..fileio import atomic_path, sha256_file, staged_directory
from . import dcgan

FACE_SIZE = (112, 112)  # (H, W) of the ArcFace aligned-face template
CROP_BOX = (0, 0, dcgan.OUTPUT_SIZE, dcgan.OUTPUT_SIZE)  # (left, top, right, bottom) in 64x64 pixels
RESAMPLE = "lanczos"
DEFAULT_COUNT = 512
JPEG_QUALITY = 90
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "edgefkd.calib/1"


def cache_dir() -> Path:
    """Root of edgefkd's on-disk cache: $EDGEFKD_CACHE, else ~/.cache/edgefkd."""
    root = os.environ.get("EDGEFKD_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "edgefkd"


def _check_count_seed(n: int, seed: int) -> None:
    if n < 1:
        raise InputError(f"the number of synthetic faces must be at least 1, got {n}")
    if not 0 <= seed < 2**63:
        raise InputError(f"the synthetic seed must be a non-negative 64-bit integer, got {seed}")


def _recipe(weights: dcgan.GeneratorWeights, seed: int) -> dict[str, Any]:
    """Everything that decides the pixels of a synthetic set (except the count)."""
    import torch

    return {
        "generator": {
            "package": dcgan.PACKAGE,
            "version": weights.package_version,
            "weights_file": dcgan.WEIGHTS_NAME,
            "weights_sha256": weights.sha256,
            "architecture": f"DCGAN generator nz={dcgan.LATENT_SIZE} ngf={dcgan.FEATURE_MAPS} "
            f"{dcgan.OUTPUT_SIZE}x{dcgan.OUTPUT_SIZE} RGB tanh, eval mode, float32, CPU",
        },
        "seed": seed,
        "latent": f"torch.Generator(cpu).manual_seed(seed); randn float32 in blocks of {dcgan.BLOCK}",
        "crop": {"box": list(CROP_BOX), "size": list(FACE_SIZE), "resample": RESAMPLE},
        "torch_version": torch.__version__,
    }


def _upscale(faces64: np.ndarray) -> np.ndarray:
    from PIL import Image

    height, width = FACE_SIZE
    return np.stack(
        [
            np.asarray(Image.fromarray(face).resize((width, height), Image.LANCZOS, box=CROP_BOX), dtype=np.uint8)
            for face in faces64
        ]
    )


def synthesize_faces(n: int = DEFAULT_COUNT, seed: int = 0, use_cache: bool = True) -> np.ndarray:
    """`n` synthetic aligned faces (n, 112, 112, 3) uint8 RGB for `seed`; bit-identical per seed.

    Face i depends only on (seed, i), so a smaller set is a prefix of a larger one.
    """
    _check_count_seed(n, seed)
    weights = dcgan.locate_weights()
    recipe = _recipe(weights, seed)
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    cached = cache_dir() / "synth" / f"dcgan-seed{seed}-n{n}-{key}.npy"
    if use_cache and cached.is_file():
        try:
            faces = np.load(cached, allow_pickle=False)
            if faces.dtype == np.uint8 and faces.shape == (n, *FACE_SIZE, 3):
                return faces
        except (OSError, ValueError):
            pass  # a damaged cache entry is regenerated below
    generator = dcgan.load_generator(weights)
    faces = np.concatenate([_upscale(block) for block in dcgan.generate_faces64(generator, n, seed)])
    if use_cache:
        try:
            with atomic_path(cached) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, faces, allow_pickle=False)
        except OSError:
            pass  # an unwritable cache only costs regeneration next time
    return faces


def synthetic_manifest(
    n: int, seed: int, files: dict[str, str], jpeg_quality: int, weights: dcgan.GeneratorWeights | None = None
) -> dict[str, Any]:
    """The manifest.json of a written synthetic set. `files` maps file name -> sha256."""
    weights = weights or dcgan.locate_weights()
    return {
        "format": MANIFEST_FORMAT,
        "kind": "synthetic",
        "n": n,
        **_recipe(weights, seed),
        "jpeg_quality": jpeg_quality,
        "edgefkd_version": __version__,
        "regenerate": f"edgefkd calib synth --n {n} --seed {seed} --out DIR",
        "files": [{"name": name, "sha256": digest} for name, digest in sorted(files.items())],
    }


def write_synthetic_set(
    out: str | os.PathLike[str], n: int = DEFAULT_COUNT, seed: int = 0, force: bool = False, jpeg_quality: int = JPEG_QUALITY
) -> dict[str, Any]:
    """Write n synthetic faces as JPEGs plus manifest.json and README.md into `out` (staged, atomic).

    Returns the manifest. Refuses a non-empty `out` unless `force`.
    """
    from PIL import Image

    if not 1 <= jpeg_quality <= 100:
        raise InputError(f"JPEG quality must be within 1..100, got {jpeg_quality}")
    _check_count_seed(n, seed)
    weights = dcgan.locate_weights()
    with staged_directory(out, force=force) as stage:
        faces = synthesize_faces(n, seed)
        files: dict[str, str] = {}
        for index, face in enumerate(faces):
            name = f"synth_s{seed}_{index:05d}.jpg"
            Image.fromarray(face).save(stage / name, quality=jpeg_quality)
            files[name] = sha256_file(stage / name)
        manifest = synthetic_manifest(n, seed, files, jpeg_quality, weights)
        (stage / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        (stage / "README.md").write_text(SET_README.format(n=n, seed=seed), encoding="utf-8")
    return manifest


def check_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Verify that a calibration folder's manifest.json lists exactly its images, by sha256.

    Returns the manifest; raises InputError naming the first mismatch.
    """
    from ..imaging import list_images

    folder = Path(folder)
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        listed = {entry["name"]: entry["sha256"] for entry in manifest["files"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read calibration manifest {path}: {exc}") from None
    present = {p.relative_to(folder).as_posix() for p in list_images(folder)}
    if missing := sorted(set(listed) - present):
        raise InputError(f"{path} lists {len(missing)} file(s) that are absent, e.g. {missing[0]}")
    if extra := sorted(present - set(listed)):
        raise InputError(f"{folder} holds {len(extra)} image(s) not in its manifest, e.g. {extra[0]}")
    for name, digest in listed.items():
        if sha256_file(folder / name) != digest:
            raise InputError(f"{folder / name} does not match the sha256 in {path}")
    return manifest


SET_README = """\
# Calibration faces

{n} synthetic 112x112 aligned faces (seed {seed}) drawn by the DCGAN generator of the
`gan-face-generate` package (trained on the synthetic DigiFace-1M faces), so no real
person's face is needed to calibrate INT8. `manifest.json` records how they were made
(generator version and weights sha256, seed, crop, JPEG quality) and the sha256 of every
file. Regenerate with:

```bash
pip install --no-deps gan-face-generate
edgefkd calib synth --n {n} --seed {seed} --out DIR
```

## Building a better set from your own aligned faces

Synthetic faces need no real person's consent and ship with the code, but activation
ranges are best estimated on faces like the ones the model will meet in deployment:

- Use aligned crops made exactly like deployment inputs (same detector, same 5-point
  alignment to the 112x112 ArcFace template); any size works, edgefkd fits them to the
  model's input size.
- Prefer many identities over many photos of few people: 300-1000 faces of as many
  different people as you can, covering skin tones, ages, poses, glasses, lighting and
  camera quality.
- Never calibrate on faces that appear in your evaluation pairs (not the same images and
  ideally not the same identities): INT8 numbers measured on calibration faces look
  better than they are.
- Put them in a folder (jpg/png, nested folders are fine) and pass it with `--calib DIR`;
  `edgefkd calib inspect DIR` shows what will be used and warns about unreadable files.
"""
