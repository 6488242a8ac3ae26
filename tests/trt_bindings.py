"""The genuine TensorRT Python binding modules (8.6, 10.x, 11.x) importable on a CPU host.

The binding wheels on the registry (`tensorrt-bindings`, `tensorrt-cu12-bindings`) hold only
the pybind11 module; it links against libnvinfer / libnvonnxparser / libnvinfer_plugin (and
8.6 against libnvparsers), which are not on the registry. Stand-in libraries compiled here
with `cc` provide the few factory symbols the module links to (all returning null), so the
real module imports and its classes, enums, methods and trampolines can be inspected; any
call into TensorRT's C++ core (creating a Builder or Runtime) fails, as it should.

Wheels are cached outside the repository in $EDGEFKD_TRT_WHEELS (default
~/.cache/edgefkd/trt-wheels) and fetched there with pip when missing and the registry answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("EDGEFKD_TRT_WHEELS", Path.home() / ".cache" / "edgefkd" / "trt-wheels"))
#: release label -> (pip requirement, library soname major)
RELEASES = {
    "8.6.1": ("tensorrt-bindings==8.6.1", 8),
    "10.3.0": ("tensorrt-cu12-bindings==10.3.0", 10),
    "10.16.1": ("tensorrt-cu12-bindings==10.16.1.11", 10),
    "11.4.0": ("tensorrt-cu12-bindings==11.4.0.106", 11),
}
_STUB_C = """
void *createInferBuilder_INTERNAL(void *l, int v) { return 0; }
void *createInferRefitter_INTERNAL(void *e, void *l, int v) { return 0; }
void *createInferRuntime_INTERNAL(void *l, int v) { return 0; }
void *getBuilderPluginRegistry(int c) { return 0; }
void *getPluginRegistry(void) { return 0; }
void *createNvOnnxParser_INTERNAL(void *n, void *l, int v) { return 0; }
void *createNvOnnxParserRefitter_INTERNAL(void *r, void *l, int v) { return 0; }
int getNvOnnxParserVersion(void) { return 0; }
int initLibNvInferPlugins(void *l, const char *ns) { return 1; }
/* 8.6's module also links the UFF/Caffe parsers (C++ names, mangled by hand) */
void *_ZN11nvuffparser15createUffParserEv(void) { return 0; }
void _ZN11nvuffparser8FieldMapC1EPKcPKvNS_9FieldTypeEi(void *t, const char *n, const void *d, int f, int l) {}
void *_ZN14nvcaffeparser117createCaffeParserEv(void) { return 0; }
void _ZN14nvcaffeparser123shutdownProtobufLibraryEv(void) {}
"""
_LIBS = ("nvinfer", "nvonnxparser", "nvinfer_plugin", "nvparsers")


def _wheel(release: str) -> Path | None:
    requirement, _ = RELEASES[release]
    name, version = requirement.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(CACHE.glob(pattern))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                        requirement, "-d", str(CACHE)], check=True, capture_output=True, timeout=180)
    except (subprocess.SubprocessError, OSError):
        return None
    found = sorted(CACHE.glob(pattern))
    return found[0] if found else None


def prepare(release: str, workdir: Path) -> tuple[Path, Path] | str:
    """(python path holding a `tensorrt` package, library dir) or the reason it cannot be had."""
    if not shutil.which("cc"):
        return "no C compiler (cc) to build the stand-in TensorRT libraries"
    wheel = _wheel(release)
    if wheel is None:
        return f"the {RELEASES[release][0]} wheel is not cached in {CACHE} and pip could not fetch it"
    root = workdir / release
    package = root / "site" / "tensorrt"
    libs = root / "lib"
    if not package.is_dir():
        package.mkdir(parents=True)
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if member.startswith("tensorrt_bindings/") and not member.endswith("/"):
                    target = package / member[len("tensorrt_bindings/"):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(member))
        libs.mkdir(parents=True)
        source = root / "stub.c"
        source.write_text(_STUB_C)
        soname = RELEASES[release][1]
        for lib in _LIBS:
            subprocess.run(["cc", "-shared", "-fPIC", "-o", str(libs / f"lib{lib}.so.{soname}"), str(source)], check=True)
    return root / "site", libs
