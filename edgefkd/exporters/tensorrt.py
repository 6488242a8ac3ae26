"""TensorRT engines from an export directory's validated ONNX, built where they will run.

Engines are specific to the GPU and the TensorRT version, so edgefkd builds them on the
target (`edgefkd build-engine DIR`). Where TensorRT is absent it writes a bundle under
`DIR/tensorrt/` instead: one `trtexec` command file per precision (for TensorRT >= 10 and
for 8.6), a pre-filled sidecar per engine, a README and a static compatibility report.

Version dispatch (`plan_build`, a pure function of the version string):
- 8.6 (JetPack 6.0): explicit-batch network; FP16/INT8 builder flags; INT8 from the Q/DQ
  ONNX, or implicit INT8 with an IInt8EntropyCalibrator2 and a reusable calibration cache.
- 10.x: strongly typed network (NetworkDefinitionCreationFlag.STRONGLY_TYPED) from the
  fp32 / fp16 / Q/DQ ONNX; no calibrator. FP16 from an fp32 ONNX falls back to the
  deprecated FP16 builder flag.
- 11.x: strongly typed only (the flag is accepted and ignored); no FP16/INT8 builder
  flags, so fp16 needs an fp16 ONNX and INT8 the Q/DQ ONNX.

Every engine gets a sidecar `<engine>.json` (contract, TensorRT version, GPU, compute
capability, profile, source ONNX sha256); nothing is ever prepended to the engine file.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..contract import PreprocessContract
from ..errors import BackendUnavailable, ExportError, InputError
from ..fileio import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_file
from ..manifest import PRECISIONS, ArtifactEntry, Manifest

BUNDLE_DIR = "tensorrt"
DEFERRED = "deferred: TensorRT not installed"
TIMING_CACHE_NAME = "timing.cache"
FAMILIES = ("8.6", "10", "11")
#: Source ONNX kinds: fp32 graph, fp16 graph, explicit-quantization (Q/DQ) INT8 graph.
SOURCES = ("fp32", "fp16", "qdq")


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
        if self.calib_limit <= 0:
            raise InputError(f"calibration limit must be positive, got {self.calib_limit}")

    @property
    def batch_range(self) -> tuple[int, int, int]:
        return (self.min_batch, self.opt_batch, self.max_batch)


# -- version dispatch ---------------------------------------------------------------------


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
        }


_NEEDS_QDQ = "INT8 builds from the Q/DQ ONNX (make it with the INT8 export)"


def plan_build(family_or_version: str, precision: str, source: str, implicit_int8: bool = False, dla: bool = False) -> BuildPlan:
    """The build plan for one engine, or InputError when the combination cannot be built.

    family_or_version: '8.6'/'10'/'11' or a full version string ('10.3.0').
    source: the kind of ONNX the engine is built from ('fp32', 'fp16', 'qdq').
    """
    family = family_or_version if family_or_version in FAMILIES else tensorrt_family(family_or_version)
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if source not in SOURCES:
        raise InputError(f"unknown ONNX source kind {source!r} (choose from {', '.join(SOURCES)})")
    allowed = {"fp32": ("fp32",), "fp16": ("fp16", "fp32"), "int8": ("qdq", "fp32")}[precision]
    if source not in allowed:
        raise InputError(f"a {precision} engine cannot be built from the {source} ONNX")
    if dla and precision == "fp32":
        raise InputError("DLA runs FP16 and INT8 only: drop --dla-core for the fp32 engine")
    if implicit_int8 and (family != "8.6" or precision != "int8"):
        raise InputError(
            "implicit INT8 calibration is for TensorRT 8.6 INT8 engines only "
            "(deprecated in 10, removed in 11): build INT8 from the Q/DQ ONNX instead"
        )
    if precision == "int8" and source == "fp32" and not implicit_int8:
        raise InputError(_NEEDS_QDQ + ("; or pass --implicit-int8 with --calib on TensorRT 8.6" if family == "8.6" else ""))

    if family == "8.6":
        builder = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}[precision]
        trtexec = {"fp32": (), "fp16": ("--fp16",), "int8": ("--int8", "--fp16")}[precision]
        note = {
            "fp32": "fp32, no precision flags",
            "fp16": "FP16 builder flag (weakly typed)",
            "int8": "implicit INT8: entropy calibration, cache reused" if implicit_int8
            else "explicit INT8 from Q/DQ; INT8+FP16 flags let unquantized layers run in FP16",
        }[precision]
        return BuildPlan(family, precision, source, False, ("EXPLICIT_BATCH",), builder, implicit_int8, trtexec, note)

    if precision == "fp16" and source == "fp32":
        if family == "11":
            raise InputError(
                "TensorRT 11 has no FP16 builder flag: it builds fp16 only from an fp16 ONNX "
                "(export one, e.g. with ModelOpt AutoCast, or build fp32/int8)"
            )
        return BuildPlan(family, precision, source, False, (), ("FP16",), False, ("--fp16",),
                         "weakly typed FP16 from the fp32 ONNX (deprecated in 10.x, gone in 11): prefer an fp16 ONNX")
    note = {"fp32": "strongly typed fp32", "fp16": "strongly typed from the fp16 ONNX", "int8": "strongly typed from the Q/DQ ONNX"}[precision]
    if family == "11":
        note += " (TensorRT 11 is always strongly typed)"
    return BuildPlan(family, precision, source, True, ("STRONGLY_TYPED",), (), False, ("--stronglyTyped",), note)


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


def onnx_contract(onnx_path: str | Path, fallback: PreprocessContract) -> PreprocessContract:
    """The contract in the ONNX metadata (edgefkd.preprocess), else the manifest's."""
    from ..runners import artifact_contract

    return artifact_contract(onnx_path) or fallback


