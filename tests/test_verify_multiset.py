"""Several pair sets in one run: one combined image list cut back per set, and the warning for
faces that are not aligned crops of the model's input size."""

from __future__ import annotations

import io

import numpy as np

from edgefkd.imaging import decode_image, list_images
from edgefkd.verify.datasets import PairSet
from edgefkd.verify.multiset import concat_pair_sets, resize_warnings


def _png(face: np.ndarray, size: int | None = None) -> bytes:
    from PIL import Image

    img = Image.fromarray(face)
    if size:
        img = img.resize((size, size))
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def test_sets_are_concatenated_once_and_rescaled_faces_are_counted(faces_dir):
    faces = [decode_image(p) for p in list_images(faces_dir)[:4]]
    aligned = PairSet("aligned.bin", "bin", [_png(f) for f in faces], np.array([[0, 1], [2, 3]]), np.array([True, False]))
    # Two of the four faces are 150x150: not aligned 112x112 crops.
    mixed = PairSet("mixed.bin", "bin", [_png(faces[0], 150), _png(faces[1]), _png(faces[2], 150), _png(faces[3])],
                    np.array([[0, 1], [3, 2], [1, 2]]), np.array([True, False, True]))
    combined, slices = concat_pair_sets([aligned, mixed])
    assert len(combined.images) == 8 and slices == [slice(0, 4), slice(4, 8)]
    np.testing.assert_array_equal(combined.pairs, [[0, 1], [2, 3], [4, 5], [7, 6], [5, 6]])
    decoded = sum(len(batch) for _, batch in combined.iter_decoded(3))
    assert decoded == 8  # every image of every set decoded once
    warnings = resize_warnings(combined, slices, [aligned, mixed], [(112, 112), (112, 96)])
    assert warnings[0] == []
    # 112x112 faces are only centre-cropped for a 112x96 model: that is the convention, not a rescale.
    assert len(warnings[1]) == 2 and all("2 of 4 faces are not aligned" in w and "150x150" in w for w in warnings[1])
