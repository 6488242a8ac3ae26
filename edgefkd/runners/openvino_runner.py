"""OpenVINO runner.

On CPUs with bf16 support OpenVINO silently runs "FP32" models in bf16 unless
INFERENCE_PRECISION_HINT is f32. Parity work therefore defaults to f32; pass
inference_precision=None to get the plugin default (a legitimate, faster artifact that a
benchmark may report as its own row).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..contract import PreprocessContract
from ..errors import InputError, library_message
from .base import Runner


class OpenVINORunner(Runner):
    backend = "openvino"

    def __init__(
        self,
        path: str | Path,
        contract: PreprocessContract,
        precision: str = "fp32",
        device: str = "CPU",
        inference_precision: str | None = "f32",
        performance_hint: str = "LATENCY",
        threads: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name or Path(path).name, contract, precision)
        self.path = Path(path)
        self.device = device
        self.inference_precision = inference_precision
        self.performance_hint = performance_hint.upper()
        self.threads = threads
        self.compiled: Any = None
        self.request: Any = None

    def compile_config(self) -> dict[str, str]:
        config = {"PERFORMANCE_HINT": self.performance_hint}
        if self.inference_precision:
            config["INFERENCE_PRECISION_HINT"] = self.inference_precision
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = str(self.threads)
        return config

    def _activate(self) -> None:
        import openvino as ov

        core = ov.Core()
        if self.device.split(":")[0].split(".")[0] not in {d.split(".")[0] for d in core.available_devices} and not self.device.startswith(("AUTO", "MULTI", "HETERO")):
            raise InputError(f"OpenVINO device {self.device!r} not available here (available: {core.available_devices})")
        try:
            model = core.read_model(str(self.path))
            self.compiled = core.compile_model(model, self.device, self.compile_config())
        except Exception as exc:
            raise InputError(f"OpenVINO cannot load {self.path}: {library_message(exc)}") from exc
        self.request = self.compiled.create_infer_request()
        self.max_batch, self.fixed_batch = _batch_limit(self.compiled.input(0).get_partial_shape())

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        result = self.request.infer({0: batch}, share_inputs=True)
        return np.array(result[self.compiled.output(0)], copy=True)

    def _deactivate(self) -> None:
        self.request = None
        self.compiled = None

    def describe(self) -> dict[str, Any]:
        import openvino as ov

        info = {**super().describe(), "openvino": ov.get_version(), "device": self.device, "hint": self.performance_hint}
        if self.compiled is not None:
            try:
                info["inference_precision"] = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
            except Exception:  # property not exposed by every device plugin
                pass
        return info


def _batch_limit(shape: Any) -> tuple[int | None, bool]:
    """(most inputs per call or None, whether exactly that many) from the IR's input shape."""
    if shape.rank.is_dynamic or len(shape) == 0:
        return None, False
    batch = shape[0]
    if batch.is_static:
        return batch.get_length(), True
    upper = batch.get_max_length()
    return (upper, False) if upper > 0 else (None, False)
