"""What machine and software a benchmark ran on, so that a table can be judged later.

Library versions come from package metadata (importlib.metadata), never by importing the
libraries: describing the host must not load torch or OpenVINO into the process.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions change latency figures.
LIBRARIES = ("edgefkd", "numpy", "torch", "onnx", "onnxruntime", "openvino", "tensorrt", "nncf")
#: CPU flags that decide which kernels (VNNI INT8, BF16, AMX) the backends may use.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd")
#: Environment variables that change how many threads the backends start.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES")


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that matter, None where absent."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpuinfo_fields() -> tuple[str | None, set[str]]:
    """(model name, flags) from /proc/cpuinfo on Linux; (None, empty) elsewhere."""
    path = Path("/proc/cpuinfo")
    model: str | None = None
    flags: set[str] = set()
    if not path.is_file():
        return model, flags
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware") and model is None:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask; the cpu count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_info(threads: int | None = None) -> dict[str, Any]:
    """The `host` object of benchmark.json."""
    import psutil

    model, flags = _cpuinfo_fields()
    memory = psutil.virtual_memory()
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": usable_cores(),
        "cpu_flags": sorted(f for f in CPU_FLAGS if f in flags),
        "memory_total_gb": round(memory.total / 2**30, 1),
        "memory_available_gb": round(memory.available / 2**30, 1),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "threads": threads,
        "thread_env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
    }


#: Memory one 112x112 face may take through a face-recognition CNN, inputs and activations
#: together. ONNX Runtime grew 3.4 MiB per face for MobileFaceNet fp32 at batch 64 (2.4 at
#: 256); this leaves room for eager PyTorch, larger backbones and the backends' own copies.
BYTES_PER_FACE = 32 << 20


def check_batch_fits(batch: int) -> None:
    """Refuse a batch whose inputs and activations cannot fit in the memory available now."""
    import psutil

    from ..errors import InputError

    available = psutil.virtual_memory().available
    needed = batch * BYTES_PER_FACE
    if needed > available:
        raise InputError(
            f"batch {batch} needs about {needed / 2**30:.1f} GiB and {available / 2**30:.1f} GiB is available: "
            f"choose a batch of at most {max(1, available // BYTES_PER_FACE)}"
        )