# -- what to build from ------------------------------------------------------------------


@dataclass
class EngineJob:
    """One engine to build (or to defer): its plan per TensorRT family and its files."""

    precision: str
    onnx: ArtifactEntry
    source: str
    engine_rel: str
    spec: InputSpec
    plans: dict[str, BuildPlan]
    skipped: dict[str, str]


def _source_kind(entry: ArtifactEntry) -> str:
    if entry.precision == "int8":
        return "qdq"
    return "fp16" if entry.precision == "fp16" else "fp32"


def select_sources(manifest: Manifest, precision: str, implicit_int8: bool = False) -> list[ArtifactEntry]:
    """ONNX entries to build a precision from, best first (fp16 ONNX before fp32, Q/DQ first)."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    onnx = {p: manifest.find("onnx", p)[:1] for p in PRECISIONS}
    if not onnx["fp32"] and not onnx["fp16"] and not onnx["int8"]:
        raise InputError("the export has no ONNX artifact to build TensorRT engines from; run `edgefkd export` first")
    order = {
        "fp32": onnx["fp32"],
        "fp16": onnx["fp16"] + onnx["fp32"],
        "int8": onnx["fp32"] if implicit_int8 else onnx["int8"] + onnx["fp32"],
    }[precision]
    if not order:
        raise InputError(f"the export has no ONNX to build a {precision} engine from")
    return order


def plan_jobs(export_dir: Path, manifest: Manifest, precisions: Sequence[str], options: TensorRTOptions,
              families: Sequence[str] = FAMILIES) -> list[EngineJob]:
    """For each precision: the source ONNX and a plan per TensorRT family (or why not).

    The source is the best ONNX that at least one family can build from; families that
    cannot build from it are listed in `skipped` with the reason.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(manifest.model.get("name") or "model"))
    jobs = []
    for precision in dict.fromkeys(precisions):
        errors: list[str] = []
        for entry in select_sources(manifest, precision, options.implicit_int8):
            plans, skipped = {}, {}
            for family in families:
                try:
                    plans[family] = plan_build(family, precision, _source_kind(entry), options.implicit_int8,
                                               options.dla_core is not None)
                except InputError as exc:
                    skipped[family] = str(exc)
            if plans:
                break
            errors.append(next(iter(skipped.values())))
        else:
            raise InputError(f"cannot build the {precision} engine: {errors[0]}")
        path = Manifest.artifact_file(export_dir, entry, options.verify_hash)
        engine_rel = f"{BUNDLE_DIR}/{name}_{precision}.engine"
        jobs.append(EngineJob(precision, entry, _source_kind(entry), engine_rel, read_input_spec(path), plans, skipped))
    return jobs


