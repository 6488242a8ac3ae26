"""TensorRT runner: a `.engine`/`.plan`/`.trt` plus its sidecar `<engine>.json` (the contract).

Engines are specific to the GPU and the TensorRT version that built them, so this runner
refuses an engine whose sidecar names another TensorRT version and says to rebuild it with
`edgefkd build-engine`. Device memory, the stream and timing events come from cuda-python,
pinned to the CUDA major of the target by the `tensorrt-cu12` / `tensorrt-jetson` extras
(cuda-python 13 needs an R580+ driver and fails with error 35 on JetPack 6). TensorRT present
with no usable CUDA is an error (`CudaUnusable`), never a silent "TensorRT not here".
Uses the name-based I/O API (`set_input_shape` / `set_tensor_address` / `execute_async_v3`)
that TensorRT 8.6, 10.x and 11.x all share.
"""

from __future__ import annotations

import abc
import json
import re
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..contract import PreprocessContract
from ..errors import BackendUnavailable, EdgeFKDError, ExportError, InputError
from . import TENSORRT_SUFFIXES
from .base import Runner

INSTALL_HINT = ("install it with `pip install edgefkd[tensorrt-cu12]` on an NVIDIA GPU machine (CUDA 12), "
                "or use docker/Dockerfile.tensorrt or docker/Dockerfile.jetson")
#: cuda-python per target, one extra each (and the Docker images install exactly these): its
#: runtime bindings need a driver of their own CUDA major (13.x needs R580+), and Jetson has no
#: minor-version compatibility, so each JetPack gets the minor its CUDA ships.
CUDA_PYTHON_PINS = {
    "tensorrt-cu12": "cuda-python>=12.6,<13",  # data-centre CUDA 12.x (TensorRT 10.x containers)
    "tensorrt-cu13": "cuda-python>=13,<14",  # data-centre CUDA 13.x, R580+ driver
    "tensorrt-jetson": "cuda-python>=12.6,<12.7",  # JetPack 6.1/6.2 (L4T r36.4, CUDA 12.6, TensorRT 10.3)
    "tensorrt-jetson60": "cuda-python>=12.2,<12.3",  # JetPack 6.0 GA (L4T r36.3, CUDA 12.2, TensorRT 8.6.2)
}
CUDA_HINT = ("install the cuda-python that matches this machine's CUDA: `pip install edgefkd[tensorrt-cu12]` "
             "(CUDA 12 data-centre), `[tensorrt-cu13]` (CUDA 13, R580+ driver), `[tensorrt-jetson]` (JetPack 6.1/6.2) "
             "or `[tensorrt-jetson60]` (JetPack 6.0)")
#: CUDA runtime errors that mean "this cuda-python / driver pair does not fit"
_CUDA_ERROR_HINTS = {35: "cudaErrorInsufficientDriver: the driver is older than this cuda-python's CUDA", 100: "cudaErrorNoDevice", 101: "cudaErrorInvalidDevice: no GPU with that index"}


class CudaUnusable(ExportError):
    """TensorRT is installed but CUDA cannot be used (no cuda-python, wrong CUDA major, bad
    driver, no such device): a broken target, reported loudly, never deferred or skipped."""


def tensorrt_unavailable_reason(need_builder: bool = False) -> str | None:
    """Why TensorRT cannot be used here, or None when it can (GPU not checked)."""
    try:
        import tensorrt as trt
    except ImportError:
        return f"TensorRT is not installed (no `tensorrt` Python package); {INSTALL_HINT}"
    except OSError as exc:  # the bindings exist but libnvinfer does not load
        return f"the TensorRT libraries do not load ({exc}); {INSTALL_HINT}"
    if need_builder and not hasattr(trt, "Builder"):
        return f"the installed TensorRT {getattr(trt, '__version__', '?')} has no builder (runtime-only package)"
    return None


