"""PyTorch -> ONNX (dynamic batch, onnxsim-simplified, checked, with the contract inside).

The torch.export-based ("dynamo") exporter is the default: TorchScript export is
deprecated. If it fails on a model the TorchScript exporter is tried, and the exporter
that produced the graph is recorded in the metadata.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..contract import INPUT_UINT8_NHWC, PreprocessContract
from ..errors import ExportError
from ..fileio import atomic_path
from ..formats.onnx import merge_metadata

INPUT_NAME = "input"
OUTPUT_NAME = "embedding"
#: ONNX Runtime 1.31 rejects IR 14 (onnx 1.23's default for new graphs).
MAX_IR_VERSION = 10


@dataclass
class OnnxExportResult:
    path: Path
    exporter: str
    opset: int
    nodes_before: int
    nodes_after: int
    simplified: bool
    warnings: list[str] = field(default_factory=list)


def _fold_preprocess_module(module: Any, contract: PreprocessContract) -> Any:
    """Wrap `module` so it takes uint8 NHWC pixels in the model's channel order."""
    import torch

    class FoldedPreprocess(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner
            self.register_buffer("mean", torch.tensor(contract.mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("inv_std", 1.0 / torch.tensor(contract.std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            x = pixels.permute(0, 3, 1, 2).to(torch.float32)
            return self.inner((x - self.mean) * self.inv_std)

    return FoldedPreprocess(module).eval()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporters log and warn a lot that is noise to a user (missing torchvision ops,
    deprecations); keep it off the terminal. Real failures still raise."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _first_line(exc: BaseException) -> str:
    """The most telling line of an exporter error: the one naming an unsupported op, if any."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(("Traceback", "  "))]
    telling = [ln for ln in lines if re.search(r"support|decomposition|not implemented|unknown op", ln, re.I)]
    chosen = (telling or lines or [type(exc).__name__])[0]
    return chosen[:240]


def _torch_export(module: Any, example: Any, path: Path, opset: int, exporter: str) -> None:
    import torch

    if exporter == "dynamo":
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            verbose=False,
        )
        program.save(str(path))
    else:
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )


def file_opset(path: str | Path) -> int | None:
    """The default-domain opset an ONNX file actually declares (read back from the file)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _batch_is_dynamic(model: Any) -> bool:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return bool(dims) and not dims[0].HasField("dim_value")


def export_onnx(
    module: Any,
    contract: PreprocessContract,
    out_path: str | Path,
    *,
    opset: int = 17,
    fold_preprocess: bool = False,
    simplify: bool = True,
    exporter: str = "dynamo",
    metadata: dict[str, str] | None = None,
) -> OnnxExportResult:
    """Export `module` to ONNX at `out_path` (written atomically)."""
    import onnx
    import torch

    out_path = Path(out_path)
    notes: list[str] = []
    if fold_preprocess:
        module = _fold_preprocess_module(module, contract)
        contract = contract.with_input_format(INPUT_UINT8_NHWC)
    example = torch.from_numpy(contract.example_input(2))

    order = [exporter] + [e for e in ("dynamo", "legacy") if e != exporter]
    with atomic_path(out_path) as tmp:
        errors = []
        used = None
        for candidate in order:
            try:
                with _quiet_exporter():
                    _torch_export(module, example, tmp, opset, candidate)
                written = file_opset(tmp)
                if written != opset:  # the dynamo exporter falls back to its own opset silently
                    errors.append(f"{candidate}: wrote opset {written}, not {opset}")
                    continue
                used = candidate
                break
            except Exception as exc:  # try the other exporter, then report both
                errors.append(f"{candidate}: {_first_line(exc)}")
        if used is None:
            raise ExportError(f"ONNX export failed at opset {opset} with both exporters: {' | '.join(errors)}")
        if used != exporter:
            notes.append(f"the {exporter} exporter failed ({errors[0]}); used the {used} exporter")

        model = onnx.load(str(tmp))
        if not _batch_is_dynamic(model):
            raise ExportError("the exported ONNX has a fixed batch axis; the model's forward must not depend on the batch size")
        nodes_before = len(model.graph.node)
        simplified = False
        if simplify:
            try:
                import onnxsim

                with _quiet_exporter():
                    candidate_model, ok = onnxsim.simplify(model)
                if ok and _batch_is_dynamic(candidate_model):
                    model, simplified = candidate_model, True
                else:
                    notes.append("onnxsim could not validate its simplified graph; kept the unsimplified graph")
            except Exception as exc:  # onnxsim is an optimisation, never a reason to fail
                notes.append(f"onnxsim failed ({_first_line(exc)}); kept the unsimplified graph")
        model.ir_version = min(model.ir_version, MAX_IR_VERSION)
        del model.metadata_props[:]
        merge_metadata(model, {**(metadata or {}), **contract.to_metadata(exporter=used, opset=str(opset))})
        model.producer_name = "edgefkd"
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:
            raise ExportError(f"onnx.checker rejected the exported graph: {_first_line(exc)}") from exc
        onnx.save(model, str(tmp))
    return OnnxExportResult(out_path, used, opset, nodes_before, len(model.graph.node), simplified, notes)


def convert_onnx_fp16(src: str | Path, dst: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """FP16 weights and compute, fp32 inputs/outputs kept (Casts at the boundary)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    dst = Path(dst)
    model = onnx.load(str(src))
    try:
        with _quiet_exporter():
            half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    except Exception as exc:
        raise ExportError(f"FP16 conversion of {src} failed: {_first_line(exc)}") from exc
    half.ir_version = min(half.ir_version, MAX_IR_VERSION)
    merge_metadata(half, metadata or {})
    with atomic_path(dst) as tmp:
        onnx.save(half, str(tmp))
    return dst
