"""Generated trtexec scripts run against a trtexec stand-in, the 8.6 calibration cache computed
from real faces, hostile paths, and the timing-cache checks (no TensorRT needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_tensorrt_bundle import CONTRACT, make_export, script_args
from trt_graphs import dynamic_batch_copy

from edgefkd.errors import ExportError, InputError
from edgefkd.exporters import trt_calib_cache as calib_cache
from edgefkd.exporters.tensorrt import TensorRTOptions, export_tensorrt
from edgefkd.exporters.trt_build import save_timing_cache, set_timing_cache
from edgefkd.fileio import sha256_file
from edgefkd.manifest import ArtifactEntry, Manifest
from edgefkd.runners.tensorrt_runner import tensorrt_unavailable_reason

CALIB_FACES = 8


@pytest.fixture(scope="module", autouse=True)
def no_tensorrt() -> None:
    if tensorrt_unavailable_reason() is None:
        pytest.skip("TensorRT is installed here; these tests cover the machine without it")


@pytest.fixture(scope="module")
def implicit_export(mobilefacenet_upstream_onnx: Path, faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export with the bundle for 8.6 implicit INT8, its cache computed from real faces."""
    root = tmp_path_factory.mktemp("implicit")
    onnx = dynamic_batch_copy(mobilefacenet_upstream_onnx, root / "dyn.onnx")
    export_dir, manifest = make_export(root / "export", {"fp32": onnx})
    export_tensorrt(export_dir, manifest, ["int8"],
                    TensorRTOptions(implicit_int8=True, calib_source=str(faces_dir), calib_limit=CALIB_FACES))
    return export_dir


def trtexec_stand_in(tmp_path: Path, banner_version: str) -> tuple[dict[str, str], Path]:
    """PATH with a `trtexec` that prints TensorRT's banner for --help and records its arguments."""
    bin_dir = tmp_path / f"bin{banner_version}"
    bin_dir.mkdir()
    record = tmp_path / f"args{banner_version}.txt"
    (bin_dir / "trtexec").write_text(
        f'#!/usr/bin/env bash\n[ "$1" = --help ] && {{ echo "&&&& RUNNING TensorRT.trtexec [TensorRT v{banner_version}] # trtexec --help"; exit 0; }}\n'
        f'printf "%s\\n" "$@" > {record}\n')
    (bin_dir / "trtexec").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, record


def test_calibration_cache_is_real_and_keyed(implicit_export: Path, faces_dir: Path) -> None:
    import onnx

    from edgefkd.calib import load_calibration_faces

    bundle = implicit_export / "tensorrt"
    record = json.loads((bundle / "calib_int8.json").read_text())
    onnx_path = implicit_export / "model_fp32.onnx"
    faces = load_calibration_faces(str(faces_dir), (112, 112), limit=CALIB_FACES)
    assert record["onnx_sha256"] == sha256_file(onnx_path) and record["method"] == "entropy"
    assert record["calibration_sha256"] == calib_cache.faces_fingerprint(faces)
    expected_tensors = calib_cache.activation_tensors(onnx.load(str(onnx_path)))
    for version in (8601, 8602):
        header, scales = calib_cache.parse_cache((bundle / f"calib_int8_trt{version}.cache").read_text())
        assert header == version and list(scales) == expected_tensors
        assert all(s > 0 for s in scales.values())
        np.testing.assert_allclose(list(scales.values()), list(record["scales"].values()), rtol=1e-6)
    # The input's entropy threshold lies within the faces' real range (amax = scale * 127).
    x = CONTRACT.prepare(faces)
    input_name = expected_tensors[0]
    assert 0 < record["scales"][input_name] * 127 <= np.abs(x).max() * (1 + 1e-6)


def test_implicit_script_picks_the_cache_of_the_running_release(implicit_export: Path, tmp_path: Path) -> None:
    script = implicit_export / "tensorrt" / "build_int8_implicit_trt8.sh"
    assert "--calib=$calib" in script_args(script)
    env, record = trtexec_stand_in(tmp_path, "8602")
    subprocess.run(["bash", str(script)], check=True, env=env, cwd=tmp_path)
    args = record.read_text().splitlines()
    assert args[0] == "--onnx=model_fp32.onnx" and "--calib=tensorrt/calib_int8_trt8602.cache" in args
    assert {"--int8", "--fp16"} <= set(args)


@pytest.mark.parametrize("banner, message", [("100300", "this script is for TensorRT 8.6"),
                                             ("8603", "no calibration cache for TensorRT 8603")])
