"""benchmark-latency results: rows, the merge with a verify-parity report, and the
benchmark.json / benchmark.csv / benchmark.md outputs.

benchmark.json schema:
{"host": {...host.host_info()},
 "settings": {"batch_sizes", "warmup", "iters", "duration_s", "threads", "device", "ov_hint",
              "interleave", "inputs", "memory"},
 "parity_report": "<path>" | null,
 "warnings": ["..."],
 "rows": [{"artifact", "backend", "precision", "batch",
           "latency_ms": {"mean", "p50", "p90", "p99", "min", "max", "std"} | null,
           "throughput_ips", "first_inference_ms", "peak_rss_mb", "bytes", "speedup_vs_torch",
           "status": "ok|skipped|error", "reason", "path", "inference_precision", "mode",
           "timer", "samples", "cv", "model_rss_mb",
           "parity": {"accuracy", "cosine_p1", "passed", "verdict"} | null}]}
A skipped or failed artifact is one row (batch null) with its reason and null figures.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import InputError
from ..fileio import check_replaceable_dir
from ..fileio import staged_directory
from .stats import LatencyStats, noisy_rows_warning

REPORT_FILES = ("benchmark.json", "benchmark.csv", "benchmark.md", "latency.png")
STATUS_OK, STATUS_SKIPPED, STATUS_ERROR = "ok", "skipped", "error"


@dataclass
class BenchRow:
    """One (artifact, batch) measurement, or one skipped/failed artifact (batch None)."""

    artifact: str
    backend: str
    precision: str
    batch: int | None
    path: str | None = None
    inference_precision: str | None = None
    latency: LatencyStats | None = None
    throughput_ips: float | None = None
    first_inference_ms: float | None = None
    peak_rss_mb: float | None = None
    model_rss_mb: float | None = None
    bytes: int | None = None
    speedup_vs_torch: float | None = None
    status: str = STATUS_OK
    reason: str | None = None
    mode: str = "sync"
    timer: str = "perf_counter_ns"
    parity: dict[str, Any] | None = None

    @property
    def measured(self) -> bool:
        return self.status == STATUS_OK and self.latency is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "backend": self.backend,
            "precision": self.precision,
            "batch": self.batch,
            "latency_ms": self.latency.to_dict() if self.latency else None,
            "throughput_ips": self.throughput_ips,
            "first_inference_ms": self.first_inference_ms,
            "peak_rss_mb": self.peak_rss_mb,
            "bytes": self.bytes,
            "speedup_vs_torch": self.speedup_vs_torch,
            "status": self.status,
            "reason": self.reason,
            "path": self.path,
            "inference_precision": self.inference_precision,
            "mode": self.mode,
            "timer": self.timer,
            "samples": self.latency.samples if self.latency else None,
            "cv": self.latency.cv if self.latency else None,
            "model_rss_mb": self.model_rss_mb,
            "parity": self.parity,
        }


@dataclass
class BenchResult:
    host: dict[str, Any]
    settings: dict[str, Any]
    rows: list[BenchRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    parity_report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "settings": self.settings,
            "parity_report": self.parity_report,
            "warnings": list(self.warnings),
            "rows": [r.to_dict() for r in sorted_rows(self.rows)],
        }


# -- derived columns -----------------------------------------------------------------------
def fill_speedups(rows: list[BenchRow]) -> None:
    """speedup_vs_torch = PyTorch p50 / row p50 at the same batch (None without a baseline)."""
    baseline = {r.batch: r.latency.p50 for r in rows if r.backend == "torch" and r.measured}
    for row in rows:
        base = baseline.get(row.batch)
        row.speedup_vs_torch = base / row.latency.p50 if base and row.measured and row.latency.p50 > 0 else None


def noise_warnings(rows: Iterable[BenchRow]) -> list[str]:
    line = noisy_rows_warning([r.to_dict() for r in rows if r.measured])
    return [line] if line else []


def sorted_rows(rows: Iterable[BenchRow]) -> list[BenchRow]:
    """Artifacts ordered by p50 at their smallest measured batch (batch 1 normally), each
    artifact's batches together in increasing order; skipped/failed artifacts last."""
    rows = list(rows)
    key_p50: dict[str, float] = {}
    for row in sorted((r for r in rows if r.measured), key=lambda r: r.batch or 0):
        key_p50.setdefault(row.artifact, row.latency.p50)  # type: ignore[union-attr]
    return sorted(rows, key=lambda r: (key_p50.get(r.artifact, math.inf), r.artifact, r.batch or 0))


