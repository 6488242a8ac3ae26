"""What the formats converted from the PyTorch student share (LiteRT, ExecuTorch).

Capturing the student with `torch.export` (with one clear error where it cannot be, e.g. a
TorchScript module), the example input, and a converter's rejection as one line naming the op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ExportError, InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def capture(module: Any, example: "torch.Tensor", fmt: str) -> Any:
    """The student as an exported program at the example's (fixed) shape, or a typed error."""
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        raise ExportError(
            f"{fmt}: a TorchScript student cannot go through torch.export; load the checkpoint "
            "with --arch (registered or file.py:factory) or as a torch.export .pt2 program"
        )
    # No module.eval() here: the student arrives in eval mode, and a PT2E-converted module
    # (which reports training=True) refuses train()/eval().
    try:
        return torch.export.export(module, (example,))
    except Exception as exc:
        raise ExportError(f"{fmt}: torch.export rejected the model: {first_line(exc)}") from exc


def example_input(contract: Any, fmt: str) -> "torch.Tensor":
    """A batch-1 float NCHW example at the contract's size (what the artifact will take)."""
    import torch

    from ..contract import INPUT_FLOAT_NCHW

    if contract.input_format != INPUT_FLOAT_NCHW:
        raise InputError(f"{fmt} artifacts take normalised float NCHW input; --fold-preprocess applies to ONNX/OpenVINO only")
    height, width = contract.input_size
    return torch.zeros(1, 3, height, width)


def converter_error(fmt: str, exc: BaseException) -> ExportError:
    """A one-line ExportError naming the model op a converter rejected, when it can be told."""
    import re

    text = str(exc)
    found = re.search(r"(?:aten|quantized_decomposed)(?:\.|::)(\w+)", text)
    if found:
        return ExportError(f"{fmt}: the converter does not support the model op {found.group(1)!r}: {first_line(exc)}")
    return ExportError(f"{fmt}: the converter rejected the model: {first_line(exc)}")


def first_line(exc: BaseException, limit: int = 240) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]

