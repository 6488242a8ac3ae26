"""Core ML: an ML Program `.mlpackage` (a directory) converted by coremltools.

The contract travels in the model's user-defined metadata. Core ML predicts only on macOS:
on Linux the package is exported and checked statically (it loads as a spec; input name,
shape and dtype, output shape, compute precision and metadata are right), and the runner
reports "Core ML runs only on macOS".

Precisions: fp32 (fp32 compute), fp16 (fp16 compute and weights, the ML Program default
that the Neural Engine runs) and int8 (fp16 compute, weights stored int8, per output
channel, symmetric, via `coremltools.optimize.coreml.linear_quantize_weights`). The first
convolution and the embedding head keep float weights, as the other INT8 paths do.

The input is fixed at batch 1 (the Neural Engine wants static shapes); the runner embeds a
larger batch image by image.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..contract import METADATA_PREFIX, PreprocessContract
from ..errors import BackendUnavailable, ExportError, InputError, ValidationError
from ..runners.base import Runner
from .base import ExportContext, Format
from .torchscript import float_contract, trace_student

PRECISIONS = ("fp32", "fp16", "int8")
INSTALL_HINT = "pip install 'edgefkd[coreml]'"
INPUT_NAME = "input"
OUTPUT_NAME = "embedding"
NOT_MACOS = "Core ML runs only on macOS"
#: MIL op types whose const weight input int8 quantization rewrites
WEIGHTED_OPS = ("conv", "conv_transpose", "linear", "matmul")
#: op types that prove int8 weights are stored (iOS16 and iOS18 opsets)
INT8_WEIGHT_OPS = ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale")


def _coremltools() -> Any:
    """Import coremltools without its import-time noise (version warnings, missing macOS proxies)."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    try:
        import coremltools
    except ImportError:
        raise BackendUnavailable(f"coremltools is not installed: {INSTALL_HINT}") from None
    return coremltools


def available() -> str | None:
    if sys.platform != "darwin":
        return NOT_MACOS
    try:
        _coremltools()
    except BackendUnavailable as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def _quiet_conversion() -> Iterator[None]:
    """coremltools draws tqdm bars on stderr for every pass; numpy warns on all-zero weight channels."""
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _rejected_op(exc: BaseException) -> str | None:
    """The PyTorch op named in a coremltools conversion error, if any."""
    match = re.search(r"op '([^']+)'", str(exc)) or re.search(r"convert function for op (\S+)", str(exc))
    return match.group(1) if match else None


def _convert(traced: Any, contract: PreprocessContract, precision: str) -> Any:
    ct = _coremltools()
    h, w = contract.input_size
    try:
        with _quiet_conversion():
            return ct.convert(
                traced,
                inputs=[ct.TensorType(name=INPUT_NAME, shape=(1, 3, h, w), dtype=np.float32)],
                outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
                convert_to="mlprogram",
                compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                minimum_deployment_target=ct.target.iOS16,
                skip_model_load=True,  # loading compiles the model, which needs macOS
            )
    except Exception as exc:
        op = _rejected_op(exc)
        if op:
            raise ExportError(f"coreml: coremltools {ct.__version__} cannot convert op {op}") from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"coreml: coremltools conversion failed: {type(exc).__name__}: {first[:200]}") from exc


def _weight_const_names(mlmodel: Any) -> list[str]:
    """Names of the const weights of the weighted ops, in program order."""
    names = []
    for op in mlmodel._mil_program.functions["main"].operations:
        weight = op.inputs.get("weight") if op.op_type in WEIGHTED_OPS else None
        if weight is not None and weight.op is not None and weight.op.op_type == "const":
            names.append(weight.op.name)
    return names


def _keep_float(weights: list[str], keep_fp: Sequence[str]) -> list[str]:
    """Face-aware: the first convolution and the embedding head, plus --keep-fp globs/re: patterns."""
    keep = {weights[0], weights[-1]} if weights else set()
    for pattern in keep_fp:
        hits = [n for n in weights if (re.search(pattern[3:], n) if pattern.startswith("re:") else fnmatch.fnmatch(n, pattern))]
        if not hits:
            raise InputError(f"--keep-fp pattern {pattern!r} matches no Core ML weight (names like {weights[0]!r})")
        keep.update(hits)
    return sorted(keep)


def _quantize_weights_int8(mlmodel: Any, keep_fp: Sequence[str]) -> Any:
    ct = _coremltools()
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

    keep = _keep_float(_weight_const_names(mlmodel), keep_fp)
    config = OptimizationConfig(
        global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel"),
        op_name_configs={name: None for name in keep},
    )
    try:
        with _quiet_conversion():
            return linear_quantize_weights(mlmodel, config)
    except Exception as exc:
        raise ExportError(f"coreml: int8 weight quantization with coremltools {ct.__version__} failed: {exc}") from exc