# -- verify-parity merge ---------------------------------------------------------------------
def read_parity_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read parity report {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("artifacts"), list):
        raise InputError(f"{path} is not a verify-parity report (no 'artifacts' list)")
    return data


def _same_file(a: str, b: str, roots: list[Path]) -> bool:
    candidates_a = {(root / a).resolve() for root in roots} | {Path(a).resolve()}
    candidates_b = {(root / b).resolve() for root in roots} | {Path(b).resolve()}
    return bool(candidates_a & candidates_b)


def _parity_verdict(entry: dict[str, Any]) -> str | None:
    """pass / fail / inconclusive; reports from before verdicts only say passed or not."""
    if entry.get("verdict"):
        return str(entry["verdict"])
    passed = entry.get("passed")
    return None if passed is None else ("pass" if passed else "fail")


def merge_parity(rows: list[BenchRow], report: dict[str, Any], roots: list[Path]) -> int:
    """Attach accuracy / cosine p1 / pass-fail of a verify-parity report to matching rows.

    A report entry matches a row when both name the same file (paths resolved against the
    export directory and the report's folder) and, for OpenVINO, the same inference
    precision: a bf16-executed row is not the f32 run that verify-parity checked, unless the
    report says it checked bf16. The PyTorch row gets the reference's accuracy. Returns the
    number of rows that matched.
    """
    matched = 0
    for row in rows:
        if row.backend == "torch":
            reference = report.get("reference") or {}
            accuracy = (reference.get("verification") or {}).get("accuracy")
            if accuracy is not None:
                row.parity = {"accuracy": accuracy, "cosine_p1": None, "passed": None, "verdict": None}
                matched += 1
            continue
        if row.path is None:
            continue
        for entry in report["artifacts"]:
            if not isinstance(entry, dict) or "path" not in entry:
                continue
            if entry.get("inference_precision") != row.inference_precision and not (
                "inference_precision" not in entry and row.inference_precision in (None, "f32")
            ):
                continue
            if _same_file(str(entry["path"]), row.path, roots):
                row.parity = {
                    "accuracy": (entry.get("verification") or {}).get("accuracy"),
                    "cosine_p1": (entry.get("agreement") or {}).get("cosine_p1"),
                    "passed": entry.get("passed"),
                    "verdict": _parity_verdict(entry),
                }
                matched += 1
                break
    return matched


# -- text outputs ----------------------------------------------------------------------------
CSV_COLUMNS = (
    "artifact", "backend", "precision", "inference_precision", "batch", "status", "mode", "timer",
    "mean_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "std_ms", "cv", "samples",
    "throughput_ips", "first_inference_ms", "peak_rss_mb", "model_rss_mb", "bytes",
    "speedup_vs_torch", "accuracy", "cosine_p1", "parity_passed", "parity_verdict", "path", "reason",
)  # fmt: skip


def to_csv(result: BenchResult) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in sorted_rows(result.rows):
        d = row.to_dict()
        latency = d.pop("latency_ms") or {}
        parity = d.pop("parity") or {}
        flat = {k: d.get(k) for k in CSV_COLUMNS if k in d}
        flat.update({f"{k}_ms": v for k, v in latency.items()})
        flat.update(accuracy=parity.get("accuracy"), cosine_p1=parity.get("cosine_p1"), parity_passed=parity.get("passed"),
                    parity_verdict=parity.get("verdict"))
        writer.writerow({k: "" if v is None else v for k, v in flat.items()})
    return buffer.getvalue()