# -- trtexec command files -----------------------------------------------------------------


def trtexec_command(plan: BuildPlan, onnx_rel: str, engine_rel: str, spec: InputSpec, options: TensorRTOptions,
                    timing_cache_rel: str, calib_cache_rel: str | None = None) -> list[str]:
    """The trtexec argument list equivalent to `build_engine` for this plan (paths as given)."""
    cmd = ["trtexec", f"--onnx={onnx_rel}", f"--saveEngine={engine_rel}"]
    if spec.batch_dynamic:
        for flag, batch in zip(("--minShapes", "--optShapes", "--maxShapes"), options.batch_range):
            cmd.append(f"{flag}={spec.shape_arg(batch)}")
    cmd += list(plan.trtexec_flags)
    if plan.calibrator:
        if not calib_cache_rel:
            raise InputError("implicit INT8 needs a calibration cache path")
        cmd.append(f"--calib={calib_cache_rel}")
    cmd += [f"--memPoolSize=workspace:{options.workspace_mib}M", f"--timingCacheFile={timing_cache_rel}"]
    if options.dla_core is not None:
        cmd += [f"--useDLACore={options.dla_core}", "--allowGPUFallback"]
    cmd.append("--skipInference")
    return cmd


def _script_name(precision: str, families: Sequence[str], implicit: bool) -> str:
    suffix = "_trt8" if list(families) == ["8.6"] else ""
    return f"build_{precision}{'_implicit' if implicit else ''}{suffix}.sh"


_FAMILY_LABEL = {"8.6": "TensorRT 8.6 (JetPack 6.0)", "10": "TensorRT 10.x", "11": "TensorRT 11.x"}


def _script_text(cmd: list[str], family_label: str, plan: BuildPlan, onnx_rel: str) -> str:
    lines = [
        "#!/usr/bin/env bash",
        f"# edgefkd {__version__}: build the {plan.precision} engine with trtexec on the target ({family_label}).",
        f"# Source: {onnx_rel} ({plan.source} ONNX). {plan.note}".rstrip(),
        "# Prefer `edgefkd build-engine` there: it also writes the sidecar JSON and the manifest entry.",
        "set -euo pipefail",
        'cd "$(dirname "$0")/.."',
        " \\\n  ".join(shlex.quote(a) for a in cmd),
        "",
    ]
    return "\n".join(lines)


def _families_for_script(job: EngineJob) -> list[tuple[str, list[str]]]:
    """Group families whose trtexec lines are identical into one script (10 and 11 usually)."""
    groups: dict[tuple[tuple[str, ...], bool], list[str]] = {}
    for family, plan in job.plans.items():
        groups.setdefault((plan.trtexec_flags, plan.calibrator), []).append(family)
    return [(families[0], families) for families in groups.values()]


# -- sidecar -------------------------------------------------------------------------------


def engine_sidecar(job: EngineJob, export_dir: Path, manifest: Manifest, options: TensorRTOptions,
                   build: dict[str, Any] | None) -> dict[str, Any]:
    """The sidecar `<engine>.json`: the contract and how (or whether) the engine was built."""
    onnx_path = export_dir / job.onnx.path
    contract = onnx_contract(onnx_path, manifest.preprocess)
    return {
        "edgefkd_version": __version__,
        "format": "tensorrt",
        "engine": Path(job.engine_rel).name,
        "precision": job.precision,
        "preprocess": contract.to_dict(),
        "model": manifest.model.get("name"),
        "embedding_size": manifest.model.get("embedding_size"),
        "source_onnx": {"path": job.onnx.path, "sha256": sha256_file(onnx_path), "kind": job.source},
        "profile": job.spec.profile(options),
        "status": "built" if build else DEFERRED,
        "build": build,
    }


