"""INT8 agreement with the fp32 reference on faces the calibration never saw.

An INT8 model checked on its own calibration faces looks better than it is (its ranges
were fitted to exactly those activations), so validation drops every face that is
pixel-identical to a calibration face before comparing embeddings.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..errors import InputError
from ..runners.base import Runner
from .validate import compare_runners

#: Minimum 1st-percentile cosine of INT8 embeddings to the fp32 reference.
DEFAULT_INT8_COSINE_P1 = 0.97


def _face_digests(faces: np.ndarray) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(face).tobytes()).hexdigest() for face in faces]


def calibration_disjoint_faces(faces: np.ndarray, calibration_faces: np.ndarray) -> np.ndarray:
    """`faces` without those pixel-identical to any calibration face."""
    seen = set(_face_digests(calibration_faces))
    keep = [i for i, digest in enumerate(_face_digests(faces)) if digest not in seen]
    return faces[keep]


def validate_int8(
    reference: Runner,
    candidate: Runner,
    faces: np.ndarray,
    calibration_faces: np.ndarray,
    threshold: float = DEFAULT_INT8_COSINE_P1,
    batch_sizes: tuple[int, ...] = (1, 8),
) -> dict[str, Any]:
    """Parity of an INT8 runner to the reference on calibration-disjoint RGB uint8 faces.

    Returns compare_runners' statistics plus threshold, passed, and how many faces were
    used and dropped as seen in calibration.
    """
    disjoint = calibration_disjoint_faces(faces, calibration_faces)
    if len(disjoint) == 0:
        raise InputError("every validation face is also a calibration face: give validation faces the calibration did not use")
    parity = compare_runners(reference, candidate, disjoint, batch_sizes)
    parity.update(
        threshold=threshold,
        passed=parity["cosine_p1"] >= threshold,
        validation_faces=int(len(disjoint)),
        dropped_as_calibration=int(len(faces) - len(disjoint)),
    )
    return parity
