"""The preprocessing contract that travels with every artifact.

Silent parity bugs in face recognition are almost always preprocessing bugs: an RGB/BGR
swap, mean/std in the wrong units, a fixed batch of 1, a resize instead of a crop. The
contract pins these down once, is written into every artifact (ONNX `metadata_props`,
OpenVINO `rt_info`, TensorRT sidecar JSON) and into the export manifest, and is the only
code path that turns decoded RGB uint8 faces into a model's input tensor.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import InputError

METADATA_PREFIX = "edgefkd."

#: The artifact takes float32 NCHW that is already normalised (the usual export).
INPUT_FLOAT_NCHW = "float32_nchw"
#: The artifact takes raw uint8 NHWC pixels in `channel_order` (--fold-preprocess).
INPUT_UINT8_NHWC = "uint8_nhwc"


@dataclass(frozen=True)
class PreprocessContract:
    """How to turn an aligned face into the model's input.

    mean/std are in 0-255 pixel units and are listed in the model's channel order.
    input_size is (H, W). channel_order is the order the *model* expects ("rgb"/"bgr").
    """

    input_size: tuple[int, int] = (112, 112)
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    channel_order: str = "rgb"
    input_format: str = INPUT_FLOAT_NCHW

    def __post_init__(self) -> None:
        h, w = (int(v) for v in self.input_size)
        if h <= 0 or w <= 0:
            raise InputError(f"input size must be positive, got {h}x{w}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise InputError("mean and std need exactly 3 values (one per channel)")
        if any(float(s) <= 0 for s in self.std):
            raise InputError(f"std values must be positive, got {list(self.std)}")
        if self.channel_order not in ("rgb", "bgr"):
            raise InputError(f"channel order must be rgb or bgr, got {self.channel_order!r}")
        if self.input_format not in (INPUT_FLOAT_NCHW, INPUT_UINT8_NHWC):
            raise InputError(f"unknown input format {self.input_format!r}")
        object.__setattr__(self, "input_size", (h, w))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    # -- conversions -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PreprocessContract":
        try:
            return cls(
                input_size=tuple(d["input_size"]),  # type: ignore[arg-type]
                mean=tuple(d["mean"]),  # type: ignore[arg-type]
                std=tuple(d["std"]),  # type: ignore[arg-type]
                channel_order=str(d.get("channel_order", "rgb")),
                input_format=str(d.get("input_format", INPUT_FLOAT_NCHW)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed preprocessing contract {dict(d)!r}: {exc}") from None

    def to_metadata(self, **extra: Any) -> dict[str, str]:
        """Flat string key/values for ONNX metadata_props / OpenVINO rt_info."""
        out = {METADATA_PREFIX + "preprocess": json.dumps(self.to_dict())}
        for key, value in extra.items():
            out[METADATA_PREFIX + key] = value if isinstance(value, str) else json.dumps(value)
        return out

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> "PreprocessContract | None":
        raw = meta.get(METADATA_PREFIX + "preprocess")
        if raw is None:
            return None
        try:
            return cls.from_dict(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise InputError(f"artifact metadata has a malformed preprocessing contract: {exc}") from None

    def with_input_format(self, input_format: str) -> "PreprocessContract":
        return PreprocessContract(self.input_size, self.mean, self.std, self.channel_order, input_format)

    # -- the one preprocessing path ----------------------------------------------------
    def prepare(self, faces_rgb: np.ndarray) -> np.ndarray:
        """Turn decoded faces (N, H, W, 3) uint8 RGB at `input_size` into model input.

        Faces must already be fitted to `input_size` (see imaging.fit_face). Returns
        float32 NCHW normalised with mean/std in the model's channel order, or uint8
        NHWC in the model's channel order for folded-preprocessing artifacts.
        """
        faces = np.asarray(faces_rgb)
        if faces.ndim == 3:
            faces = faces[None]
        h, w = self.input_size
        if faces.ndim != 4 or faces.shape[1:] != (h, w, 3):
            raise InputError(f"expected faces of shape (N, {h}, {w}, 3), got {tuple(faces.shape)}")
        if self.channel_order == "bgr":
            faces = faces[..., ::-1]
        if self.input_format == INPUT_UINT8_NHWC:
            return np.ascontiguousarray(faces, dtype=np.uint8)
        x = faces.astype(np.float32)
        x -= np.asarray(self.mean, dtype=np.float32)
        x /= np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def example_input(self, batch: int, seed: int = 0) -> np.ndarray:
        """A model input for `batch` random faces (for shape checks and generated data)."""
        rng = np.random.default_rng(seed)
        h, w = self.input_size
        return self.prepare(rng.integers(0, 256, size=(batch, h, w, 3), dtype=np.uint8))

    def describe(self) -> str:
        h, w = self.input_size
        return f"{h}x{w} {self.channel_order.upper()} mean={list(self.mean)} std={list(self.std)} ({self.input_format})"


def parse_size(text: str) -> tuple[int, int]:
    """Parse '112x112' or '112x96' (HxW) or '112' (square)."""
    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    except ValueError:
        raise InputError(f"input size must look like 112x112 (HxW), got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise InputError(f"input size must look like 112x112 (HxW), got {text!r}")
    return parts[0], parts[1]


def parse_triplet(text: str, what: str) -> tuple[float, float, float]:
    """Parse '127.5' or '123.7,116.3,103.5' into three floats (0-255 pixel units)."""
    try:
        vals = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InputError(f"{what} must be 1 or 3 comma-separated numbers, got {text!r}") from None
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise InputError(f"{what} must be 1 or 3 comma-separated numbers, got {text!r}")
    return vals[0], vals[1], vals[2]


def override_contract(
    base: PreprocessContract,
    input_size: str | Sequence[int] | None = None,
    mean: str | Sequence[float] | None = None,
    std: str | Sequence[float] | None = None,
    channel_order: str | None = None,
) -> PreprocessContract:
    """Apply CLI-style overrides (strings or sequences) to a contract."""
    size = base.input_size
    if input_size is not None:
        size = parse_size(input_size) if isinstance(input_size, str) else tuple(input_size)  # type: ignore[assignment]
    m = base.mean if mean is None else (parse_triplet(mean, "mean") if isinstance(mean, str) else tuple(mean))
    s = base.std if std is None else (parse_triplet(std, "std") if isinstance(std, str) else tuple(std))
    order = base.channel_order if channel_order is None else channel_order.lower()
    return PreprocessContract(size, m, s, order, base.input_format)  # type: ignore[arg-type]
