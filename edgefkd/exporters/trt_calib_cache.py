"""TensorRT 8.6 implicit-INT8 calibration caches, computed on the export host without TensorRT.

TensorRT's entropy calibrator writes (and reads back, skipping calibration) a plain-text
cache: a `TRT-<version>-EntropyCalibration2` header, then one `tensor: <hex>` line per
tensor, the hex being the IEEE-754 bits of the float32 scale (amax / 127). edgefkd computes
the same thing from the ONNX activations on the calibration faces with its own streaming
collector (`quantize_onnx.calibrate_ranges`, the TensorRT-style KL-divergence threshold), so a
trtexec build on the target uses real scales instead of calibrating on random data.

TensorRT skips a cache whose header names another version, so one cache file is written per
TensorRT 8.6 release (`calib_int8_trt8601.cache`, `..._trt8602.cache`), and the scales plus
their key (ONNX sha256, calibration set fingerprint, method) live in `calib_int8.json`. A
cache whose key does not match the ONNX it would be used with is refused, never reused.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import PreprocessContract
from ..errors import InputError
from ..fileio import sha256_file

METHOD = "entropy"
KEY_FILE = "calib_int8.json"
#: TensorRT 8.6 releases: 8.6.1 (data-centre GA), 8.6.2 (JetPack 6.0 GA).
TRT86_VERSIONS = (8601, 8602)
CACHE_FORMAT = "edgefkd-tensorrt-calibration/1"
CALIB_BATCH = 16


def cache_name(trt_version_number: int) -> str:
    return f"calib_int8_trt{trt_version_number}.cache"


def version_number(version: str) -> int:
    """TensorRT's own version integer (8.6.2 -> 8602, 10.3.0 -> 100300), as in cache headers."""
    parts = [int(p) for p in str(version).split(".")[:3]] + [0, 0]
    major, minor, patch = parts[:3]
    return major * 1000 + minor * 100 + patch if major < 10 else major * 10000 + minor * 100 + patch


@dataclass(frozen=True)
class CalibrationKey:
    """What a cache is valid for."""

    onnx_sha256: str
    calibration_sha256: str
    method: str = METHOD

    def to_dict(self) -> dict[str, str]:
        return {"onnx_sha256": self.onnx_sha256, "calibration_sha256": self.calibration_sha256, "method": self.method}


def faces_fingerprint(faces: np.ndarray) -> str:
    """sha256 over the calibration faces' shape and pixels (the set, not where it came from)."""
    digest = hashlib.sha256(repr(tuple(faces.shape)).encode())
    digest.update(np.ascontiguousarray(faces).tobytes())
    return digest.hexdigest()


def activation_tensors(model: Any) -> list[str]:
    """Every float tensor TensorRT may ask a scale for: the graph input and float node outputs."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    float_type = onnx.TensorProto.FLOAT
    types = {vi.name: vi.type.tensor_type.elem_type for vi in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    initializers = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    for node in model.graph.node:
        if node.op_type in ("Constant", "Shape", "ConstantOfShape"):
            continue
        names += [out for out in node.output if out and types.get(out) == float_type and out not in names]
    return names


def compute_scales(onnx_path: Path, faces: np.ndarray, contract: PreprocessContract) -> dict[str, float]:
    """Entropy-calibrated scale (amax / 127) per activation tensor of the ONNX, from faces."""
    import onnx

    from .quantize_onnx import calibrate_ranges

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises several kinds for a bad file
        raise InputError(f"{onnx_path} is not a readable ONNX model: {exc}") from exc
    prepared = contract.prepare(faces)
    batches = [np.ascontiguousarray(prepared[i:i + CALIB_BATCH]) for i in range(0, len(prepared), CALIB_BATCH)]
    ranges = calibrate_ranges(model, activation_tensors(model), batches, METHOD, batch_size=CALIB_BATCH)
    # A tensor that is zero on every face still needs a positive scale in the cache.
    return {name: max(float(amax), 1e-8) / 127.0 for name, amax in ranges.items()}


def render_cache(scales: dict[str, float], trt_version_number: int) -> str:
    """The cache text TensorRT's IInt8EntropyCalibrator2 reads (and would have written)."""
    lines = [f"TRT-{trt_version_number}-EntropyCalibration2"]
    lines += [f"{name}: {struct.pack('>f', np.float32(scale)).hex()}" for name, scale in scales.items()]
    return "\n".join(lines) + "\n"


def parse_cache(text: str) -> tuple[int, dict[str, float]]:
    """(version number, scales) of a cache text; InputError when it is not one."""
    lines = text.splitlines()
    header = lines[0].split("-") if lines else []
    if len(header) != 3 or header[0] != "TRT" or not header[1].isdigit() or header[2] != "EntropyCalibration2":
        raise InputError("not a TensorRT entropy calibration cache (bad header)")
    scales = {}
    for line in lines[1:]:
        name, sep, value = line.rpartition(": ")
        if not sep or len(value) != 8:
            raise InputError(f"not a TensorRT calibration cache line: {line[:60]!r}")
        scales[name] = struct.unpack(">f", bytes.fromhex(value))[0]
    return int(header[1]), scales


def cache_files(key: CalibrationKey, scales: dict[str, float], onnx_rel: str, source: str, count: int) -> dict[str, str]:
    """{file name: text} for the bundle: the key JSON plus one cache per TensorRT 8.6 release."""
    record = {"format": CACHE_FORMAT, "onnx": onnx_rel, **key.to_dict(),
              "calibration": {"source": source, "faces": count}, "scales": scales}
    files = {KEY_FILE: json.dumps(record, indent=2) + "\n"}
    files.update({cache_name(v): render_cache(scales, v) for v in TRT86_VERSIONS})
    return files


def read_key_file(bundle: Path) -> dict[str, Any] | None:
    path = bundle / KEY_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("scales"), dict):
        raise InputError(f"{path} is not an edgefkd TensorRT calibration record")
    return data


def stale_reason(record: dict[str, Any], onnx_path: Path, calibration_sha256: str | None) -> str | None:
    """Why a stored cache cannot be used with this ONNX (and calibration set, when given)."""
    actual = sha256_file(onnx_path)
    if record.get("onnx_sha256") != actual:
        return f"it was computed for another ONNX (sha256 {str(record.get('onnx_sha256'))[:12]}…, this one is {actual[:12]}…)"
    if record.get("method") != METHOD:
        return f"it was computed with method {record.get('method')!r}, not {METHOD!r}"
    if calibration_sha256 is not None and record.get("calibration_sha256") != calibration_sha256:
        return "it was computed from another calibration set"
    return None


def usable_scales(bundle: Path, onnx_path: Path) -> dict[str, float]:
    """The stored scales for this ONNX, or InputError saying why there are none usable."""
    record = read_key_file(bundle)
    if record is None:
        raise InputError(f"no calibration cache in {bundle} for implicit INT8: pass --calib FACES to compute one")
    why = stale_reason(record, onnx_path, None)
    if why:
        raise InputError(f"refusing the stale calibration cache {bundle / KEY_FILE}: {why}; pass --calib FACES to recompute it")
    return {str(k): float(v) for k, v in record["scales"].items()}
