"""CLI command(s) for calib. Heavy imports go inside the command functions."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app (filled in by the calib work)."""
