"""TensorRT version dispatch: what to ask each TensorRT generation for, as pure functions.

- 8.6 (JetPack 6.0): explicit-batch network; FP16/INT8 builder flags; INT8 from the Q/DQ
  ONNX, or implicit INT8 with an entropy calibration cache computed on the export host.
- 10.x: strongly typed network from the fp32 / fp16 / Q/DQ ONNX; no calibrator. FP16 from an
  fp32 ONNX falls back to the deprecated FP16 builder flag.
- 11.x: strongly typed only; fp16 needs an fp16 ONNX and INT8 the Q/DQ ONNX.

DLA (Jetson's deep-learning accelerator) runs FP16/INT8 at one static batch only: with a
min/opt/max range every layer falls back to the GPU. 8.6's DLA cannot run explicit (Q/DQ)
INT8, and TensorRT 11.0-11.3 ship without DLA support.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..manifest import PRECISIONS

FAMILIES = ("8.6", "10", "11")
#: Source ONNX kinds: fp32 graph, fp16 graph, explicit-quantization (Q/DQ) INT8 graph.
SOURCES = ("fp32", "fp16", "qdq")
#: The first TensorRT 11 release with DLA again (11.0-11.3 have none).
TRT11_FIRST_DLA = (11, 4)


@dataclass
class TensorRTOptions:
    """Build settings shared by `export --formats tensorrt` and `build-engine`."""

    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32
    workspace_mib: int = 1024
    #: reused across builds; default DIR/tensorrt/timing.cache
    timing_cache: Path | None = None
    dla_core: int | None = None
    #: TensorRT 8.6 only: calibrate INT8 from the fp32 ONNX instead of using the Q/DQ ONNX
    implicit_int8: bool = False
    #: calibration faces for implicit INT8 (anything calib.load_calibration_faces accepts)
    calib_source: str | None = None
    calib_limit: int = 512
    device: int = 0
    #: check each source ONNX against the manifest's sha256 before building from it
    verify_hash: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise InputError(
                f"batch profile needs 1 <= min <= opt <= max, got {self.min_batch}/{self.opt_batch}/{self.max_batch}"
            )
        if self.workspace_mib <= 0:
            raise InputError(f"--workspace must be a positive number of MiB, got {self.workspace_mib}")
        if self.dla_core is not None and self.dla_core < 0:
            raise InputError(f"--dla-core must be 0 or more, got {self.dla_core}")
        if self.dla_core is not None and not self.min_batch == self.opt_batch == self.max_batch:
            raise InputError(
                "DLA runs one static batch (min = opt = max); with a range every layer falls back to the GPU: "
                f"got {self.min_batch}/{self.opt_batch}/{self.max_batch}, pass e.g. --min-batch 1 --opt-batch 1 --max-batch 1"
            )
        if self.device < 0:
            raise InputError(f"--device must be a CUDA device index (0 or more), got {self.device}")
        if self.calib_limit <= 0:
            raise InputError(f"calibration limit must be positive, got {self.calib_limit}")

    @property
    def batch_range(self) -> tuple[int, int, int]:
        return (self.min_batch, self.opt_batch, self.max_batch)


def parse_tensorrt_version(text: str) -> tuple[int, int]:
    """(major, minor) of a TensorRT version string such as '8.6.2.3' or '10.3.0'."""
    match = re.match(r"\s*(\d+)\.(\d+)", str(text))
    if not match:
        raise InputError(f"cannot read a TensorRT version from {text!r} (expected e.g. 8.6.2 or 10.3.0)")
    return int(match.group(1)), int(match.group(2))


def tensorrt_family(version: str) -> str:
    """'8.6', '10' or '11' (11 also stands for newer majors: strongly typed only)."""
    major, minor = parse_tensorrt_version(version)
    if (major, minor) < (8, 6):
        raise InputError(f"TensorRT {version} is older than 8.6, the oldest edgefkd builds with (JetPack 6.0+)")
    if major < 10:
        return "8.6"
    return "10" if major == 10 else "11"


@dataclass(frozen=True)
class BuildPlan:
    """What to ask TensorRT for one engine; names are TensorRT enum member names."""

    family: str
    precision: str
    source: str
    strongly_typed: bool
    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    calibrator: bool
    trtexec_flags: tuple[str, ...]
    note: str = ""
    #: the oldest (major, minor) of the family this plan works on (DLA on 11 needs 11.4)
    min_version: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "precision": self.precision,
            "source": self.source,
            "strongly_typed": self.strongly_typed,
            "network_flags": list(self.network_flags),
            "builder_flags": list(self.builder_flags),
            "calibrator": self.calibrator,
            "note": self.note,
            "min_version": ".".join(map(str, self.min_version)) if self.min_version else None,
        }


_NEEDS_QDQ = "INT8 builds from the Q/DQ ONNX (make it with the INT8 export)"


def _check_request(family: str, version: tuple[int, int] | None, precision: str, source: str,
                   implicit_int8: bool, dla: bool) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if source not in SOURCES:
        raise InputError(f"unknown ONNX source kind {source!r} (choose from {', '.join(SOURCES)})")
    allowed = {"fp32": ("fp32",), "fp16": ("fp16", "fp32"), "int8": ("qdq", "fp32")}[precision]
    if source not in allowed:
        raise InputError(f"a {precision} engine cannot be built from the {source} ONNX")
    if implicit_int8 and (family != "8.6" or precision != "int8"):
        raise InputError(
            "implicit INT8 calibration is for TensorRT 8.6 INT8 engines only "
            "(deprecated in 10, removed in 11): build INT8 from the Q/DQ ONNX instead"
        )
    if precision == "int8" and source == "fp32" and not implicit_int8:
        raise InputError(_NEEDS_QDQ + ("; or pass --implicit-int8 with --calib on TensorRT 8.6" if family == "8.6" else ""))
    if not dla:
        return
    if precision == "fp32":
        raise InputError("DLA runs FP16 and INT8 only: drop --dla-core for the fp32 engine")
    if family == "8.6" and source == "qdq":
        raise InputError("TensorRT 8.6's DLA cannot run explicit (Q/DQ) INT8: use --implicit-int8 --calib on 8.6, or TensorRT 10")
    if family == "11" and version is not None and version < TRT11_FIRST_DLA:
        raise InputError(f"TensorRT {version[0]}.{version[1]} has no DLA support (11.0-11.3): drop --dla-core or use 11.4+")


def plan_build(family_or_version: str, precision: str, source: str, implicit_int8: bool = False, dla: bool = False) -> BuildPlan:
    """The build plan for one engine, or InputError when the combination cannot be built.

    family_or_version: '8.6'/'10'/'11' or a full version string ('10.3.0').
    source: the kind of ONNX the engine is built from ('fp32', 'fp16', 'qdq').
    """
    if family_or_version in FAMILIES:
        family, version = family_or_version, None
    else:
        family, version = tensorrt_family(family_or_version), parse_tensorrt_version(family_or_version)
    _check_request(family, version, precision, source, implicit_int8, dla)
    min_version = TRT11_FIRST_DLA if dla and family == "11" else None
    dla_note = "; DLA (static batch, GPU fallback)" if dla else ""

    if family == "8.6":
        builder = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}[precision]
        trtexec = {"fp32": (), "fp16": ("--fp16",), "int8": ("--int8", "--fp16")}[precision]
        note = {
            "fp32": "fp32, no precision flags",
            "fp16": "FP16 builder flag (weakly typed)",
            "int8": "implicit INT8 from the entropy calibration cache computed on the export host" if implicit_int8
            else "explicit INT8 from Q/DQ; INT8+FP16 flags let unquantized layers run in FP16",
        }[precision]
        return BuildPlan(family, precision, source, False, ("EXPLICIT_BATCH",), builder, implicit_int8, trtexec, note + dla_note)

    if precision == "fp16" and source == "fp32":
        if family == "11":
            raise InputError(
                "TensorRT 11 has no FP16 builder flag: it builds fp16 only from an fp16 ONNX "
                "(export one, e.g. with ModelOpt AutoCast, or build fp32/int8)"
            )
        return BuildPlan(family, precision, source, False, (), ("FP16",), False, ("--fp16",),
                         "weakly typed FP16 from the fp32 ONNX (deprecated in 10.x, gone in 11): prefer an fp16 ONNX" + dla_note)
    note = {"fp32": "strongly typed fp32", "fp16": "strongly typed from the fp16 ONNX", "int8": "strongly typed from the Q/DQ ONNX"}[precision]
    if family == "11":
        note += " (TensorRT 11 is always strongly typed)" + ("; DLA needs 11.4 or newer" if dla else "")
    return BuildPlan(family, precision, source, True, ("STRONGLY_TYPED",), (), False, ("--stronglyTyped",),
                     note + dla_note, min_version)


# -- ONNX inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """The one input of a face model: its name, the per-sample dims, and the batch."""

    name: str
    sample_dims: tuple[int, ...]
    fixed_batch: int | None

    @property
    def batch_dynamic(self) -> bool:
        return self.fixed_batch is None

    def shape(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.sample_dims)

    def shape_arg(self, batch: int) -> str:
        return f"{self.name}:" + "x".join(str(d) for d in self.shape(batch))

    def profile(self, options: TensorRTOptions) -> dict[str, Any]:
        if not self.batch_dynamic:
            return {"input": self.name, "fixed": list(self.shape(self.fixed_batch or 1))}
        return {"input": self.name, **{k: list(self.shape(b)) for k, b in zip(("min", "opt", "max"), options.batch_range)}}


def read_input_spec(onnx_path: str | Path) -> InputSpec:
    """Input name and shape from the ONNX graph (not from guesses)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # onnx raises several kinds for a bad file
        raise InputError(f"{onnx_path} is not a readable ONNX model: {exc}") from exc
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InputError(f"{onnx_path} has {len(inputs)} inputs; a face model has exactly one")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) < 2:
        raise InputError(f"{onnx_path}: input {inputs[0].name} has rank {len(dims)}; expected (N, ...)")
    sample = []
    for d in dims[1:]:
        if d.dim_param or d.dim_value <= 0:
            raise InputError(f"{onnx_path}: input {inputs[0].name} has a dynamic non-batch dimension; only the batch may be dynamic")
        sample.append(int(d.dim_value))
    batch = dims[0]
    fixed = None if (batch.dim_param or batch.dim_value <= 0) else int(batch.dim_value)
    return InputSpec(inputs[0].name, tuple(sample), fixed)
