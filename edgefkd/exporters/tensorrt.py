"""TensorRT engines from an export directory's validated ONNX, built where they will run.

Engines are specific to the GPU and the TensorRT version, so edgefkd builds them on the
target (`edgefkd build-engine DIR`). Where TensorRT is absent it writes a bundle under
`DIR/tensorrt/` instead: one `trtexec` script per precision and TensorRT generation, a
pre-filled sidecar per engine, a README, a static compatibility report and, for 8.6
implicit INT8, the entropy calibration cache computed here from the calibration faces.

Parts: `trt_plan` (version dispatch, pure), `trt_bundle` (jobs, scripts, sidecars),
`trt_calib_cache` (calibration caches without TensorRT), `trt_build` (the real build).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..fileio import atomic_write_json, atomic_write_text, sha256_file
from ..manifest import ArtifactEntry, Manifest
from .trt_build import build_engine, build_unavailable_reason
from .trt_bundle import (
    BUNDLE_DIR,
    DEFERRED,
    FAMILY_LABEL,
    EngineJob,
    build_engine_command,
    calibration_files,
    engine_sidecar,
    families_for_script,
    plan_jobs,
    script_name,
    script_text,
    select_sources,
    timing_cache_rel,
    trtexec_command,
)
from .trt_plan import (
    FAMILIES,
    SOURCES,
    BuildPlan,
    InputSpec,
    TensorRTOptions,
    parse_tensorrt_version,
    plan_build,
    read_input_spec,
    tensorrt_family,
)

__all__ = [
    "BUNDLE_DIR", "DEFERRED", "FAMILIES", "SOURCES", "BuildPlan", "EngineJob", "InputSpec", "TensorRTOptions",
    "build_engine", "build_engine_command", "build_unavailable_reason", "export_tensorrt", "parse_tensorrt_version",
    "plan_build", "plan_jobs", "read_input_spec", "select_sources", "tensorrt_family", "trtexec_command", "write_bundle",
]


def write_bundle(export_dir: str | Path, manifest: Manifest, precisions: Sequence[str], options: TensorRTOptions) -> list[ArtifactEntry]:
    """Write DIR/tensorrt/ (scripts, sidecars, README, compat report, calibration cache); deferred entries."""
    from .trt_compat import check_onnx, write_compat_report

    export_dir = Path(export_dir)
    jobs = plan_jobs(export_dir, manifest, precisions, options)
    bundle = export_dir / BUNDLE_DIR
    timing_rel = timing_cache_rel(export_dir, options)
    files: dict[str, str] = {}
    entries = []
    for job in jobs:
        scripts = []
        onnx_sha = sha256_file(export_dir / job.onnx.path)
        for families in families_for_script(job):
            plan = job.plans[families[0]]
            if plan.calibrator:
                files.update(calibration_files(export_dir, job, manifest, options))
            cmd = trtexec_command(plan, job.onnx.path, job.engine_rel, job.spec, options, timing_rel)
            script = script_name(job.precision, families, plan.calibrator)
            files[script] = script_text(cmd, families, [job.plans[f] for f in families], job.onnx.path, onnx_sha)
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
        "export directory and refuse a TensorRT version they were not written for); the pre-filled",
        "sidecars already carry the preprocessing contract:",
        "",
    ]
    for job, entry in zip(jobs, entries):
        lines.append(f"- **{job.precision}** from `{job.onnx.path}` → `{job.engine_rel}`")
        for script in entry.extra["trtexec"]:
            versions = ", ".join(FAMILY_LABEL[f] for f in script["tensorrt"])
            lines.append(f"  - `bash {script['script']}` — {versions}: {script['plan']['note']}")
        for family, why in job.skipped.items():
            lines.append(f"  - not for {FAMILY_LABEL[family]}: {why}")
    if any(plan.calibrator for job in jobs for plan in job.plans.values()):
        lines += ["", "Implicit INT8 reads `calib_int8_trt<version>.cache` (entropy scales computed on the export host from",
                  "the calibration faces; `calib_int8.json` records the ONNX sha256 and calibration set they belong to)."]
    batch = "/".join(str(b) for b in options.batch_range)
    lines += [
        "",
        f"Profile: batch min/opt/max {batch} (fixed-batch ONNX inputs keep their batch); workspace "
        f"{options.workspace_mib} MiB; timing cache `{timing_cache_rel(export_dir, options)}` is reused across builds.",
        "",
        "Static compatibility of the ONNX with TensorRT's ONNX parser: `compat.md` / `compat.json` — "
        + "; ".join(f"{Path(r.onnx).name}: {r.verdict}" for r in reports) + ".",
        "",
    ]
    return "\n".join(lines)


def export_tensorrt(export_dir: Path, manifest: Manifest, precisions: Sequence[str], options: TensorRTOptions) -> list[ArtifactEntry]:
    """Build engines when TensorRT and a GPU are here; otherwise write the bundle (deferred).

    Returns the manifest entries; the caller upserts them and writes the manifest.
    The bundle is always written, so the trtexec files and compat report exist either way.
    TensorRT present with no usable CUDA raises (runners.tensorrt_runner.CudaUnusable).
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