def _fmt(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    return f"{value:{spec}}{suffix}"


def _verdict_text(parity: dict[str, Any]) -> str:
    verdict = parity.get("verdict")
    if verdict is None:
        return _fmt(parity.get("passed"))
    return "pass" if verdict == "pass" else str(verdict).upper()


def table_columns(with_parity: bool) -> list[str]:
    cols = ["artifact", "backend", "precision", "batch", "size MB", "p50 ms", "p90 ms", "p99 ms",
            "mean±std ms", "cv", "img/s", "first ms", "peak RSS MB", "speedup"]  # fmt: skip
    return cols + (["accuracy", "cos p1", "parity"] if with_parity else [])


def table_cells(row: BenchRow, with_parity: bool) -> list[str]:
    """Display cells of one row, shared by the Markdown table and the console table."""
    precision = row.precision + (f" ({row.inference_precision})" if row.inference_precision not in (None, "f32") else "")
    size = _fmt(row.bytes / 1e6 if row.bytes else None)
    if row.measured:
        lat = row.latency
        assert lat is not None
        cells = [row.artifact, row.backend + ("/async" if row.mode == "async" else ""), precision, str(row.batch), size,
                 _fmt(lat.p50, ".3f"), _fmt(lat.p90, ".3f"), _fmt(lat.p99, ".3f"), f"{lat.mean:.3f}±{lat.std:.3f}",
                 _fmt(lat.cv, ".1%"), _fmt(row.throughput_ips, ".1f"), _fmt(row.first_inference_ms, ".1f"),
                 _fmt(row.peak_rss_mb, ".0f"), _fmt(row.speedup_vs_torch, ".2f", "x")]  # fmt: skip
    else:
        cells = [row.artifact, row.backend, precision, "-", size, f"{row.status}: {row.reason}"] + ["-"] * 8
    if with_parity:
        p = row.parity or {}
        acc = p.get("accuracy")
        cells += [_fmt(acc * 100 if acc is not None and acc <= 1 else acc, ".2f", "%"), _fmt(p.get("cosine_p1"), ".5f"),
                  _verdict_text(p)]  # fmt: skip
    return cells


def to_markdown(result: BenchResult) -> str:
    host = result.host
    with_parity = result.parity_report is not None
    libs = ", ".join(f"{k} {v}" for k, v in host.get("libraries", {}).items() if v)
    s = result.settings
    lines = [
        "# benchmark-latency",
        "",
        f"- Host: {host.get('cpu_model')} ({host.get('usable_cores')} usable cores, flags: "
        f"{', '.join(host.get('cpu_flags', [])) or '-'}), {host.get('os')}",
        f"- Libraries: {libs}",
        f"- Threads: {s.get('threads')}; device {s.get('device')}; OpenVINO hint {s.get('ov_hint')}; "
        f"warmup {s.get('warmup')}; " + (f"{s.get('duration_s')} s per measurement" if s.get("duration_s") else f"{s.get('iters')} iterations")
        + ("; artifacts interleaved round-robin" if s.get("interleave") else ""),
        f"- Inputs: {s.get('inputs')} (prepared outside the timed region)",
        f"- Memory: {s.get('memory')}",
    ]
    if result.parity_report:
        lines.append(f"- Accuracy / cosine p1 / parity from {result.parity_report}")
    lines.append("")
    cols = table_columns(with_parity)
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in sorted_rows(result.rows):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in table_cells(row, with_parity)) + " |")
    if result.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in result.warnings]
    return "\n".join(lines) + "\n"


def check_report_dir(directory: Path) -> None:
    """Refuse a report folder that holds anything but an earlier report."""
    check_replaceable_dir(directory, REPORT_FILES)


def write_report(result: BenchResult, report_dir: str | os.PathLike[str]) -> Path:
    """Write benchmark.json/.csv/.md and latency.png into `report_dir`, all or nothing."""
    from .plot import plot_latency

    report_dir = Path(report_dir)
    check_report_dir(report_dir)
    with staged_directory(report_dir, force=True) as stage:
        (stage / "benchmark.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        (stage / "benchmark.csv").write_text(to_csv(result))
        (stage / "benchmark.md").write_text(to_markdown(result))
        plot_latency(result.rows, stage / "latency.png")
    return report_dir
