"""benchmark-latency end to end: sources -> targets -> measurements -> parity merge -> report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..manifest import MANIFEST_NAME
from .loop import (
    BenchSettings,
    BenchTarget,
    default_image_files,
    progress_total,
    run_benchmark,
    targets_from_files,
    targets_from_manifest,
)
from .report import BenchResult, merge_parity, read_parity_report, write_report

PARITY_REPORT = Path("parity") / "report.json"


@dataclass
class BenchRequest:
    sources: Sequence[str | os.PathLike[str]]
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    threads: int | None = None
    warmup: int = 10
    iters: int | None = None  # None with no duration: 100
    duration_s: float | None = None
    ov_hint: str = "latency"
    ov_precisions: tuple[str, ...] = ("f32",)
    device: str = "CPU"
    interleave: bool = False
    images: str | os.PathLike[str] | None = None
    include_torch: bool = True
    parity_report: str | os.PathLike[str] | None = None
    report_dir: str | os.PathLike[str] | None = None
    extra_targets: list[BenchTarget] = field(default_factory=list)
    verify_hash: bool = True
    trust_manifest: bool = False


def resolve_targets(request: BenchRequest) -> tuple[list[BenchTarget], Path | None]:
    """Targets for the sources, and the export directory when one was given."""
    sources = [Path(s) for s in request.sources]
    if not sources:
        raise InputError("nothing to benchmark: give an export directory or artifact files")
    dirs = [s for s in sources if s.is_dir()]
    if dirs:
        if len(sources) != 1:
            raise InputError("give one export directory, or artifact files, not both")
        export_dir = dirs[0]
        if not (export_dir / MANIFEST_NAME).is_file():
            raise InputError(f"{export_dir} has no {MANIFEST_NAME}: is it an edgefkd export directory?")
        targets = targets_from_manifest(
            export_dir, request.ov_precisions, request.include_torch, request.verify_hash, request.trust_manifest
        )
        return targets, export_dir
    missing = [s for s in sources if not s.exists()]
    if missing:
        raise InputError(f"not found: {missing[0]}")
    return targets_from_files(sources, request.ov_precisions), None


def run_benchmark_command(request: BenchRequest, show_progress: bool = False) -> tuple[BenchResult, Path]:
    """Measure, merge the parity report when there is one, and write the report folder.

    A run that measured nothing raises BackendError and leaves an earlier report as it was.
    """
    result, report_dir = measure_request(request, show_progress)
    check_something_measured(result)
    write_report(result, report_dir)
    return result, report_dir


def measure_request(request: BenchRequest, show_progress: bool = False) -> tuple[BenchResult, Path]:
    """Every row of the request (measured, skipped or failed) and where its report goes."""
    targets, export_dir = resolve_targets(request)
    targets += request.extra_targets
    base_dir = export_dir if export_dir is not None else Path(request.sources[0]).resolve().parent
    report_dir = Path(request.report_dir) if request.report_dir is not None else base_dir / "benchmark"
    parity_path = Path(request.parity_report) if request.parity_report is not None else base_dir / PARITY_REPORT
    if request.parity_report is not None and not parity_path.is_file():
        raise InputError(f"parity report not found: {parity_path}")
    parity = read_parity_report(parity_path) if parity_path.is_file() else None
    settings = BenchSettings(
        batch_sizes=request.batch_sizes,
        warmup=request.warmup,
        iters=request.iters if request.iters is not None or request.duration_s is not None else 100,
        duration_s=request.duration_s,
        threads=request.threads,
        device=request.device,
        ov_hint=request.ov_hint,
        interleave=request.interleave,
        images=default_image_files(request.images, max(request.batch_sizes)),
    )
    # Fail on an unusable report folder before spending minutes measuring.
    from .report import check_report_dir

    check_report_dir(report_dir)
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
        ) as bar:
            task = bar.add_task("benchmark", total=progress_total(targets, settings))
            result = run_benchmark(
                targets, settings, lambda text, advance: bar.update(task, description=text, advance=advance)
            )
    else:
        result = run_benchmark(targets, settings)
    if parity is not None:
        matched = merge_parity(result.rows, parity, [base_dir.resolve(), parity_path.resolve().parent])
        result.parity_report = str(parity_path)
        if not matched:
            result.warnings.append(f"no artifact of {parity_path} matched a benchmarked artifact")
    if not request.verify_hash and export_dir is not None:
        result.warnings.append("artifact sha256 hashes were not checked against the manifest (--no-verify-hash)")
    return result, report_dir


def check_something_measured(result: BenchResult) -> None:
    """A run that measured nothing is an error, and must not replace an earlier good report."""
    from ..errors import BackendError

    if result.rows and not any(row.measured for row in result.rows):
        reasons = list(dict.fromkeys(
            f"{row.artifact}: {row.status} ({' '.join(str(row.reason).split())[:160]})" for row in result.rows
        ))
        more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        raise BackendError(f"nothing could be measured, no report written: {'; '.join(reasons[:3])}{more}")
