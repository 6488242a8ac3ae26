"""The TensorRT bundle written where TensorRT is absent: trtexec scripts, sidecars, README.

Every value that goes into a generated script (paths, tensor names) is refused if it holds a
control character and is shell-quoted, so a crafted manifest or ONNX cannot inject commands.
Each script checks the TensorRT version trtexec reports before building, so a script meant
for 8.6 never runs on 10.x (and implicit INT8 picks the calibration cache of that release).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..contract import PreprocessContract
from ..errors import InputError
from ..fileio import sha256_file
from ..manifest import PRECISIONS, ArtifactEntry, Manifest
from . import trt_calib_cache as calib_cache
from .trt_plan import FAMILIES, BuildPlan, InputSpec, TensorRTOptions, plan_build, read_input_spec

BUNDLE_DIR = "tensorrt"
DEFERRED = "deferred: TensorRT not installed"
TIMING_CACHE_NAME = "timing.cache"
FAMILY_LABEL = {"8.6": "TensorRT 8.6 (JetPack 6.0)", "10": "TensorRT 10.x", "11": "TensorRT 11.x"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def script_safe(value: str, what: str) -> str:
    """`value` unchanged, or InputError when it holds a control character (newline, escape...)."""
    if _CONTROL.search(value):
        raise InputError(f"{what} {value!r} contains a control character; refusing to write it into a shell script")
    return value


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


def source_kind(entry: ArtifactEntry) -> str:
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
    """For each precision: the source ONNX and a plan per TensorRT family (or why not)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(manifest.model.get("name") or "model"))
    jobs = []
    for precision in dict.fromkeys(precisions):
        errors: list[str] = []
        for entry in select_sources(manifest, precision, options.implicit_int8):
            plans, skipped = {}, {}
            for family in families:
                try:
                    plans[family] = plan_build(family, precision, source_kind(entry), options.implicit_int8,
                                               options.dla_core is not None)
                except InputError as exc:
                    skipped[family] = str(exc)
            if plans:
                break
            errors.append(next(iter(skipped.values())))
        else:
            raise InputError(f"cannot build the {precision} engine: {errors[0]}")
        script_safe(entry.path, "ONNX path")
        path = Manifest.artifact_file(export_dir, entry, options.verify_hash)
        engine_rel = f"{BUNDLE_DIR}/{name}_{precision}.engine"
        spec = read_input_spec(path)
        script_safe(spec.name, "ONNX input name")
        jobs.append(EngineJob(precision, entry, source_kind(entry), engine_rel, spec, plans, skipped))
    return jobs


# -- trtexec command files -----------------------------------------------------------------


def trtexec_command(plan: BuildPlan, onnx_rel: str, engine_rel: str, spec: InputSpec, options: TensorRTOptions,
                    timing_cache_rel: str) -> list[str]:
    """The trtexec argument list equivalent to `build_engine` for this plan (paths as given).

    Implicit INT8 adds `--calib=<the cache of the running release>`, which the script fills in.
    """
    cmd = ["trtexec", f"--onnx={onnx_rel}", f"--saveEngine={engine_rel}"]
    if spec.batch_dynamic:
        for flag, batch in zip(("--minShapes", "--optShapes", "--maxShapes"), options.batch_range):
            cmd.append(f"{flag}={spec.shape_arg(batch)}")
    cmd += list(plan.trtexec_flags)
    cmd += [f"--memPoolSize=workspace:{options.workspace_mib}M", f"--timingCacheFile={timing_cache_rel}"]
    if options.dla_core is not None:
        cmd += [f"--useDLACore={options.dla_core}", "--allowGPUFallback"]
    cmd.append("--skipInference")
    return [script_safe(arg, "trtexec argument") for arg in cmd]


def script_name(precision: str, families: Sequence[str], implicit: bool) -> str:
    suffix = "_trt8" if list(families) == ["8.6"] else ""
    return f"build_{precision}{'_implicit' if implicit else ''}{suffix}.sh"


_VERSION_GUARD = r"""v=$(trtexec --help 2>&1 | sed -n 's/.*\[TensorRT v\([0-9][0-9]*\)\].*/\1/p' | head -n 1 || true)
if [ -z "$v" ]; then echo "error: cannot read TensorRT's version from 'trtexec --help'" >&2; exit 2; fi
if [ "$v" -lt 10000 ]; then major=$((v / 1000)); minor=$((v / 100 % 10)); else major=$((v / 10000)); minor=$((v / 100 % 100)); fi
case "$major.$minor" in 8.6) family=8.6 ;; 10.*) family=10 ;; 8.*|9.*|[0-7].*) family=old ;; *) family=11 ;; esac"""


def _guard_lines(families: Sequence[str], plans: Sequence[BuildPlan], label: str) -> list[str]:
    allowed = " ".join(families)
    lines = [_VERSION_GUARD,
             f'case " {allowed} " in *" $family "*) ;; *) echo "error: this script is for {label}; trtexec is TensorRT $major.$minor" >&2; exit 2 ;; esac']
    for major, minor in sorted({p.min_version for p in plans if p.min_version}):
        lines.append(f'if [ "$major" -eq {major} ] && [ "$minor" -lt {minor} ]; then '
                     f'echo "error: TensorRT $major.$minor has no DLA; this engine needs {major}.{minor} or newer" >&2; exit 2; fi')
    return lines


