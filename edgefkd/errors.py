"""One exception family. The CLI catches EdgeFKDError and prints one `error:` line.

Exit codes: 2 for bad input (a file, option or folder that cannot be used as given),
4 for a backend that failed on valid input (BackendError: ONNX Runtime, OpenVINO,
TensorRT, torch raised something of their own), 1 and 3 for verify-parity's failed and
inconclusive verdicts, 130 for Ctrl-C / SIGTERM. `edgefkd --debug ...` prints the whole chain of causes.
"""

from __future__ import annotations


class EdgeFKDError(Exception):
    """A user-facing failure: bad input, incompatible checkpoint, failed validation.

    The message must be a single line that says what is wrong and, where possible,
    what to do about it.
    """

    exit_code: int = 2


class InputError(EdgeFKDError):
    """A file, option or argument that cannot be used as given."""


class IntegrityError(InputError):
    """An artifact that is not what its manifest says: outside the export folder, or changed since."""


class MissingArtifactError(InputError):
    """An artifact the manifest lists whose file is not there."""


class CheckpointError(InputError):
    """A checkpoint that cannot be read safely or does not fit the architecture."""


class BackendError(EdgeFKDError):
    """A library (ONNX Runtime, OpenVINO, TensorRT, torch) failed on input edgefkd accepted.

    Raised `from` the library's exception so `--debug` can show it.
    """

    exit_code: int = 4


class ExportError(EdgeFKDError):
    """An export step (ONNX, OpenVINO, TensorRT) that failed on this model: exit 2 like bad
    input, since what cannot be exported (an op ONNX cannot express) is the model's doing."""


class ValidationError(EdgeFKDError):
    """An artifact whose outputs do not match the PyTorch reference."""


class BackendUnavailable(EdgeFKDError):
    """An optional backend (TensorRT, a GPU, an OpenVINO device) that is not present."""


def library_message(exc: BaseException, limit: int = 200) -> str:
    """A library's error text on one line, without C++ source locations, cut at a word."""
    import re

    text = " ".join(str(exc).split())
    text = re.sub(r"(Exception from )?\S+\.(cpp|cc|h|hpp):\d+:?\s*", "", text)
    text = text.strip(" :") or type(exc).__name__
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
