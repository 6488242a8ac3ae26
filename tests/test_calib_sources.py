"""Calibration sources on real faces: folders (with odd image modes), insightface .bin, .npy."""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from edgefkd.calib import CalibrationWarning, iter_calibration_batches, load_calibration_faces
from edgefkd.errors import InputError
from edgefkd.imaging import decode_image, fit_face, list_images
from edgefkd.safe_pickle import read_insightface_bin

SIZE = (112, 96)


@pytest.fixture()
def mixed_folder(tmp_path: Path, faces_dir: Path) -> tuple[Path, list[Path]]:
    """Real faces in nested folders, plus grayscale, CMYK, RGBA versions and one unreadable file."""
    from PIL import Image

    sources = list_images(faces_dir)[:5]
    root = tmp_path / "faces"
    (root / "nested").mkdir(parents=True)
    for index, src in enumerate(sources):
        shutil.copy(src, (root / "nested" if index % 2 else root) / f"face{index}{src.suffix}")
    with Image.open(sources[0]) as img:
        img.convert("L").save(root / "gray.png")
        img.convert("CMYK").save(root / "cmyk.jpg")
        rgba = img.convert("RGBA")
        rgba.putalpha(128)
        rgba.save(root / "nested" / "alpha.png")
    (root / "broken.jpg").write_bytes(b"this is not a jpeg")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return root, sources


def test_folder_converts_modes_and_skips_unreadable_in_one_warning(mixed_folder):
    root, sources = mixed_folder
    with pytest.warns(CalibrationWarning) as record:
        faces = load_calibration_faces(root, SIZE)
    assert len(record) == 1 and "broken.jpg" in str(record[0].message)
    readable = len(sources) + 3  # the copies plus gray, CMYK and RGBA versions
    assert faces.shape == (readable, *SIZE, 3) and faces.dtype == np.uint8
    gray = fit_face(decode_image(root / "gray.png"), SIZE)
    assert any(np.array_equal(face, gray) for face in faces)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    expected_first = fit_face(decode_image(sources[0]), SIZE)
    assert any(np.array_equal(face, expected_first) for face in faces)


def test_folder_limit_is_a_seeded_sample_of_readable_faces(mixed_folder):
    root, sources = mixed_folder
    readable = len(sources) + 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        # Sampling order may put the broken file anywhere; the sample still fills up to `limit`.
        for seed in range(4):
            assert load_calibration_faces(root, SIZE, limit=readable, seed=seed).shape[0] == readable
        first = load_calibration_faces(root, SIZE, limit=3, seed=1)
        again = load_calibration_faces(root, SIZE, limit=3, seed=1)
    assert first.shape[0] == 3 and np.array_equal(first, again)


def test_streamed_batches_cover_the_same_faces(mixed_folder):
    root, _ = mixed_folder
    with pytest.warns(CalibrationWarning):
        batches = list(iter_calibration_batches(root, SIZE, batch_size=3))
    with pytest.warns(CalibrationWarning):
        whole = load_calibration_faces(root, SIZE)
    assert all(batch.shape[0] <= 3 for batch in batches)
    assert np.array_equal(np.concatenate(batches), whole)


def test_folder_without_readable_faces_is_an_input_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        load_calibration_faces(tmp_path / "empty", SIZE)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(InputError, match="no readable face"):
        load_calibration_faces(tmp_path / "bad", SIZE)


def test_insightface_bin_gives_each_distinct_image_once(pairs_bin: Path):
    images, _ = read_insightface_bin(pairs_bin)
    faces = load_calibration_faces(pairs_bin, (112, 112))
    assert faces.shape == (len(set(images)), 112, 112, 3)
    assert np.array_equal(faces[0], fit_face(decode_image(images[0]), (112, 112)))
    sample = load_calibration_faces(pairs_bin, SIZE, limit=10, seed=0)
    assert sample.shape == (10, *SIZE, 3)


class _RunsACommand:
    """Pickles to os.system(...): loading it with plain pickle would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_bin_is_refused_without_running(tmp_path: Path, pairs_bin: Path):
    images, _ = read_insightface_bin(pairs_bin)
    marker = tmp_path / "was-executed"
    evil = tmp_path / "evil.bin"
    evil.write_bytes(pickle.dumps((images[:2], [_RunsACommand(marker)])))
    with pytest.raises(InputError, match="refusing to load global"):
        load_calibration_faces(evil, SIZE)
    assert not marker.exists()
    wrong_layout = tmp_path / "layout.bin"
    wrong_layout.write_bytes(pickle.dumps((images[:3], [True])))
    with pytest.raises(InputError, match="3 images for 1 pairs"):
        load_calibration_faces(wrong_layout, SIZE)


def test_npy_uint8_and_unit_float_arrays(tmp_path: Path, faces_dir: Path):
    real = np.stack([decode_image(p) for p in list_images(faces_dir)[:6]])
    np.save(tmp_path / "faces.npy", real)
    np.save(tmp_path / "faces01.npy", real.astype(np.float32) / 255.0)
    expected = np.stack([fit_face(face, SIZE) for face in real])
    assert np.array_equal(load_calibration_faces(tmp_path / "faces.npy", SIZE), expected)
    assert np.array_equal(load_calibration_faces(tmp_path / "faces01.npy", SIZE), expected)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 3, 112, 112), np.uint8), "NCHW"),
        (np.full((2, 112, 112, 3), 255.0, np.float32), r"\[0, 1\]"),
        (np.zeros((2, 112, 112, 3), np.int16), "dtype int16"),
        (np.zeros((112, 112, 3), np.uint8), r"\(N, H, W, 3\)"),
    ],
)
def test_npy_with_the_wrong_layout_is_an_input_error(tmp_path: Path, array: np.ndarray, message: str):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match=message):
        load_calibration_faces(tmp_path / "bad.npy", SIZE)


def test_npy_object_array_is_refused(tmp_path: Path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="object arrays are refused"):
        load_calibration_faces(tmp_path / "objects.npy", SIZE)


def test_unknown_sources_and_bad_requests(tmp_path: Path, faces_dir: Path):
    (tmp_path / "faces.txt").write_text("x")
    with pytest.raises(InputError, match="unsupported calibration source"):
        load_calibration_faces(tmp_path / "faces.txt", SIZE)
    with pytest.raises(InputError, match="not found"):
        load_calibration_faces(tmp_path / "missing", SIZE)
    with pytest.raises(InputError, match="limit"):
        load_calibration_faces(faces_dir, SIZE, limit=0)
    with pytest.raises(InputError, match="synthetic:N:SEED"):
        load_calibration_faces("synthetic:many", SIZE)
