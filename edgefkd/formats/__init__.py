"""The table of deployment formats: one module per format, in export order.

Everything that needs to know about formats asks this table: `export --formats` (which
names exist, which precisions each takes), `open_runner` (which format a file is),
verify-parity and benchmark-latency (through `runnable_reason`, the one "can this manifest
entry run here?" rule) and `edgefkd list-formats`.

A module listed here that is not present in this checkout is skipped, so formats can be
added (or left out of a slim install) one line at a time. Loading the table imports only
the small declaration modules, never a converter or a runtime.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InputError
from .base import ExportContext, Format

#: Modules under edgefkd/formats/, in the order export runs them (and list-formats shows them).
FORMAT_MODULES: tuple[str, ...] = (
    "onnx",
    "ort",
    "openvino",
    "tensorrt",
    "litert",
    "executorch",
    "ncnn",
    "coreml",
)

#: Manifest statuses of an artifact that exists and may be run: a plain export ("ok" or no
#: status) or an engine built on this kind of machine ("built").
RUNNABLE_STATUSES = ("", "ok", "built")


@lru_cache(maxsize=1)
def _table() -> tuple[Format, ...]:
    table = []
    for name in FORMAT_MODULES:
        qualified = f"{__name__}.{name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified:  # the module itself is absent from this checkout
                continue
            raise
        table.append(module.FORMAT)
    return tuple(table)


def all_formats() -> tuple[Format, ...]:
    """Every format in this checkout, in export order."""
    return _table()


def format_names() -> list[str]:
    return [f.name for f in _table()]


def get_format(name: str) -> Format:
    for fmt in _table():
        if fmt.name == name:
            return fmt
    raise InputError(f"unknown format {name!r}; choose from {', '.join(format_names())}")


def format_for_path(path: str | Path) -> Format:
    """The format of an artifact file, from its suffix."""
    for fmt in _table():
        if fmt.matches(path):
            return fmt
    suffixes = ", ".join(s for f in _table() for s in f.suffixes)
    raise InputError(f"{path}: unknown artifact type {Path(path).suffix.lower()!r} (expected one of {suffixes})")


def available(name: str) -> str | None:
    """None when format `name` can run here, else why not."""
    return get_format(name).available()


def artifact_file(export_dir: Path, entry: Any) -> Path:
    """Where a manifest entry's file is. The one place an entry's path is resolved, so that
    checks on it (containment, checksum) apply to every command that runs artifacts.
    Containment here; the checksum in Manifest.artifact_file, where an entry is opened."""
    from ..manifest import Manifest

    return Manifest.contained_path(export_dir, entry)


def runnable_reason(export_dir: Path, entry: Any) -> str | None:
    """None when the manifest entry can run here, else the reason it cannot.

    The one rule verify-parity and benchmark-latency share: a known format, a runnable
    manifest status (see RUNNABLE_STATUSES), the file present, the format's runtime here.
    """
    names = format_names()
    if entry.format not in names:
        return f"unknown artifact format {entry.format!r} (this edgefkd knows {', '.join(names)})"
    status = str(entry.extra.get("status") or "")
    if status not in RUNNABLE_STATUSES:
        return f"manifest status: {status}"
    if not artifact_file(export_dir, entry).exists():
        return f"artifact file missing: {entry.path}"
    return get_format(entry.format).available()


__all__ = [
    "ExportContext", "Format", "FORMAT_MODULES", "RUNNABLE_STATUSES", "all_formats", "format_names", "get_format",
    "format_for_path", "available", "artifact_file", "runnable_reason",
]  # fmt: skip
