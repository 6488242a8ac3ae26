"""verify-parity on IJB templates (`--ijb`) and 1:N search (`--gallery/--probes`).

Called by the verify-parity command when one of those options is given; the model
options (targets, --reference, --teacher, ...) are the pair mode's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TemplateRequest:
    ijb: Path | None
    ijb_set: str
    gallery: Path | None
    probes: Path | None
    images_root: Path | None
    engine: str
    ray_address: str | None
    workers: int | None
    embedding_dtype: str
    detector_weighting: bool
    max_tar_drop: float
    max_rank1_drop: float


def run_template_checks(request: TemplateRequest, resolved: Any, teacher: Any, report: Path | None, flip: bool,
                        batch_size: int, bootstrap: int, min_cosine: float, max_teacher_drop: float) -> int:
    """Embed, judge, write the report, print the table; the exit code (verdict.exit_code)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ..errors import InputError
    from ..verify.engine import EngineOptions
    from ..verify.identification import read_identity_csv
    from ..verify.ijb import read_ijb
    from ..verify.report import check_report_dir
    from ..verify.templates import TemplateGates, TemplateOptions, run_templates
    from ..verify.templates_report import summary_rows, write_templates_report
    from ..verify.verdict import exit_code

    if (request.gallery is None) != (request.probes is None):
        raise InputError("--gallery and --probes go together")
    engine = EngineOptions(request.engine, request.workers, request.ray_address, batch_size, flip=flip,
                           storage_dtype=request.embedding_dtype)
    engine.check()
    if engine.engine == "ray":
        from ..verify.ray_engine import _import_ray

        _import_ray()
    ijb = read_ijb(request.ijb, request.ijb_set) if request.ijb else None
    gallery = read_identity_csv(request.gallery, request.images_root, "gallery") if request.gallery else None
    probes = read_identity_csv(request.probes, request.images_root, "probe") if request.probes else None
    report_dir = report or resolved.default_report_dir.parent / "templates"
    check_report_dir(report_dir)
    options = TemplateOptions(engine, request.detector_weighting, bootstrap,
                              TemplateGates(min_cosine, request.max_tar_drop, max_teacher_drop, request.max_rank1_drop))
    models = 1 + len(resolved.artifacts) + (1 if teacher else 0)
    total = (len(ijb.items) * models if ijb else 0) + (
        len(gallery.items) + len(probes.items) * models if gallery and probes else 0)
    with Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("faces x models"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("faces", total=total)
        result = run_templates(resolved, teacher, ijb, gallery, probes, options, lambda n: progress.advance(task, n))
    write_templates_report(result, report_dir)
    header, rows = summary_rows(result.report)
    table = Table(title="verify-parity: " + " + ".join(
        x for x in (f"{request.ijb_set.upper()} templates" if ijb else "", "1:N search" if gallery else "") if x))
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row, style="red" if row[-1] == "FAIL" else ("yellow" if row[-1] != "PASS" and not row[-1].startswith(("reference", "baseline")) else None))
    out = Console(width=None if sys.stdout.isatty() else 200)
    out.print(table)
    out.print(f"{result.report['verdict'].upper()}: report in {report_dir}")
    return exit_code([a["verdict"] for a in result.report["artifacts"] if a["verdict"]] or ["fail"])
