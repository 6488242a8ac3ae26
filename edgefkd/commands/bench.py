"""CLI command `benchmark-latency`. Heavy imports go inside the command function."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer


def _parse_batch_sizes(text: str) -> tuple[int, ...]:
    from ..errors import InputError

    try:
        sizes = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise InputError(f"--batch-sizes must look like 1,8,32, got {text!r}") from None
    if not sizes:
        raise InputError(f"--batch-sizes must look like 1,8,32, got {text!r}")
    if min(sizes) < 1:
        raise InputError(f"--batch-sizes must be positive, got {text!r}")
    from ..bench.host import check_batch_fits

    check_batch_fits(max(sizes))
    return sizes


def _parse_ov_precisions(text: str) -> tuple[str, ...]:
    from ..bench.loop import OV_PRECISIONS
    from ..errors import InputError

    values = tuple(p.strip().lower() for p in text.split(",") if p.strip())
    bad = [v for v in values if v not in OV_PRECISIONS]
    if not values or bad:
        raise InputError(f"--ov-precision takes a list of {', '.join(OV_PRECISIONS)}, got {text!r}")
    return values


def _print_table(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..bench.report import sorted_rows, table_cells, table_columns

    with_parity = result.parity_report is not None
    table = Table(title="benchmark-latency (sorted by p50 at the smallest batch)")
    for name in table_columns(with_parity):
        table.add_column(name, overflow="fold")
    not_measured = []
    for row in sorted_rows(result.rows):
        if row.measured:
            table.add_row(*table_cells(row, with_parity))
        else:
            not_measured.append(row)
    # A log file is no terminal: keep the table readable there instead of folding it to 80 columns.
    console = Console(width=max(Console().width, 200))
    console.print(table)
    for row in not_measured:
        console.print(f"{row.status}: {row.artifact} ({row.backend}): {row.reason}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def register(app: typer.Typer) -> None:
    @app.command("benchmark-latency")
    def benchmark_latency(
        sources: List[Path] = typer.Argument(..., help="An export directory (with manifest.json) or artifact files."),
        batch_sizes: str = typer.Option("1,8,32", "--batch-sizes", help="Comma-separated batch sizes."),
        threads: Optional[int] = typer.Option(None, "--threads", help="Threads per backend (default: all usable cores)."),
        warmup: int = typer.Option(10, "--warmup", help="Untimed iterations before each measurement."),
        iters: Optional[int] = typer.Option(None, "--iters", help="Timed iterations per artifact and batch (default 100)."),
        duration: Optional[float] = typer.Option(None, "--duration", help="Seconds per artifact and batch instead of --iters."),
        ov_hint: str = typer.Option("latency", "--ov-hint", help="OpenVINO performance hint: latency or throughput (async requests)."),
        ov_precision: str = typer.Option(
            "f32", "--ov-precision",
            help="OpenVINO inference precisions, one row each: f32 (what verify-parity checks), bf16, f16, default.",
        ),  # fmt: skip
        device: str = typer.Option("CPU", "--device", help="Device: CPU, or an OpenVINO device / GPU for CUDA runners."),
        interleave: bool = typer.Option(False, "--interleave", help="Round-robin the artifacts so load drift hits all equally."),
        images: Optional[Path] = typer.Option(None, "--images", help="Folder of aligned faces for real inputs (default: random)."),
        no_torch: bool = typer.Option(False, "--no-torch", help="Leave out the PyTorch eager baseline row."),
        parity_report: Optional[Path] = typer.Option(
            None, "--parity-report", help="verify-parity report.json to merge (default: <export dir>/parity/report.json)."
        ),
        report: Optional[Path] = typer.Option(None, "--report", help="Output folder (default: <export dir>/benchmark/)."),
        no_verify_hash: bool = typer.Option(False, "--no-verify-hash", help="Use manifest artifacts even if their sha256 differs (the report says so)."),
        trust_manifest: bool = typer.Option(False, "--trust-manifest", help="Let a manifest's file.py:factory / module:function arch import and run its code."),
    ) -> None:
        """Size, accuracy and latency of every artifact of an export, measured the same way."""
        from ..bench.session import BenchRequest, run_benchmark_command

        request = BenchRequest(
            sources=list(sources),
            batch_sizes=_parse_batch_sizes(batch_sizes),
            threads=threads,
            warmup=warmup,
            iters=iters,
            duration_s=duration,
            ov_hint=ov_hint.lower(),
            ov_precisions=_parse_ov_precisions(ov_precision),
            device=device,
            interleave=interleave,
            images=images,
            include_torch=not no_torch,
            parity_report=parity_report,
            report_dir=report,
            verify_hash=not no_verify_hash,
            trust_manifest=trust_manifest,
        )
        result, report_dir = run_benchmark_command(request, show_progress=True)
        _print_table(result)
        typer.echo(f"report: {report_dir}")
