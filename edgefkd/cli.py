"""The `edgefkd` command line. It only turns arguments into calls.

Each command lives in edgefkd/commands/<name>.py and imports its heavy libraries inside
the command body, so `edgefkd --help` never imports torch, onnx or openvino.
Errors: every failure becomes one `error:` line on stderr; see `main` for the exit codes.
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


#: set by the global --debug option: print the whole chain of causes of an error
_DEBUG = {"on": False}


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="On an error, print the full chain of causes (tracebacks)."),
) -> None:
    """Export distilled face-recognition students to ONNX / OpenVINO / TensorRT and prove parity."""
    _DEBUG["on"] = debug


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _report(exc: BaseException, message: str, code: int, debug: bool) -> int:
    import traceback

    if debug:
        traceback.print_exception(exc)
    typer.echo(f"error: {_one_line(message)}", err=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point: every failure becomes one `error:` line on stderr and an exit code.

    2: bad input (EdgeFKDError, a usage error, a file or folder the OS refuses);
    4: a backend failed (BackendError, or any other exception a library raised);
    1 / 3: verify-parity's fail / inconclusive verdict (commands raise typer.Exit); 130: interrupted.
    `--debug` (before the command) prints the chain of causes first.
    """
    try:  # typer vendors its own click since 0.2x; its exceptions are not click's
        from typer._click import exceptions as click_exceptions
    except ImportError:  # pragma: no cover - older typer on plain click
        from click import exceptions as click_exceptions

    from .errors import BackendError, EdgeFKDError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args[: next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))]
    _DEBUG["on"] = debug
    try:
        result = app(args=args, prog_name="edgefkd", standalone_mode=False)
    except click_exceptions.ClickException as exc:  # usage errors: unknown option, bad value, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command: its help, as before
            typer.echo(exc.format_message(), err=True)
            return 2
        return _report(exc, exc.format_message(), 2, debug)
    except typer.Abort:
        typer.echo("interrupted", err=True)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except EdgeFKDError as exc:
        return _report(exc, str(exc), exc.exit_code, debug)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except OSError as exc:  # the OS refused a path: a folder that is a file, read-only, full...
        where = f": {exc.filename}" if exc.filename else ""
        return _report(exc, f"{exc.strerror or exc}{where}", 2, debug)
    except MemoryError as exc:
        return _report(exc, "out of memory: use a smaller batch size or fewer images", 2, debug)
    except Exception as exc:  # a library failed in a way edgefkd did not foresee
        return _report(exc, f"{type(exc).__name__}: {exc} (rerun as `edgefkd --debug ...` for the full chain)",
                       BackendError.exit_code, debug)
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
