"""`edgefkd list-formats`: every format export can write, and whether it runs here."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command("list-formats")(list_formats)


def format_rows() -> list[dict[str, Any]]:
    """One row per format of the table: what it is, what it makes, and what this host can do with it."""
    from ..formats import all_formats

    rows = []
    for fmt in all_formats():
        missing = fmt.missing_packages()
        reason = fmt.available()
        rows.append({
            "format": fmt.name, "title": fmt.title, "suffix": fmt.suffixes[0], "precisions": list(fmt.precisions),
            "extra": fmt.extra, "installed": not missing,
            "install": None if not missing else f"missing {', '.join(missing)}: {fmt.install_hint()}",
            "verifiable": reason is None, "reason": reason,
        })  # fmt: skip
    return rows


def list_formats(
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON instead of a table.")] = False,
) -> None:
    """List the export formats: precisions, pip extra, whether export and verification work here."""
    rows = format_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    from ..report.console import console

    table = Table(title="edgefkd formats (--formats)")
    for col in ("format", "title", "suffix", "precisions", "extra", "installed", "verifiable here"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row["format"], row["title"], row["suffix"], ",".join(row["precisions"]), row["extra"] or "-",
            "yes" if row["installed"] else escape(f"no ({row['install']})"),
            "yes" if row["verifiable"] else escape(f"no: {row['reason']}"),
        )  # fmt: skip
    console.print(table)