def test_implicit_script_refuses_other_releases(implicit_export: Path, tmp_path: Path, banner: str, message: str) -> None:
    env, record = trtexec_stand_in(tmp_path, banner)
    proc = subprocess.run(["bash", str(implicit_export / "tensorrt" / "build_int8_implicit_trt8.sh")],
                          env=env, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and not record.exists()


def test_stale_cache_is_refused_by_the_script_and_by_build_engine(implicit_export: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from edgefkd.cli import main

    export_dir = tmp_path / "export"
    shutil.copytree(implicit_export, export_dir)
    onnx_path = export_dir / "model_fp32.onnx"
    import onnx

    model = onnx.load(str(onnx_path))
    onnx.helper.set_model_props(model, {"retrained": "yes"})  # the model changed after calibration
    onnx.save(model, str(onnx_path))
    env, record = trtexec_stand_in(tmp_path, "8602")
    proc = subprocess.run(["bash", str(export_dir / "tensorrt" / "build_int8_implicit_trt8.sh")],
                          env=env, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and "changed since the calibration cache was computed" in proc.stderr and not record.exists()
    # The manifest's hash check would refuse the changed ONNX first; past it, the cache key must.
    assert main(["build-engine", str(export_dir), "--precision", "int8", "--implicit-int8"]) == 2
    assert "does not match the sha256 in the manifest" in capsys.readouterr().err
    assert main(["build-engine", str(export_dir), "--precision", "int8", "--implicit-int8", "--no-verify-hash"]) == 2
    assert "refusing the stale calibration cache" in capsys.readouterr().err


def test_implicit_int8_without_faces_or_cache_is_refused(tmp_path: Path, mobilefacenet_upstream_onnx: Path) -> None:
    export_dir, manifest = make_export(tmp_path / "export", {"fp32": dynamic_batch_copy(mobilefacenet_upstream_onnx, tmp_path / "d.onnx")})
    with pytest.raises(InputError, match="no calibration cache .* pass --calib"):
        export_tensorrt(export_dir, manifest, ["int8"], TensorRTOptions(implicit_int8=True))
    assert not (export_dir / "tensorrt").exists()


def test_control_characters_in_paths_are_refused_and_others_quoted(tmp_path: Path, mobilefacenet_upstream_onnx: Path) -> None:
    source = dynamic_batch_copy(mobilefacenet_upstream_onnx, tmp_path / "d.onnx")
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    for name, refused in (("x\ntouch MARKER\n.onnx", True), ("a b $(touch MARKER) 'c'.onnx", False)):
        shutil.copyfile(source, export_dir / name)
        manifest = Manifest(model={"name": "m", "embedding_size": 128}, preprocess=CONTRACT)
        manifest.upsert(ArtifactEntry.for_file(export_dir, export_dir / name, "onnx", "fp32"))
        if refused:
            with pytest.raises(InputError, match="control character"):
                export_tensorrt(export_dir, manifest, ["fp32"], TensorRTOptions())
            assert not (export_dir / "tensorrt").exists()
            continue
        export_tensorrt(export_dir, manifest, ["fp32"], TensorRTOptions())
        env, record = trtexec_stand_in(tmp_path, "100300")
        subprocess.run(["bash", str(export_dir / "tensorrt" / "build_fp32.sh")], check=True, env=env, cwd=tmp_path)
        assert record.read_text().splitlines()[0] == f"--onnx={name}"
    assert not (tmp_path / "MARKER").exists() and not (export_dir / "MARKER").exists()


def test_dla_cli_defaults_to_a_static_batch(tmp_path: Path, mobilefacenet_upstream_onnx: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from edgefkd.cli import main

    export_dir, _ = make_export(tmp_path / "export", {"fp32": dynamic_batch_copy(mobilefacenet_upstream_onnx, tmp_path / "d.onnx")})
    assert main(["build-engine", str(export_dir), "--precision", "fp16", "--dla-core", "0"]) == 0
    args = script_args(export_dir / "tensorrt" / "build_fp16.sh")
    shapes = [a.split(":", 1)[1] for a in args if a.startswith(("--minShapes", "--optShapes", "--maxShapes"))]
    assert len(set(shapes)) == 1 and shapes[0].startswith("1x") and "--useDLACore=0" in args
    assert main(["build-engine", str(export_dir), "--precision", "fp16", "--dla-core", "0", "--max-batch", "8"]) == 2
    assert "error: DLA runs one static batch" in capsys.readouterr().err


class _TimingCache:
    def __init__(self, data: bytes, fails: bool = False) -> None:
        self.data, self.fails = data, fails

    def serialize(self) -> bytes:
        if self.fails:
            raise RuntimeError("invalid timing cache")
        return self.data


class _BuilderConfigStandIn:
    """The four IBuilderConfig timing-cache calls, with TensorRT's documented return values."""

    def __init__(self, accept: bool, serialize_fails: bool = False) -> None:
        self.accept, self.serialize_fails, self.set_calls = accept, serialize_fails, []

    def create_timing_cache(self, data: bytes) -> _TimingCache:
        return _TimingCache(data, self.serialize_fails)

    def set_timing_cache(self, cache: _TimingCache, ignore_mismatch: bool) -> bool:
        self.set_calls.append(cache.data)
        self.current = cache
        return self.accept or cache.data == b""

    def get_timing_cache(self) -> _TimingCache:
        return self.current


def test_mismatched_timing_cache_is_rebuilt_and_unsavable_one_only_warns(tmp_path: Path) -> None:
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"from another GPU")
    warnings: list[str] = []
    config = _BuilderConfigStandIn(accept=False)
    set_timing_cache(config, timing, warnings.append)
    assert config.set_calls == [b"from another GPU", b""] and "another GPU" in warnings[0]
    failing = _BuilderConfigStandIn(accept=True, serialize_fails=True)
    set_timing_cache(failing, timing, warnings.append)
    save_timing_cache(failing, timing, warnings.append)
    assert "could not save the timing cache" in warnings[-1] and timing.read_bytes() == b"from another GPU"
    refused = _BuilderConfigStandIn(accept=False)
    refused.set_timing_cache = lambda cache, ignore_mismatch: False  # even an empty cache refused
    with pytest.raises(ExportError, match="empty timing cache"):
        set_timing_cache(refused, timing, warnings.append)