def cuda_device_index(device: int | str | None) -> int:
    """The CUDA device index in `device`: 2, "2", "cuda:2", "GPU.2"; 0 for None or a CPU-style name."""
    if device is None or isinstance(device, int):
        return int(device or 0)
    match = re.fullmatch(r"\s*(?:(?:cuda|gpu)[:.]?)?(\d+)\s*", str(device), re.IGNORECASE)
    if match:
        return int(match.group(1))
    if str(device).strip().upper() in ("CPU", "GPU", "CUDA", "AUTO", ""):
        return 0
    raise InputError(f"cannot read a CUDA device index from {device!r} (expected e.g. 0, cuda:1 or GPU.1)")


def sidecar_path(engine_path: str | Path) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def read_engine_sidecar(engine_path: str | Path) -> dict[str, Any] | None:
    """The sidecar JSON of an engine, or None when there is none."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "preprocess" not in data:
        raise InputError(f"{path} is not an edgefkd engine sidecar (no 'preprocess' key)")
    return data


class DeviceBuffer:
    """A block of device memory; `owner` keeps the allocation alive."""

    def __init__(self, ptr: int, nbytes: int, owner: Any = None) -> None:
        self.ptr, self.nbytes, self.owner = ptr, nbytes, owner


class CudaDevice(abc.ABC):
    """One GPU with a stream: allocate, copy, synchronise, time with CUDA events."""

    via = "?"
    name = "?"
    compute_capability = "?"
    stream_handle = 0

    @staticmethod
    def open(device: int = 0) -> "CudaDevice":
        """GPU number `device` through cuda-python; CudaUnusable when that cannot work."""
        return _CudaPythonDevice(device)

    def describe(self) -> dict[str, str]:
        return {"gpu": self.name, "compute_capability": self.compute_capability, "cuda_via": self.via}

    @abc.abstractmethod
    def alloc(self, nbytes: int) -> DeviceBuffer: ...
    @abc.abstractmethod
    def upload(self, buf: DeviceBuffer, host: np.ndarray) -> None: ...
    @abc.abstractmethod
    def download(self, buf: DeviceBuffer, host: np.ndarray) -> None: ...
    @abc.abstractmethod
    def synchronize(self) -> None: ...
    @abc.abstractmethod
    def time_ms(self, work: Callable[[], Any]) -> float: ...
    @abc.abstractmethod
    def close(self) -> None: ...


class _CudaPythonDevice(CudaDevice):
    via = "cuda-python"

    def __init__(self, device: int) -> None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            try:
                from cuda import cudart  # older cuda-python
            except ImportError as exc:
                raise CudaUnusable(f"TensorRT is installed but cuda-python is not; {CUDA_HINT}") from exc
        self._rt = cudart
        self._call(cudart.cudaSetDevice(device), "cudaSetDevice")
        props = self._call(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
        raw_name = props.name
        self.name = (raw_name.split(b"\0")[0].decode() if isinstance(raw_name, bytes) else str(raw_name)).strip()
        self.compute_capability = f"{props.major}.{props.minor}"
        self._stream = self._call(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.stream_handle = int(self._stream)
        self._buffers: list[DeviceBuffer] = []

    def _call(self, result: tuple, what: str) -> Any:
        err, *rest = result
        if int(err) != 0:
            from importlib.metadata import PackageNotFoundError, version

            try:
                installed = version("cuda-python")
            except PackageNotFoundError:
                installed = "?"
            hint = _CUDA_ERROR_HINTS.get(int(err), str(err))
            raise CudaUnusable(f"{what} failed with CUDA error {int(err)} ({hint}) using cuda-python {installed}; {CUDA_HINT}")
        return rest[0] if len(rest) == 1 else (rest or None)

    def alloc(self, nbytes: int) -> DeviceBuffer:
        ptr = self._call(self._rt.cudaMalloc(nbytes), "cudaMalloc")
        buf = DeviceBuffer(int(ptr), nbytes)
        self._buffers.append(buf)
        return buf

    def upload(self, buf: DeviceBuffer, host: np.ndarray) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(self._rt.cudaMemcpyAsync(buf.ptr, host.ctypes.data, host.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def download(self, buf: DeviceBuffer, host: np.ndarray) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self._rt.cudaMemcpyAsync(host.ctypes.data, buf.ptr, host.nbytes, kind, self._stream), "cudaMemcpyAsync")
        self.synchronize()

    def synchronize(self) -> None:
        self._call(self._rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def time_ms(self, work: Callable[[], Any]) -> float:
        start = self._call(self._rt.cudaEventCreate(), "cudaEventCreate")
        end = self._call(self._rt.cudaEventCreate(), "cudaEventCreate")
        self._call(self._rt.cudaEventRecord(start, self._stream), "cudaEventRecord")
        work()
        self._call(self._rt.cudaEventRecord(end, self._stream), "cudaEventRecord")
        self._call(self._rt.cudaEventSynchronize(end), "cudaEventSynchronize")
        elapsed = self._call(self._rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime")
        for event in (start, end):
            self._rt.cudaEventDestroy(event)
        return float(elapsed)

    def close(self) -> None:
        for buf in self._buffers:
            self._rt.cudaFree(buf.ptr)
        self._buffers = []
        self._rt.cudaStreamDestroy(self._stream)


class TensorRTRunner(Runner):
    """Runs a serialized TensorRT engine; the contract comes from its sidecar JSON."""

    backend = "tensorrt"

    def __init__(
        self,
        engine_path: str | Path,
        contract: PreprocessContract | None = None,
        precision: str | None = None,
        device: int | str = 0,
        name: str | None = None,
    ) -> None:
        self.engine_path = Path(engine_path)
        if self.engine_path.suffix not in TENSORRT_SUFFIXES:
            raise InputError(f"{self.engine_path} is not a TensorRT engine (expected {' or '.join(TENSORRT_SUFFIXES)})")
        if not self.engine_path.is_file():
            raise InputError(f"engine {self.engine_path} does not exist; build it with `edgefkd build-engine`")
        reason = tensorrt_unavailable_reason()
        if reason:
            raise BackendUnavailable(f"cannot run {self.engine_path.name}: {reason}")
        self.sidecar = read_engine_sidecar(self.engine_path) or {}
        if contract is None and self.sidecar:
            contract = PreprocessContract.from_dict(self.sidecar["preprocess"])
        if contract is None:
            raise InputError(f"{self.engine_path} has no sidecar {sidecar_path(self.engine_path).name} with the preprocessing contract; pass the contract explicitly")
        super().__init__(name or self.engine_path.name, contract, precision or str(self.sidecar.get("precision", "fp32")))
        self.device = cuda_device_index(device)
        self._cuda: CudaDevice | None = None

    def _activate(self) -> None:
        import tensorrt as trt

        built_with = (self.sidecar.get("build") or {}).get("tensorrt")
        if built_with and built_with != trt.__version__:
            raise InputError(
                f"{self.engine_path.name} was built with TensorRT {built_with} but this is TensorRT {trt.__version__}: "
                "engines are not portable across versions; rebuild it here with `edgefkd build-engine`"
            )
        self._cuda = CudaDevice.open(self.device)
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        dla_core = (self.sidecar.get("build") or {}).get("dla_core", self.sidecar.get("dla_core"))
        if dla_core is not None:  # must be set before deserialising, or the engine loads on the wrong core
            self._runtime.DLA_core = int(dla_core)
        self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise InputError(
                f"TensorRT {trt.__version__} could not load {self.engine_path.name} on {self._cuda.name}: "
                "it was built for another GPU or TensorRT version; rebuild it with `edgefkd build-engine`"
            )
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or not outputs:
            raise InputError(f"{self.engine_path.name} has inputs {inputs} and outputs {outputs}; a face model has one input and an embedding output")
        self._input, self._output = inputs[0], outputs[0]
        self._in_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._input)))
        self._out_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._output)))
        shape = tuple(self._engine.get_tensor_shape(self._input))
        if shape[0] < 0:
            low, _, high = (tuple(s) for s in self._engine.get_tensor_profile_shape(self._input, 0))
            self.batch_range = (low[0], high[0])
            shape = high
        else:
            self.batch_range = (shape[0], shape[0])
        self._sample_shape = tuple(shape[1:])
        self._context.set_input_shape(self._input, shape)
        out_max = tuple(self._context.get_tensor_shape(self._output))
        self._in_buf = self._cuda.alloc(int(np.prod(shape)) * self._in_dtype.itemsize)
        self._out_buf = self._cuda.alloc(int(np.prod(out_max)) * self._out_dtype.itemsize)
        self._context.set_tensor_address(self._input, self._in_buf.ptr)
        self._context.set_tensor_address(self._output, self._out_buf.ptr)

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        assert self._cuda is not None
        self._context.set_input_shape(self._input, chunk.shape)
        out = np.empty(tuple(self._context.get_tensor_shape(self._output)), self._out_dtype)
        self._cuda.upload(self._in_buf, chunk)
        if not self._context.execute_async_v3(self._cuda.stream_handle):
            raise EdgeFKDError(f"TensorRT failed to run {self.engine_path.name} on a batch of {chunk.shape[0]}")
        self._cuda.download(self._out_buf, out)
        return out

    def _chunks(self, batch: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """Split/pad a batch to the engine's batch range: (chunk, rows that are real)."""
        x = np.ascontiguousarray(batch, dtype=self._in_dtype)
        if tuple(x.shape[1:]) != self._sample_shape:
            raise InputError(f"{self.name} takes samples of shape {self._sample_shape}, got {tuple(x.shape[1:])}")
        low, high = self.batch_range
        out = []
        for start in range(0, x.shape[0], high):
            chunk = x[start : start + high]
            real = chunk.shape[0]
            if real < low:  # fixed-batch engines: pad by repeating the last sample
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], low - real, axis=0)])
            out.append((np.ascontiguousarray(chunk), real))
        return out

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        parts = [self._run_chunk(chunk)[:real] for chunk, real in self._chunks(batch)]
        return np.concatenate(parts).reshape(batch.shape[0], -1).astype(np.float32)

    def compute_times_ms(self, batch: np.ndarray, iterations: int = 20) -> list[float]:
        """Device compute time of the whole batch in ms per iteration: CUDA events around each
        chunk's execution, summed over every chunk the batch is split into. Inputs are uploaded
        before timing, so host<->device copies are excluded (see `end_to_end_times_ms`)."""
        if not self.is_active or self._cuda is None:
            raise EdgeFKDError(f"runner {self.name} used before activate()")
        cuda = self._cuda
        run = lambda: self._context.execute_async_v3(cuda.stream_handle)  # noqa: E731
        totals = [0.0] * iterations
        for chunk, _ in self._chunks(batch):
            self._context.set_input_shape(self._input, chunk.shape)
            cuda.upload(self._in_buf, chunk)
            cuda.synchronize()
            for i in range(iterations):
                totals[i] += cuda.time_ms(run)
        return totals

    def end_to_end_times_ms(self, batch: np.ndarray, iterations: int = 20) -> list[float]:
        """Host wall time of `infer` in ms per iteration: upload, execution of every chunk,
        download and synchronisation, i.e. what every other backend's latency row measures."""
        times = []
        for _ in range(iterations):
            start = time.perf_counter_ns()
            self.infer(batch)
            times.append((time.perf_counter_ns() - start) / 1e6)
        return times

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["engine_build"] = self.sidecar.get("build")
        if self._cuda is not None:
            info.update(self._cuda.describe())
        return info

    def _deactivate(self) -> None:
        for attr in ("_context", "_engine", "_runtime"):
            if hasattr(self, attr):
                delattr(self, attr)
        if self._cuda is not None:
            self._cuda.close()
            self._cuda = None
