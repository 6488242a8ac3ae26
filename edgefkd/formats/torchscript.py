"""A TorchScript trace of the student: what pnnx (NCNN) and coremltools convert from.

Both converters read TorchScript. A registered architecture or a user factory is traced at
batch 1 with the float NCHW input its contract describes; a TorchScript student is already
a ScriptModule and is used as it is.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..contract import INPUT_FLOAT_NCHW, PreprocessContract
from ..errors import ExportError


def float_contract(contract: PreprocessContract) -> PreprocessContract:
    """The contract of a mobile artifact: always float NCHW input.

    Mobile apps normalise pixels in their own camera pipeline (ncnn's
    `substract_mean_normalize`, Core ML's image scale/bias), so the artifacts keep the
    plain model input even when the ONNX export folded preprocessing in.
    """
    return contract.with_input_format(INPUT_FLOAT_NCHW)


def trace_student(module: Any, contract: PreprocessContract, fmt: str) -> tuple[Any, Any]:
    """(ScriptModule, example input of batch 1) for `module`; ExportError naming `fmt` on failure."""
    import torch

    example = torch.from_numpy(float_contract(contract).example_input(1))
    if isinstance(module, torch.jit.ScriptModule):
        return module.eval(), example
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # TracerWarnings (Python-side shape arithmetic) are expected for face students.
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(module, example, check_trace=False)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{fmt}: torch.jit.trace of the student failed: {type(exc).__name__}: {first[:200]}") from exc
    return traced.eval(), example