def _calib_lines(onnx_rel: str, onnx_sha256: str) -> list[str]:
    """Pick the cache of the running 8.6 release; refuse it if the ONNX is not the one it was made for."""
    onnx_q = shlex.quote(onnx_rel)
    return [
        f'calib="{BUNDLE_DIR}/calib_int8_trt${{v}}.cache"',
        'if [ ! -f "$calib" ]; then echo "error: no calibration cache for TensorRT $v ($calib); run edgefkd build-engine --implicit-int8 --calib FACES" >&2; exit 2; fi',
        f'if ! echo {onnx_sha256}"  "{onnx_q} | sha256sum -c --status; then '
        f'echo "error: "{onnx_q}" changed since the calibration cache was computed; recompute it" >&2; exit 2; fi',
    ]


def script_text(cmd: list[str], families: Sequence[str], plans: Sequence[BuildPlan], onnx_rel: str, onnx_sha256: str) -> str:
    """The script for `families` (their plans share one trtexec line); plans[0] describes it."""
    plan = plans[0]
    label = " / ".join(FAMILY_LABEL[f] for f in families)
    command = " \\\n  ".join(shlex.quote(a) for a in cmd)
    lines = [
        "#!/usr/bin/env bash",
        f"# edgefkd {__version__}: build the {plan.precision} engine with trtexec on the target ({label}).",
        f"# Source: {shlex.quote(script_safe(onnx_rel, 'ONNX path'))} ({plan.source} ONNX). {plan.note}".rstrip(),
        "# Prefer `edgefkd build-engine` there: it also writes the sidecar JSON and the manifest entry.",
        "set -euo pipefail",
        'cd "$(dirname "$0")/.."',
        *_guard_lines(families, plans, label),
    ]
    if plan.calibrator:
        lines += _calib_lines(onnx_rel, onnx_sha256)
        command += ' \\\n  --calib="$calib"'
    return "\n".join(lines + [command, ""])


def families_for_script(job: EngineJob) -> list[list[str]]:
    """Group families whose trtexec lines are identical into one script (10 and 11 usually)."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for family, plan in job.plans.items():
        groups.setdefault((plan.trtexec_flags, plan.calibrator), []).append(family)
    return list(groups.values())


def timing_cache_rel(export_dir: Path, options: TensorRTOptions) -> str:
    if options.timing_cache is None:
        return f"{BUNDLE_DIR}/{TIMING_CACHE_NAME}"
    path = Path(options.timing_cache).resolve()
    rel = path.relative_to(export_dir.resolve()).as_posix() if path.is_relative_to(export_dir.resolve()) else str(path)
    return script_safe(rel, "timing cache path")


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
        cmd += ["--implicit-int8"]
    return " ".join(shlex.quote(c) for c in cmd)


# -- sidecar -------------------------------------------------------------------------------


def onnx_contract(onnx_path: str | Path, fallback: PreprocessContract) -> PreprocessContract:
    """The contract in the ONNX metadata (edgefkd.preprocess), else the manifest's."""
    from ..runners import artifact_contract

    return artifact_contract(onnx_path) or fallback


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
        "dla_core": options.dla_core,
        "status": "built" if build else DEFERRED,
        "build": build,
    }


# -- calibration cache for implicit INT8 -------------------------------------------------------


def calibration_files(export_dir: Path, job: EngineJob, manifest: Manifest, options: TensorRTOptions,
                      log: Any = print) -> dict[str, str]:
    """The calibration cache files for an implicit-INT8 job ({} when the stored one is current).

    Computed from --calib faces on this host; without --calib a current stored cache is kept
    and a stale or missing one is refused.
    """
    from ..calib import load_calibration_faces

    bundle, onnx_path = export_dir / BUNDLE_DIR, export_dir / job.onnx.path
    if not options.calib_source:
        calib_cache.usable_scales(bundle, onnx_path)  # raises when missing or stale
        return {}
    contract = onnx_contract(onnx_path, manifest.preprocess)
    faces = load_calibration_faces(options.calib_source, contract.input_size, limit=options.calib_limit)
    key = calib_cache.CalibrationKey(sha256_file(onnx_path), calib_cache.faces_fingerprint(faces))
    record = calib_cache.read_key_file(bundle) if (bundle / calib_cache.KEY_FILE).is_file() else None
    if record is not None and calib_cache.stale_reason(record, onnx_path, key.calibration_sha256) is None:
        return {}
    if record is not None:
        log(f"recomputing the stale calibration cache: {calib_cache.stale_reason(record, onnx_path, key.calibration_sha256)}")
    scales = calib_cache.compute_scales(onnx_path, faces, contract)
    return calib_cache.cache_files(key, scales, job.onnx.path, str(options.calib_source), len(faces))
