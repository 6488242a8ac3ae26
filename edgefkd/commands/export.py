"""`edgefkd export` and `edgefkd list-models`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add export and list-models (filled in by the export work)."""
