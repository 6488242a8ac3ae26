"""One exception family. The CLI catches EdgeFKDError, prints one line and exits 2."""

from __future__ import annotations


class EdgeFKDError(Exception):
    """A user-facing failure: bad input, incompatible checkpoint, failed validation.

    The message must be a single line that says what is wrong and, where possible,
    what to do about it.
    """

    exit_code: int = 2


class InputError(EdgeFKDError):
    """A file, option or argument that cannot be used as given."""


class CheckpointError(InputError):
    """A checkpoint that cannot be read safely or does not fit the architecture."""


class ExportError(EdgeFKDError):
    """An export step (ONNX, OpenVINO, TensorRT) that failed."""


class ValidationError(EdgeFKDError):
    """An artifact whose outputs do not match the PyTorch reference."""


class BackendUnavailable(EdgeFKDError):
    """An optional backend (TensorRT, a GPU, an OpenVINO device) that is not present."""