# -- the bundle (TensorRT absent) ------------------------------------------------------------


def write_bundle(export_dir: str | Path, manifest: Manifest, precisions: Sequence[str], options: TensorRTOptions) -> list[ArtifactEntry]:
    """Write DIR/tensorrt/ (command files, sidecars, README, compat report); deferred entries."""
    from .trt_compat import check_onnx, write_compat_report

    export_dir = Path(export_dir)
    jobs = plan_jobs(export_dir, manifest, precisions, options)
    bundle = export_dir / BUNDLE_DIR
    timing_rel = _timing_cache_rel(export_dir, options)
    files: dict[str, str] = {}
    entries = []
    for job in jobs:
        scripts = []
        for family, families in _families_for_script(job):
            plan = job.plans[family]
            calib_rel = f"{BUNDLE_DIR}/calib_{job.precision}.cache" if plan.calibrator else None
            cmd = trtexec_command(plan, job.onnx.path, job.engine_rel, job.spec, options, timing_rel, calib_rel)
            label = " / ".join(_FAMILY_LABEL[f] for f in families)
            script = _script_name(job.precision, families, plan.calibrator)
            files[script] = _script_text(cmd, label, plan, job.onnx.path)
            scripts.append({"script": f"{BUNDLE_DIR}/{script}", "tensorrt": families, "plan": plan.to_dict(), "trtexec": cmd})
        entries.append(ArtifactEntry(
            path=job.engine_rel, format="tensorrt", precision=job.precision,
            extra={"status": DEFERRED, "source_onnx": job.onnx.path,
                   "build_command": build_engine_command(Path("."), [job.precision], options) + "  # from inside the export directory",
                   "trtexec": scripts, "not_buildable": job.skipped},
        ))
    compat_sources = list(dict.fromkeys(job.onnx.path for job in jobs))
    reports = [check_onnx(export_dir / rel, options.batch_range) for rel in compat_sources]
    files["README.md"] = _bundle_readme(export_dir, jobs, entries, options, reports)
    # Everything is computed before anything is written: a failure leaves no partial bundle.
    bundle.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        atomic_write_text(bundle / name, text)
        if name.endswith(".sh"):
            (bundle / name).chmod(0o755)
    for job in jobs:
        engine_path = export_dir / job.engine_rel
        if not engine_path.exists():  # never overwrite the sidecar of an engine built earlier
            atomic_write_json(export_dir / (job.engine_rel + ".json"), engine_sidecar(job, export_dir, manifest, options, None))
    write_compat_report(reports, bundle, root=export_dir)
    return entries


def _timing_cache_rel(export_dir: Path, options: TensorRTOptions) -> str:
    if options.timing_cache is None:
        return f"{BUNDLE_DIR}/{TIMING_CACHE_NAME}"
    path = Path(options.timing_cache).resolve()
    return path.relative_to(export_dir.resolve()).as_posix() if path.is_relative_to(export_dir.resolve()) else str(path)


def build_engine_command(export_dir: Path, precisions: Sequence[str], options: TensorRTOptions) -> str:
    """The one line to run on the target."""
    cmd = ["edgefkd", "build-engine", str(export_dir), "--precision", ",".join(precisions)]
    if options.batch_range != (1, 8, 32):
        cmd += ["--min-batch", str(options.min_batch), "--opt-batch", str(options.opt_batch), "--max-batch", str(options.max_batch)]
    if options.workspace_mib != 1024:
        cmd += ["--workspace", str(options.workspace_mib)]
    if options.dla_core is not None:
        cmd += ["--dla-core", str(options.dla_core)]
    if options.implicit_int8:
        cmd += ["--implicit-int8"] + (["--calib", options.calib_source] if options.calib_source else [])
    return " ".join(shlex.quote(c) for c in cmd)


