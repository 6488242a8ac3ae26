"""ONNX -> OpenVINO IR (.xml/.bin), FP32 or FP16-compressed weights, contract in rt_info."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ExportError
from ..formats.openvino import set_rt_metadata


def save_ir_atomically(model: Any, out_xml: str | Path, compress_to_fp16: bool) -> Path:
    """Save .xml + .bin into a temporary folder beside the target, then rename both."""
    import openvino as ov

    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_xml.stem}.", dir=out_xml.parent))
    try:
        tmp_xml = stage / out_xml.name
        ov.save_model(model, str(tmp_xml), compress_to_fp16=compress_to_fp16)
        # .bin first: a reader that finds the .xml must find its weights.
        os.replace(tmp_xml.with_suffix(".bin"), out_xml.with_suffix(".bin"))
        os.replace(tmp_xml, out_xml)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out_xml


def export_openvino(onnx_path: str | Path, out_xml: str | Path, *, fp16: bool, metadata: dict[str, str]) -> Path:
    """Convert an ONNX file to OpenVINO IR, keeping the dynamic batch axis."""
    import openvino as ov

    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:
        raise ExportError(f"OpenVINO could not convert {onnx_path}: {library_message(exc)}") from exc
    set_rt_metadata(model, metadata)
    return save_ir_atomically(model, out_xml, compress_to_fp16=fp16)
