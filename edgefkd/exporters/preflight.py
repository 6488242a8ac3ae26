"""Checks of `edgefkd export` options that run before any work.

A typo in `--keep-fp`, `--calib-method` or `--opset` must cost no time: every option
that can be judged without the model is judged here, with a one-line error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from ..fileio import check_output_apart, check_plain_path, check_writable_location

#: The oldest opset the legacy exporter writes for these networks; ONNX Runtime and
#: TensorRT read nothing older anyway.
MIN_OPSET = 9
#: Fewer validation faces than this give a cosine minimum that says little.
MIN_VALIDATION_FACES = 8
MAX_CALIB_COUNT = 100_000


def max_opset() -> int:
    """The newest opset the installed onnx package knows (nothing newer can be checked)."""
    import onnx

    return int(onnx.defs.onnx_opset_version())


def _check_keep_fp(patterns: Sequence[str]) -> None:
    for pattern in patterns:
        if pattern.startswith("re:"):
            try:
                re.compile(pattern[3:])
            except re.error as exc:
                raise InputError(f"--keep-fp {pattern!r} is not a valid regular expression: {exc}") from None


def check_export_options(opts: Any) -> None:
    """Refuse unusable export options up front (opts: pipeline.ExportOptions)."""
    from .quantize_onnx import CALIBRATION_METHODS

    newest = max_opset()
    if not MIN_OPSET <= opts.opset <= newest:
        raise InputError(f"--opset {opts.opset} cannot be written: choose {MIN_OPSET} to {newest}")
    if opts.calib_method not in CALIBRATION_METHODS:
        raise InputError(f"--calib-method must be one of {', '.join(CALIBRATION_METHODS)}, got {opts.calib_method!r}")
    if not 1 <= opts.calib_count <= MAX_CALIB_COUNT:
        raise InputError(f"--calib-count must be between 1 and {MAX_CALIB_COUNT}, got {opts.calib_count}")
    if opts.max_acc_drop < 0:
        raise InputError(f"--max-acc-drop must be 0 or more, got {opts.max_acc_drop}")
    _check_keep_fp(opts.keep_fp)
    for what, value in (("--out", opts.out), ("--name", opts.name), ("checkpoint", opts.checkpoint),
                        ("--val-images", opts.val_images), ("--calib", opts.calib), ("--pairs", opts.pairs)):
        if value is not None:
            check_plain_path(value, what)
    if opts.out is not None:
        check_output_apart(opts.out, export_inputs(opts))
        check_writable_location(opts.out, "output folder")


def export_inputs(opts: Any) -> list[Path | None]:
    """Every file or folder an export reads: the output folder must stay apart from all of them."""
    calib = Path(opts.calib) if opts.calib and Path(opts.calib).exists() else None
    return [opts.checkpoint, opts.val_images, calib, opts.pairs]


def validation_notes(face_count: int, source: str, validate: bool) -> list[str]:
    """Warnings about what the artifacts' validation is worth."""
    if not validate:
        return ["--no-validate: the artifacts were NOT compared with PyTorch; run verify-parity before using them"]
    if face_count < MIN_VALIDATION_FACES:
        return [f"validated on only {face_count} face(s) ({source}); give --val-images at least {MIN_VALIDATION_FACES}"]
    return []