def _bundle_readme(export_dir: Path, jobs: list[EngineJob], entries: list[ArtifactEntry], options: TensorRTOptions,
                   reports: list[Any]) -> str:
    precisions = [j.precision for j in jobs]
    lines = [
        "# TensorRT bundle",
        "",
        "TensorRT was not installed where this export was made, so no engine was built. Engines are",
        "specific to the GPU and TensorRT version: build them on the target (Jetson or data-centre GPU)",
        "with this export directory copied there; from inside it, one line:",
        "",
        "```bash",
        build_engine_command(Path("."), precisions, options),
        "```",
        "",
        "It writes `<engine>` + `<engine>.json` (the contract and build facts) and updates manifest.json.",
        "Without edgefkd on the target, run the trtexec scripts instead (from anywhere; they cd to the",
        "export directory); the pre-filled sidecars already carry the preprocessing contract:",
        "",
    ]
    for job, entry in zip(jobs, entries):
        lines.append(f"- **{job.precision}** from `{job.onnx.path}` → `{job.engine_rel}`")
        for script in entry.extra["trtexec"]:
            versions = ", ".join(_FAMILY_LABEL[f] for f in script["tensorrt"])
            lines.append(f"  - `bash {script['script']}` — {versions}: {script['plan']['note']}")
        for family, why in job.skipped.items():
            lines.append(f"  - not for {_FAMILY_LABEL[family]}: {why}")
    batch = "/".join(str(b) for b in options.batch_range)
    lines += [
        "",
        f"Profile: batch min/opt/max {batch} (fixed-batch ONNX inputs keep their batch); workspace "
        f"{options.workspace_mib} MiB; timing cache `{_timing_cache_rel(export_dir, options)}` is reused across builds.",
        "",
        "Static compatibility of the ONNX with TensorRT's ONNX parser: `compat.md` / `compat.json` — "
        + "; ".join(f"{Path(r.onnx).name}: {r.verdict}" for r in reports) + ".",
        "",
    ]
    return "\n".join(lines)


# -- the real build (TensorRT + GPU present) ---------------------------------------------------


def build_unavailable_reason(device: int = 0) -> str | None:
    """Why engines cannot be built here (no TensorRT builder, no GPU), or None."""
    from ..runners.tensorrt_runner import CudaDevice, tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason(need_builder=True)
    if reason:
        return reason
    try:
        CudaDevice.open(device).close()
    except BackendUnavailable as exc:
        return str(exc)
    return None


def _calibration_batches(options: TensorRTOptions, contract: PreprocessContract, spec: InputSpec) -> list[Any]:
    """Prepared calibration input batches of exactly the calibration profile's batch."""
    import numpy as np

    from ..calib import load_calibration_faces

    if not options.calib_source:
        raise InputError("--implicit-int8 needs --calib SOURCE (a face folder, .bin, .npy or 'synthetic')")
    faces = load_calibration_faces(options.calib_source, contract.input_size, limit=options.calib_limit)
    batch = spec.fixed_batch or options.opt_batch
    prepared = contract.prepare(faces)
    if len(prepared) < batch:
        raise InputError(f"calibration needs at least {batch} faces, {options.calib_source} gave {len(prepared)}")
    return [np.ascontiguousarray(prepared[i : i + batch]) for i in range(0, len(prepared) - batch + 1, batch)]


def _entropy_calibrator(trt: Any, batches: list[Any], cache_path: Path, cuda: Any) -> Any:
    """An IInt8EntropyCalibrator2 over prepared batches; reads/writes `cache_path`."""

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.buffer = cuda.alloc(batches[0].nbytes) if batches else None

        def get_batch_size(self) -> int:
            return int(batches[0].shape[0]) if batches else 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.index >= len(batches):
                return None
            cuda.upload(self.buffer, batches[self.index])
            cuda.synchronize()
            self.index += 1
            return [self.buffer.ptr]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            atomic_write_bytes(cache_path, bytes(cache))

    return EntropyCalibrator()


