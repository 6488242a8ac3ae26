"""The rich console and the tables the commands print."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output (CI logs, files) would otherwise be cut at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)


def export_table(manifest: Any, title: str = "") -> Table:
    table = Table(title=f"artifacts ({title})" if title else "artifacts")
    for col, justify in (("artifact", "left"), ("format", "left"), ("precision", "left"), ("MB", "right"),
                         ("cosine min", "right"), ("cosine mean", "right"), ("max |diff|", "right"), ("status", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for a in manifest.artifacts:
        p = a.parity
        table.add_row(
            a.path, a.format, a.precision, f"{(a.bytes or 0) / 1e6:.2f}",
            f"{p['cosine_min']:.6f}" if p else "-", f"{p['cosine_mean']:.6f}" if p else "-",
            f"{p['max_abs']:.2e}" if p else "-", str(a.extra.get("status", "ok" if p else "not validated")),
        )
    return table
