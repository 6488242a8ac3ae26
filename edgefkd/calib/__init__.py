"""Calibration faces for INT8: folders, insightface .bin, .npy and synthetic DCGAN faces.

Entry points: load_calibration_faces(source, size, limit=None, seed=0) and
iter_calibration_batches(...) in sources.py; write_synthetic_set / synthesize_faces in
synthetic.py. Light to import: torch and Pillow load only when faces are made or decoded.
"""

from __future__ import annotations

from .sources import (
    DEFAULT_SOURCE,
    CalibrationSource,
    CalibrationWarning,
    iter_calibration_batches,
    load_calibration_faces,
    open_calibration_source,
    shipped_calibration_dir,
)
from .synthetic import check_manifest, synthesize_faces, write_synthetic_set

__all__ = [
    "DEFAULT_SOURCE",
    "CalibrationSource",
    "CalibrationWarning",
    "check_manifest",
    "iter_calibration_batches",
    "load_calibration_faces",
    "open_calibration_source",
    "shipped_calibration_dir",
    "synthesize_faces",
    "write_synthetic_set",
]
