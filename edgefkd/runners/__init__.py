"""Runners for every backend behind one interface, and `open_runner` to pick one by file.

Which format a file is, how its metadata is read and which runner runs it all come from
the table of formats (edgefkd/formats). Importing this package is cheap; backends are
imported when a runner activates.
"""

from __future__ import annotations

from pathlib import Path

from ..contract import METADATA_PREFIX, PreprocessContract
from ..errors import InputError
from .base import Runner, embed_batches

# Kept for the TensorRT runner, which checks an engine's suffix before reading its sidecar.
TENSORRT_SUFFIXES = (".engine", ".plan", ".trt")


def artifact_format(path: str | Path) -> str:
    """The format name (`--formats` / manifest "format") of an artifact file."""
    from ..formats import format_for_path

    return format_for_path(path).name


def read_artifact_metadata(path: str | Path) -> dict[str, str]:
    """edgefkd.* metadata of an artifact as flat `edgefkd.<key>` -> string, read the way its
    format stores it (ONNX metadata_props, OpenVINO rt_info, a sidecar JSON...)."""
    from ..formats import format_for_path

    path = Path(path)
    fmt = format_for_path(path)
    if not path.exists():
        raise InputError(f"artifact not found: {path}")
    return fmt.read_metadata(path)


def artifact_contract(path: str | Path) -> PreprocessContract | None:
    return PreprocessContract.from_metadata(read_artifact_metadata(path))


def open_runner(
    path: str | Path,
    *,
    contract: PreprocessContract | None = None,
    precision: str | None = None,
    device: str = "CPU",
    inference_precision: str | None = "f32",
    performance_hint: str = "LATENCY",
    threads: int | None = None,
    providers: list[str] | None = None,
    name: str | None = None,
) -> Runner:
    """An inactive runner for an artifact file, its contract read from its own metadata.

    `contract` overrides the metadata (needed for foreign artifacts without edgefkd metadata).
    Each format's runner takes the options it understands (device and hints: OpenVINO;
    providers: ONNX Runtime; threads: most) and ignores the rest.
    """
    from ..formats import format_for_path

    path = Path(path)
    fmt = format_for_path(path)
    if not path.exists():
        raise InputError(f"artifact not found: {path}")
    # Reading metadata parses the whole model; skip it when the caller already knows both.
    meta = {} if contract is not None and precision is not None else fmt.read_metadata(path)
    if contract is None:
        contract = PreprocessContract.from_metadata(meta)
        if contract is None:
            raise InputError(
                f"{path} carries no edgefkd preprocessing contract; pass --input-size/--mean/--std/--channel-order"
            )
    precision = precision or meta.get(METADATA_PREFIX + "precision", "fp32")
    return fmt.runner(
        path, contract, precision, device=device, inference_precision=inference_precision,
        performance_hint=performance_hint, threads=threads, providers=providers, name=name,
    )  # fmt: skip


__all__ = ["Runner", "embed_batches", "open_runner", "read_artifact_metadata", "artifact_contract", "artifact_format"]
