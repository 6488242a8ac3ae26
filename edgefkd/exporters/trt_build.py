"""The real TensorRT build, on the target (TensorRT + an NVIDIA GPU present).

Only TensorRT API that all of 8.6, 10.x and 11.x share (or that the plan selects per
version) is used; `tests/test_tensorrt_api.py` checks every name against the genuine binding
modules of each release. The engine and its sidecar are written before the timing cache,
so a timing cache that cannot be saved costs a warning, never the engine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ExportError
from ..fileio import atomic_path, atomic_write_bytes, atomic_write_json
from ..manifest import ArtifactEntry, Manifest
from . import trt_calib_cache as calib_cache
from .trt_bundle import BUNDLE_DIR, EngineJob, engine_sidecar, timing_cache_rel
from .trt_plan import BuildPlan, TensorRTOptions, plan_build


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def build_unavailable_reason(device: int = 0) -> str | None:
    """Why engines are deferred here (no TensorRT builder), or None when they can be built.

    TensorRT present but no usable CUDA device is not a reason to defer: it raises
    `CudaUnusable` (a mismatched cuda-python or driver must not pass as "no TensorRT here").
    """
    from ..runners.tensorrt_runner import CudaDevice, tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason(need_builder=True)
    if reason:
        return reason
    CudaDevice.open(device).close()
    return None


def entropy_calibrator(trt: Any, cache_text: str, batch: int) -> Any:
    """An IInt8EntropyCalibrator2 that hands TensorRT the cache computed on the export host.

    It has no batches: if TensorRT rejects the cache and asks for data, `asked` is set and the
    build is failed loudly instead of calibrating on nothing.
    """

    class CachedEntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.asked = False

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> None:
            self.asked = True
            return None

        def read_calibration_cache(self) -> bytes:
            return cache_text.encode()

        def write_calibration_cache(self, cache: Any) -> None:
            return None  # the cache is edgefkd's, keyed by ONNX and calibration set

    return CachedEntropyCalibrator()


def set_timing_cache(config: Any, timing_path: Path, log: Callable[[str], None]) -> None:
    """Load the timing cache; one from another GPU or TensorRT version is dropped with a warning."""
    data = timing_path.read_bytes() if timing_path.is_file() else b""
    cache = config.create_timing_cache(data)
    if cache is None and data:
        log(f"timing cache {timing_path} is unreadable by this TensorRT; starting a new one")
        cache = config.create_timing_cache(b"")
    if cache is None:
        raise ExportError("TensorRT could not create a timing cache")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log(f"timing cache {timing_path} was made on another GPU or TensorRT version; rebuilding it")
        if not config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False):
            raise ExportError("TensorRT refused a new, empty timing cache")


def save_timing_cache(config: Any, timing_path: Path, log: Callable[[str], None]) -> None:
    try:
        cache = config.get_timing_cache()
        data = bytes(memoryview(cache.serialize())) if cache is not None else b""
    except Exception as exc:  # serialize() raises for a cache TensorRT considers invalid
        log(f"could not save the timing cache {timing_path} ({exc}); the engine is unaffected")
        return
    if data:
        atomic_write_bytes(timing_path, data)


def _network(trt: Any, builder: Any, logger: Any, plan: BuildPlan, onnx_path: Path, label: str) -> tuple[Any, Any]:
    flags = 0
    for name in plan.network_flags:
        flag = getattr(trt.NetworkDefinitionCreationFlag, name, None)
        if flag is not None:  # 11.x: strongly typed is the default; the flag may be gone
            flags |= 1 << int(flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT {trt.__version__} cannot parse {label}: {errors} (see tensorrt/compat.md)")
    return network, parser


def _configure(trt: Any, builder: Any, job: EngineJob, plan: BuildPlan, options: TensorRTOptions) -> Any:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    if job.spec.batch_dynamic:  # with DLA the options guarantee min = opt = max
        profile = builder.create_optimization_profile()
        profile.set_shape(job.spec.name, *(job.spec.shape(b) for b in options.batch_range))
        config.add_optimization_profile(profile)
        if plan.calibrator:  # calibration runs at one shape: the opt batch
            calib_profile = builder.create_optimization_profile()
            fixed = job.spec.shape(options.opt_batch)
            calib_profile.set_shape(job.spec.name, fixed, fixed, fixed)
            config.set_calibration_profile(calib_profile)
    if options.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    return config


def build_engine(export_dir: Path, job: EngineJob, manifest: Manifest, options: TensorRTOptions,
                 log: Callable[[str], None] = warn) -> ArtifactEntry:
    """Build one engine with the installed TensorRT; write engine + sidecar atomically."""
    import tensorrt as trt

    from ..runners.tensorrt_runner import CudaDevice

    version = trt.__version__
    plan = plan_build(version, job.precision, job.source, options.implicit_int8, options.dla_core is not None)
    onnx_path, engine_path = export_dir / job.onnx.path, export_dir / job.engine_rel
    timing_path = export_dir / timing_cache_rel(export_dir, options)
    cuda = CudaDevice.open(options.device)
    try:
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network, _parser = _network(trt, builder, logger, plan, onnx_path, job.onnx.path)
        config = _configure(trt, builder, job, plan, options)
        calibrator = None
        if plan.calibrator:
            scales = calib_cache.usable_scales(export_dir / BUNDLE_DIR, onnx_path)
            text = calib_cache.render_cache(scales, calib_cache.version_number(version))
            calibrator = entropy_calibrator(trt, text, job.spec.fixed_batch or options.opt_batch)
            config.int8_calibrator = calibrator
        set_timing_cache(config, timing_path, log)
        start = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        seconds = time.perf_counter() - start
        if calibrator is not None and calibrator.asked:
            raise ExportError(f"TensorRT {version} rejected the calibration cache for {job.onnx.path} and asked for data; "
                              "recompute it with --calib FACES on this machine")
        if serialized is None:
            raise ExportError(f"TensorRT {version} failed to build the {job.precision} engine from {job.onnx.path} (see the log above)")
        build = {
            "tensorrt": version, **plan.to_dict(), **cuda.describe(), "device": options.device,
            "workspace_mib": options.workspace_mib, "dla_core": options.dla_core,
            "timing_cache": timing_cache_rel(export_dir, options),
            "calibration_cache": f"{BUNDLE_DIR}/{calib_cache.KEY_FILE}" if plan.calibrator else None,
            "build_seconds": round(seconds, 2), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with atomic_path(engine_path) as tmp:
            tmp.write_bytes(memoryview(serialized))
        atomic_write_json(export_dir / (job.engine_rel + ".json"), engine_sidecar(job, export_dir, manifest, options, build))
        save_timing_cache(config, timing_path, log)
    finally:
        cuda.close()
    return ArtifactEntry.for_file(export_dir, engine_path, "tensorrt", job.precision, status="built",
                                  source_onnx=job.onnx.path, build=build, sidecar=job.engine_rel + ".json")
