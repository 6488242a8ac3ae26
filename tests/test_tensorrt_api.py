"""Every TensorRT name edgefkd uses exists in each release's genuine Python module.

The names are read from edgefkd's source (attribute chains on `trt` and methods called on
the builder / config / parser / profile / timing cache / runtime / engine / context), plus
the enum members the version plan asks for by name. Each release runs in its own process
with its real binding module (see trt_bindings.py). The calibrator subclass is built on the
real IInt8EntropyCalibrator2 trampoline, and "TensorRT present, CUDA unusable" must raise.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trt_bindings

REPO = Path(__file__).resolve().parents[1]
SCANNED = [REPO / "edgefkd" / "exporters" / "trt_build.py", REPO / "edgefkd" / "runners" / "tensorrt_runner.py"]
#: variable / attribute name in edgefkd's code -> the TensorRT class it holds
RECEIVERS = {"builder": "Builder", "config": "IBuilderConfig", "parser": "OnnxParser", "profile": "IOptimizationProfile",
             "calib_profile": "IOptimizationProfile",
             "cache": "ITimingCache", "_runtime": "Runtime", "_engine": "ICudaEngine", "_context": "IExecutionContext"}
#: used only on the TensorRT 8.6 implicit-INT8 path (plan.calibrator), which 11 never takes
CALIBRATION_ONLY = {"IInt8EntropyCalibrator2", "IBuilderConfig.set_calibration_profile", "IBuilderConfig.int8_calibrator"}
#: looked up with a None fallback (11 may drop it: strongly typed is the default there)
OPTIONAL = {"NetworkDefinitionCreationFlag.STRONGLY_TYPED"}


def _chain(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def used_names() -> set[str]:
    """'Class.member' and 'Enum.MEMBER' names edgefkd's TensorRT code touches."""
    names: set[str] = set()
    for path in SCANNED:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute) or isinstance(getattr(node, "ctx", None), ast.Del):
                continue
            chain = _chain(node)
            if chain and chain[0] == "trt" and len(chain) > 1 and not chain[1].startswith("__"):
                names.add(".".join(p for p in chain[1:3] if not p.startswith("__")))
            elif chain and len(chain) == 2 and chain[0] in RECEIVERS:
                names.add(f"{RECEIVERS[chain[0]]}.{chain[1]}")
            elif chain and len(chain) == 3 and chain[0] == "self" and chain[1] in RECEIVERS:
                names.add(f"{RECEIVERS[chain[1]]}.{chain[2]}")
    return names


def planned_names(version: str) -> set[str]:
    """Enum members the build plans of this release ask for by name."""
    from edgefkd.errors import InputError
    from edgefkd.exporters.trt_plan import plan_build

    names = {"BuilderFlag.GPU_FALLBACK"}
    for precision, source in (("fp32", "fp32"), ("fp16", "fp16"), ("fp16", "fp32"), ("int8", "qdq"), ("int8", "fp32")):
        for implicit in (False, True):
            try:
                plan = plan_build(version, precision, source, implicit)
            except InputError:
                continue
            names |= {f"NetworkDefinitionCreationFlag.{f}" for f in plan.network_flags}
            names |= {f"BuilderFlag.{f}" for f in plan.builder_flags}
    return names


CHILD = r"""
import json, sys
import tensorrt as trt
required, release = json.loads(sys.argv[1]), sys.argv[2]
missing = []
for name in required:
    obj = trt
    for part in name.split("."):
        if not hasattr(obj, part):
            missing.append(name)
            break
        obj = getattr(obj, part)
result = {"version": trt.__version__, "missing": missing}
if hasattr(trt, "IInt8EntropyCalibrator2"):
    from edgefkd.exporters.trt_build import entropy_calibrator
    calibrator = entropy_calibrator(trt, "TRT-8601-EntropyCalibration2\ninput: 3c010204\n", 8)
    result["calibrator"] = {
        "is_trt_calibrator": isinstance(calibrator, trt.IInt8Calibrator),
        "algorithm": str(calibrator.get_algorithm()),
        "batch_size": calibrator.get_batch_size(),
        "cache_header": calibrator.read_calibration_cache().split(b"\n")[0].decode(),
        "first_get_batch": calibrator.get_batch(["input"]),
        "asked": calibrator.asked,
    }
from edgefkd.exporters.trt_build import build_unavailable_reason
from edgefkd.runners.tensorrt_runner import CudaUnusable
try:
    result["cuda"] = "deferred: " + str(build_unavailable_reason(0))
except CudaUnusable as exc:
    result["cuda"] = "CudaUnusable: " + str(exc)
print("RESULT " + json.dumps(result))
"""


@pytest.fixture(scope="module")
def bindings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trt-bindings")


def test_scan_finds_the_calls_edgefkd_makes() -> None:
    """The scanner itself: it must see the calls the build and the runner depend on."""
    names = used_names()
    assert {"Builder.build_serialized_network", "IBuilderConfig.set_timing_cache", "Runtime.DLA_core",
            "Runtime.deserialize_cuda_engine", "IExecutionContext.execute_async_v3", "Logger.WARNING",
            "IInt8EntropyCalibrator2", "ITimingCache.serialize", "OnnxParser.parse_from_file"} <= names


@pytest.mark.trt_bindings
@pytest.mark.parametrize("release", list(trt_bindings.RELEASES))
def test_every_tensorrt_name_exists_in_the_real_module(release: str, bindings_dir: Path) -> None:
    prepared = trt_bindings.prepare(release, bindings_dir)
    if isinstance(prepared, str):
        pytest.skip(prepared)
    site, libs = prepared
    family = "11" if release.startswith("11") else release.split(".")[0]
    required = used_names() | planned_names(release)
    if family == "11":
        required -= CALIBRATION_ONLY
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}", "LD_LIBRARY_PATH": str(libs)}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(sorted(required - OPTIONAL)), release],
                          env=env, capture_output=True, text=True, timeout=120)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert line, proc.stderr[-3000:]
    result = json.loads(line[len("RESULT "):])
    assert result["version"].startswith(release)
    assert result["missing"] == [], f"TensorRT {release} lacks {result['missing']}"
    if family != "11":
        calibrator = result["calibrator"]
        assert calibrator["is_trt_calibrator"] and calibrator["algorithm"].endswith("ENTROPY_CALIBRATION_2")
        assert calibrator["batch_size"] == 8 and calibrator["cache_header"] == "TRT-8601-EntropyCalibration2"
        assert calibrator["first_get_batch"] is None and calibrator["asked"] is True
    # cuda-python is not in the test environment: TensorRT importable + no CUDA must be loud.
    assert result["cuda"].startswith("CudaUnusable: TensorRT is installed but cuda-python is not"), result["cuda"]
