"""Synthetic DCGAN calibration faces, the shipped calib_data/ set and `edgefkd calib`."""

from __future__ import annotations

import importlib.metadata
import io
import json
from pathlib import Path

import numpy as np
import pytest

from edgefkd.calib import check_manifest, load_calibration_faces, shipped_calibration_dir, synthesize_faces
from edgefkd.calib.synthetic import MANIFEST_NAME
from edgefkd.cli import main
from edgefkd.errors import InputError
from edgefkd.imaging import decode_image, list_images


def _generator_installed() -> bool:
    try:
        importlib.metadata.distribution("gan-face-generate")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_generator = pytest.mark.skipif(
    not _generator_installed(), reason="gan-face-generate is not installed (pip install --no-deps gan-face-generate)"
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> Path:
    cache = tmp_path_factory.mktemp("edgefkd-cache")
    monkeypatch.setenv("EDGEFKD_CACHE", str(cache))
    return cache


@needs_generator
def test_synthetic_is_deterministic_per_seed():
    first = synthesize_faces(6, seed=0, use_cache=False)
    again = synthesize_faces(6, seed=0, use_cache=False)
    other = synthesize_faces(6, seed=1, use_cache=False)
    assert first.shape == (6, 112, 112, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)  # bit-identical
    assert not np.array_equal(first, other)
    # Different seeds give different faces, not a shifted copy of the same ones.
    assert all(not np.array_equal(a, b) for a in first for b in other)
    assert np.array_equal(synthesize_faces(3, seed=0, use_cache=False), first[:3])  # a prefix


@needs_generator
def test_synthetic_source_is_cached_and_fitted(private_cache: Path):
    faces = load_calibration_faces("synthetic:5:2", (112, 96))
    assert faces.shape == (5, 112, 96, 3)
    cached = list((private_cache / "synth").glob("*.npy"))
    assert len(cached) == 1
    assert np.array_equal(load_calibration_faces("synthetic:5:2", (112, 96)), faces)
    # `limit` caps a synthetic source; `seed` is used when the spec names none.
    assert np.array_equal(load_calibration_faces("synthetic", (112, 96), limit=3, seed=2), faces[:3])


def test_shipped_calib_data_matches_its_manifest():
    folder = shipped_calibration_dir()
    manifest = check_manifest(folder)
    assert manifest["n"] == len(manifest["files"]) == len(list_images(folder))
    faces = load_calibration_faces("default", (112, 112), limit=8)
    assert faces.shape == (8, 112, 112, 3)


@needs_generator
def test_shipped_calib_data_is_what_its_manifest_says_generates_it():
    from PIL import Image

    folder = shipped_calibration_dir()
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    names = [entry["name"] for entry in manifest["files"]][:8]
    shipped = np.stack([decode_image(folder / name) for name in names]).astype(np.int16)
    fresh = synthesize_faces(8, seed=manifest["seed"], use_cache=False)
    other = synthesize_faces(8, seed=manifest["seed"] + 1, use_cache=False).astype(np.int16)
    # The error JPEG itself adds at the manifest's quality bounds the shipped-vs-fresh error.
    encoded = []
    for face in fresh:
        buffer = io.BytesIO()
        Image.fromarray(face).save(buffer, format="JPEG", quality=manifest["jpeg_quality"])
        encoded.append(decode_image(buffer.getvalue()))
    jpeg_error = np.abs(np.stack(encoded).astype(np.int16) - fresh).mean()
    assert np.abs(shipped - fresh).mean() <= jpeg_error + 1.0
    assert np.abs(shipped - other).mean() > 4 * (jpeg_error + 1.0)


@needs_generator
def test_calib_synth_writes_a_checked_set_atomically(tmp_path: Path, capsys):
    out = tmp_path / "set"
    assert main(["calib", "synth", "--n", "4", "--seed", "5", "--out", str(out)]) == 0
    manifest = check_manifest(out)
    assert manifest["seed"] == 5 and len(manifest["files"]) == 4 and (out / "README.md").is_file()
    before = sorted(p.name for p in out.iterdir())
    assert main(["calib", "synth", "--n", "4", "--seed", "6", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before and check_manifest(out)["seed"] == 5
    (out / manifest["files"][0]["name"]).write_bytes(b"tampered")
    with pytest.raises(InputError, match="does not match the sha256"):
        check_manifest(out)
    assert main(["calib", "synth", "--n", "4", "--seed", "6", "--out", str(out), "--force"]) == 0
    assert check_manifest(out)["seed"] == 6


def test_calib_inspect_summarises_a_source(faces_dir: Path, tmp_path: Path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main(["calib", "inspect", str(faces_dir), "--size", "112x96", "--limit", "9", "--sheet", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "faces: 9 x 112x96" in out
    assert decode_image(sheet).shape == (2 * 112, 8 * 96, 3)
    assert main(["calib", "inspect", str(faces_dir), "--size", "112xwide"]) == 2
    assert "HxW" in capsys.readouterr().err
