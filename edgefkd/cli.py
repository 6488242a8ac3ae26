"""The `edgefkd` command line. It only turns arguments into calls.

Each command lives in edgefkd/commands/<name>.py and imports its heavy libraries inside
the command body, so `edgefkd --help` never imports torch, onnx or openvino.
Errors: every EdgeFKDError (and bad CLI usage) becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import sys

import typer

from .commands import bench as _bench
from .commands import calib as _calib
from .commands import export as _export
from .commands import formats as _formats
from .commands import tensorrt as _tensorrt
from .commands import verify as _verify

app = typer.Typer(
    name="edgefkd",
    help="Export distilled face-recognition students to edge formats (see list-formats) and prove parity.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_export.register(app)
_formats.register(app)
_verify.register(app)
_calib.register(app)
_tensorrt.register(app)
_bench.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning EdgeFKDError into one line and exit code 2.

    Typer's standalone mode already reports usage errors in one block with exit code 2;
    commands signal their own exit codes (e.g. verify-parity's 1 for a failed gate)
    with typer.Exit.
    """
    from .errors import EdgeFKDError

    try:
        app(args=argv, prog_name="edgefkd")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except EdgeFKDError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    return 0




def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
