"""Runners for every backend behind one interface, and `open_runner` to pick one by file.

Importing this package is cheap; backends are imported when a runner activates.
"""

from __future__ import annotations

import json
from pathlib import Path


from ..contract import METADATA_PREFIX, PreprocessContract
from ..errors import InputError, library_message
from .base import Runner

ONNX_SUFFIXES = (".onnx",)
OPENVINO_SUFFIXES = (".xml",)
TENSORRT_SUFFIXES = (".engine", ".plan", ".trt")


def artifact_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in OPENVINO_SUFFIXES:
        return "openvino"
    if suffix in TENSORRT_SUFFIXES:
        return "tensorrt"
    raise InputError(f"{path}: unknown artifact type {suffix!r} (expected .onnx, .xml, .engine/.plan)")


def read_artifact_metadata(path: str | Path) -> dict[str, str]:
    """edgefkd.* metadata of an artifact as flat `edgefkd.<key>` -> string.

    ONNX: metadata_props; OpenVINO: rt_info["edgefkd"]; TensorRT: the sidecar `<engine>.json`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"artifact not found: {path}")
    fmt = artifact_format(path)
    if fmt == "onnx":
        import onnx

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:
            raise InputError(f"{path} is not a readable ONNX model: {library_message(exc)}") from exc
        return {p.key: p.value for p in model.metadata_props if p.key.startswith(METADATA_PREFIX)}
    if fmt == "openvino":
        import openvino as ov

        try:
            model = ov.Core().read_model(str(path))
        except Exception as exc:
            raise InputError(f"{path} is not a readable OpenVINO IR: {library_message(exc)}") from exc
        from ..exporters.openvino import get_rt_metadata

        return get_rt_metadata(model)
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{sidecar} is not valid JSON: {exc}") from exc
    return {METADATA_PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


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
    """
    path = Path(path)
    fmt = artifact_format(path)
    if not path.is_file():
        raise InputError(f"artifact not found: {path}")
    # Reading metadata parses the whole model; skip it when the caller already knows both.
    meta = {} if contract is not None and precision is not None else read_artifact_metadata(path)
    if contract is None:
        contract = PreprocessContract.from_metadata(meta)
        if contract is None:
            raise InputError(
                f"{path} carries no edgefkd preprocessing contract; pass --input-size/--mean/--std/--channel-order"
            )
    precision = precision or meta.get(METADATA_PREFIX + "precision", "fp32")
    if fmt == "onnx":
        from .onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, contract, precision, providers=providers, threads=threads, name=name)
    if fmt == "openvino":
        from .openvino_runner import OpenVINORunner

        return OpenVINORunner(
            path, contract, precision, device=device, inference_precision=inference_precision,
            performance_hint=performance_hint, threads=threads, name=name,
        )
    from .tensorrt_runner import TensorRTRunner  # type: ignore[import-not-found]

    return TensorRTRunner(path, contract, precision, name=name)


__all__ = ["Runner", "open_runner", "read_artifact_metadata", "artifact_contract", "artifact_format"]