def export_coreml(ctx: ExportContext, precision: str) -> Path:
    """`coreml/model_<precision>.mlpackage` inside ctx.stage, checked statically."""
    if precision not in PRECISIONS:
        raise InputError(f"coreml supports {', '.join(PRECISIONS)}, not {precision}")
    _coremltools()
    contract = float_contract(ctx.contract)
    traced, _ = trace_student(ctx.module, contract, "coreml")
    mlmodel = _convert(traced, contract, precision)
    if precision == "int8":
        mlmodel = _quantize_weights_int8(mlmodel, ctx.keep_fp)
    metadata = {**ctx.metadata, **contract.to_metadata(), "edgefkd.precision": precision}
    for key, value in metadata.items():
        mlmodel.user_defined_metadata[key] = value
    mlmodel.short_description = f"{metadata.get('edgefkd.model', 'face')} embeddings ({precision}), edgefkd"
    out = ctx.stage / "coreml" / f"model_{precision}.mlpackage"
    out.parent.mkdir(parents=True, exist_ok=True)
    # A package is a directory: save beside the target and rename it into place whole.
    scratch = Path(tempfile.mkdtemp(prefix=".coreml-", dir=out.parent))
    try:
        staged = scratch / out.name
        mlmodel.save(str(staged))
        check_package(staged, contract, precision, int(metadata.get("edgefkd.embedding_size", 0)) or None)
        os.replace(staged, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def load_spec(path: str | Path) -> Any:
    """The package's protobuf spec (no compilation, so it works on Linux); InputError if unreadable."""
    path = Path(path)
    if not path.is_dir() or not (path / "Manifest.json").is_file():
        raise InputError(f"{path} is not a Core ML .mlpackage (a directory with a Manifest.json)")
    ct = _coremltools()
    try:
        return ct.utils.load_spec(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path} is not a readable Core ML package: {first[:200]}") from None


def read_metadata(path: Path) -> dict[str, str]:
    spec = load_spec(path)
    return {k: v for k, v in spec.description.metadata.userDefined.items() if k.startswith(METADATA_PREFIX)}


def _program_op_types(path: Path) -> set[str]:
    """Op types of the package's ML Program, read from its spec."""
    spec = load_spec(path)
    types: set[str] = set()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            types.update(op.type for op in block.operations)
    return types


def check_package(path: Path, contract: PreprocessContract, precision: str, embedding_size: int | None) -> None:
    """Static validation of an exported package (Core ML cannot predict here); ValidationError if wrong."""
    spec = load_spec(path)
    problems = []
    if spec.WhichOneof("Type") != "mlProgram":
        problems.append(f"model type {spec.WhichOneof('Type')}, expected mlProgram")
    h, w = contract.input_size
    inputs, outputs = list(spec.description.input), list(spec.description.output)
    float32 = _coremltools().proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
        problems.append(f"inputs {[i.name for i in inputs]}, expected [{INPUT_NAME!r}]")
    elif list(inputs[0].type.multiArrayType.shape) != [1, 3, h, w] or inputs[0].type.multiArrayType.dataType != float32:
        problems.append(f"input shape {list(inputs[0].type.multiArrayType.shape)}, expected float32 [1, 3, {h}, {w}]")
    out_shape = list(outputs[0].type.multiArrayType.shape) if len(outputs) == 1 else []
    if len(outputs) != 1 or outputs[0].name != OUTPUT_NAME or len(out_shape) != 2 or out_shape[0] != 1 \
            or outputs[0].type.multiArrayType.dataType != float32:
        problems.append(f"outputs {[(o.name, list(o.type.multiArrayType.shape)) for o in outputs]}, expected {OUTPUT_NAME!r} [1, D]")
    elif embedding_size and out_shape[1] != embedding_size:
        problems.append(f"embedding size {out_shape[1]}, PyTorch gives {embedding_size}")
    meta = {k: v for k, v in spec.description.metadata.userDefined.items() if k.startswith(METADATA_PREFIX)}
    if PreprocessContract.from_metadata(meta) != contract or meta.get(METADATA_PREFIX + "precision") != precision:
        problems.append("its metadata does not carry the contract and precision it was exported with")
    op_types = _program_op_types(path)
    if precision == "int8" and not op_types & set(INT8_WEIGHT_OPS):
        problems.append("no int8 weights in the program")
    if precision == "fp32" and "cast" in op_types:
        problems.append("fp32 program casts to fp16")
    if problems:
        raise ValidationError(f"{path.name}: {'; '.join(problems)}")


class CoreMLRunner(Runner):
    """MLModel.predict on macOS. `compute_units` defaults to CPU_ONLY for fp32 parity work, ALL otherwise."""

    backend = "coreml"
    #: the exported input is fixed at batch 1
    max_batch = 1

    def __init__(self, path: str | Path, contract: PreprocessContract, precision: str = "fp32",
                 compute_units: str | None = None, name: str | None = None, **_other_backend_options: Any) -> None:
        super().__init__(name or Path(path).name, contract, precision)
        self.path = Path(path)
        self.compute_units = compute_units or ("CPU_ONLY" if precision == "fp32" else "ALL")
        self.model: Any = None

    def _activate(self) -> None:
        reason = available()
        if reason:
            raise BackendUnavailable(f"{self.path}: {reason}")
        ct = _coremltools()
        spec = load_spec(self.path)
        self.input_name = spec.description.input[0].name
        self.output_name = spec.description.output[0].name
        self.batch_limit = int(spec.description.input[0].type.multiArrayType.shape[0]) or 1
        try:
            self.model = ct.models.MLModel(str(self.path), compute_units=ct.ComputeUnit[self.compute_units])
        except Exception as exc:
            raise InputError(f"Core ML cannot load {self.path}: {str(exc).splitlines()[0][:200]}") from None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        out = []
        for start in range(0, len(batch), self.batch_limit):
            chunk = batch[start : start + self.batch_limit]
            result = self.model.predict({self.input_name: chunk})[self.output_name]
            out.append(np.asarray(result, dtype=np.float32).reshape(len(chunk), -1))
        return np.concatenate(out)

    def _deactivate(self) -> None:
        self.model = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "coremltools": _coremltools().__version__, "compute_units": self.compute_units}


FORMAT = Format(
    name="coreml",
    title="Core ML (ML Program)",
    suffixes=(".mlpackage",),
    precisions=PRECISIONS,
    source="torch",
    extra="coreml",
    export=export_coreml,
    read_metadata=read_metadata,
    runner=CoreMLRunner,
    available=available,
    runtime="coreml",
    requires=("coremltools",),
)