def build_engine(export_dir: Path, job: EngineJob, manifest: Manifest, options: TensorRTOptions) -> ArtifactEntry:
    """Build one engine with the installed TensorRT; write engine + sidecar atomically."""
    import tensorrt as trt

    from ..runners.tensorrt_runner import CudaDevice

    version = trt.__version__
    family = tensorrt_family(version)
    plan = job.plans.get(family)
    if plan is None:
        raise InputError(f"cannot build the {job.precision} engine with TensorRT {version}: {job.skipped.get(family, 'no plan')}")
    onnx_path = export_dir / job.onnx.path
    engine_path = export_dir / job.engine_rel
    timing_path = export_dir / _timing_cache_rel(export_dir, options)
    calib_path = export_dir / BUNDLE_DIR / f"calib_{job.precision}.cache"
    cuda = CudaDevice.open(options.device)
    try:
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        flags = 0
        for name in plan.network_flags:
            flag = getattr(trt.NetworkDefinitionCreationFlag, name, None)
            if flag is not None:  # 11.x: strongly typed is the default; the flag may be gone
                flags |= 1 << int(flag)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ExportError(f"TensorRT {version} cannot parse {job.onnx.path}: {errors} (see tensorrt/compat.md)")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
        for name in plan.builder_flags:
            config.set_flag(getattr(trt.BuilderFlag, name))
        if job.spec.batch_dynamic:
            profile = builder.create_optimization_profile()
            profile.set_shape(job.spec.name, *(job.spec.shape(b) for b in options.batch_range))
            config.add_optimization_profile(profile)
        if plan.calibrator:
            contract = onnx_contract(onnx_path, manifest.preprocess)
            batches = [] if calib_path.is_file() else _calibration_batches(options, contract, job.spec)
            if job.spec.batch_dynamic:
                calib_profile = builder.create_optimization_profile()
                fixed = job.spec.shape(options.opt_batch)
                calib_profile.set_shape(job.spec.name, fixed, fixed, fixed)
                config.set_calibration_profile(calib_profile)
            config.int8_calibrator = _entropy_calibrator(trt, batches, calib_path, cuda)
        if options.dla_core is not None:
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = options.dla_core
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        cache = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        start = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        seconds = time.perf_counter() - start
        if serialized is None:
            raise ExportError(f"TensorRT {version} failed to build the {job.precision} engine from {job.onnx.path} (see the log above)")
        with atomic_path(engine_path) as tmp:
            tmp.write_bytes(memoryview(serialized))
        atomic_write_bytes(timing_path, bytes(memoryview(config.get_timing_cache().serialize())))
        build = {
            "tensorrt": version,
            **plan.to_dict(),
            **cuda.describe(),
            "workspace_mib": options.workspace_mib,
            "dla_core": options.dla_core,
            "timing_cache": _timing_cache_rel(export_dir, options),
            "calibration_cache": calib_path.relative_to(export_dir).as_posix() if plan.calibrator else None,
            "build_seconds": round(seconds, 2),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    finally:
        cuda.close()
    sidecar = engine_sidecar(job, export_dir, manifest, options, build)
    atomic_write_json(export_dir / (job.engine_rel + ".json"), sidecar)
    return ArtifactEntry.for_file(export_dir, engine_path, "tensorrt", job.precision, status="built",
                                  source_onnx=job.onnx.path, build=build, sidecar=job.engine_rel + ".json")


def export_tensorrt(export_dir: Path, manifest: Manifest, precisions: Sequence[str], options: TensorRTOptions) -> list[ArtifactEntry]:
    """Build engines when TensorRT and a GPU are here; otherwise write the bundle (deferred).

    Returns the manifest entries; the caller upserts them and writes the manifest.
    The bundle is always written, so the trtexec files and compat report exist either way.
    """
    export_dir = Path(export_dir)
    deferred = write_bundle(export_dir, manifest, precisions, options)
    reason = build_unavailable_reason(options.device)
    if reason:
        for entry in deferred:
            entry.extra["reason"] = reason
        return deferred
    jobs = plan_jobs(export_dir, manifest, precisions, options)
    return [build_engine(export_dir, job, manifest, options) for job in jobs]
