"""The TensorRT bundle where TensorRT is absent, the build-engine command, and the runner.

Tests marked `tensorrt` build real engines; they skip with the reason where TensorRT or a
GPU is missing (everything else here needs neither).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from trt_graphs import dynamic_batch_copy, qdq_graph

from edgefkd.contract import PreprocessContract
from edgefkd.errors import BackendUnavailable, InputError
from edgefkd.exporters.tensorrt import DEFERRED, TensorRTOptions, build_unavailable_reason, export_tensorrt, read_input_spec
from edgefkd.fileio import sha256_file
from edgefkd.manifest import ArtifactEntry, Manifest
from edgefkd.runners.tensorrt_runner import TensorRTRunner, tensorrt_unavailable_reason

CONTRACT = PreprocessContract((112, 112), (127.5,) * 3, (127.5,) * 3, "rgb")


def require_tensorrt_gpu() -> None:
    """Skip unless the TensorRT builder and a CUDA GPU are both here."""
    reason = build_unavailable_reason()
    if reason:
        pytest.skip(f"needs TensorRT and an NVIDIA GPU: {reason}")


def make_export(root: Path, onnx_files: dict[str, Path]) -> tuple[Path, Manifest]:
    """An export directory whose manifest lists the given ONNX files by precision."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(model={"name": "mobilefacenet", "embedding_size": 128}, preprocess=CONTRACT)
    for precision, src in onnx_files.items():
        dst = root / f"model_{precision}.onnx"
        shutil.copyfile(src, dst)
        manifest.upsert(ArtifactEntry.for_file(root, dst, "onnx", precision))
    manifest.write(root)
    return root, manifest


def script_args(script: Path) -> list[str]:
    """The trtexec argument list a command file runs."""
    text = script.read_text().replace("\\\n", " ")
    line = next(l for l in text.splitlines() if l.startswith("trtexec"))
    return shlex.split(line)


@pytest.fixture(scope="module")
def dynamic_onnx(mobilefacenet_upstream_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dynamic_batch_copy(mobilefacenet_upstream_onnx, tmp_path_factory.mktemp("dyn") / "mobilefacenet_dyn.onnx")


@pytest.fixture()
def no_tensorrt() -> None:
    if tensorrt_unavailable_reason() is None:
        pytest.skip("TensorRT is installed here; these tests cover the machine without it")


def test_bundle_for_dynamic_batch_onnx(tmp_path: Path, dynamic_onnx: Path, no_tensorrt: None) -> None:
    export_dir, manifest = make_export(tmp_path / "export", {"fp32": dynamic_onnx})
    options = TensorRTOptions(min_batch=2, opt_batch=16, max_batch=64, workspace_mib=512)
    entries = export_tensorrt(export_dir, manifest, ["fp32", "fp16"], options)

    spec = read_input_spec(export_dir / "model_fp32.onnx")
    dims = "x".join(str(d) for d in spec.sample_dims)
    bundle = export_dir / "tensorrt"
    assert sorted(p.name for p in bundle.iterdir()) == sorted([
        "README.md", "compat.json", "compat.md", "build_fp32.sh", "build_fp32_trt8.sh", "build_fp16.sh",
        "mobilefacenet_fp32.engine.json", "mobilefacenet_fp16.engine.json",
    ])
    shapes = [f"--minShapes={spec.name}:2x{dims}", f"--optShapes={spec.name}:16x{dims}", f"--maxShapes={spec.name}:64x{dims}"]
    tail = ["--memPoolSize=workspace:512M", "--timingCacheFile=tensorrt/timing.cache", "--skipInference"]
    head = ["trtexec", "--onnx=model_fp32.onnx"]
    assert script_args(bundle / "build_fp32.sh") == head + ["--saveEngine=tensorrt/mobilefacenet_fp32.engine", *shapes, "--stronglyTyped", *tail]
    assert script_args(bundle / "build_fp32_trt8.sh") == head + ["--saveEngine=tensorrt/mobilefacenet_fp32.engine", *shapes, *tail]
    # No fp16 ONNX in this export: TensorRT 8.6/10 use the FP16 flag, 11 cannot build it.
    assert script_args(bundle / "build_fp16.sh") == head + ["--saveEngine=tensorrt/mobilefacenet_fp16.engine", *shapes, "--fp16", *tail]

    assert [e.extra["status"] for e in entries] == [DEFERRED, DEFERRED]
    assert all("TensorRT is not installed" in e.extra["reason"] for e in entries)
    fp16 = entries[1]
    assert list(fp16.extra["not_buildable"]) == ["11"] and "fp16 ONNX" in fp16.extra["not_buildable"]["11"]
    assert fp16.extra["build_command"].startswith("edgefkd build-engine . --precision fp16 --min-batch 2 --opt-batch 16 --max-batch 64 --workspace 512")

    sidecar = json.loads((bundle / "mobilefacenet_fp32.engine.json").read_text())
    assert PreprocessContract.from_dict(sidecar["preprocess"]) == CONTRACT
    assert sidecar["source_onnx"]["sha256"] == sha256_file(export_dir / "model_fp32.onnx")
    assert sidecar["profile"] == {"input": spec.name, "min": [2, *spec.sample_dims], "opt": [16, *spec.sample_dims], "max": [64, *spec.sample_dims]}
    assert sidecar["status"] == DEFERRED and sidecar["build"] is None
    compat = json.loads((bundle / "compat.json").read_text())
    assert [m["onnx"] for m in compat["models"]] == ["model_fp32.onnx"]
    assert "edgefkd build-engine . --precision fp32,fp16" in (bundle / "README.md").read_text()


def test_bundle_for_upstream_fixed_batch_onnx(tmp_path: Path, mobilefacenet_upstream_onnx: Path, no_tensorrt: None) -> None:
    export_dir, manifest = make_export(tmp_path / "export", {"fp32": mobilefacenet_upstream_onnx})
    export_tensorrt(export_dir, manifest, ["fp32"], TensorRTOptions())
    args = script_args(export_dir / "tensorrt" / "build_fp32.sh")
    assert not any(a.startswith(("--minShapes", "--optShapes", "--maxShapes")) for a in args)  # static input
    sidecar = json.loads((export_dir / "tensorrt" / "mobilefacenet_fp32.engine.json").read_text())
    spec = read_input_spec(mobilefacenet_upstream_onnx)
    assert spec.fixed_batch == 1 and sidecar["profile"] == {"input": spec.name, "fixed": [1, *spec.sample_dims]}
    compat = json.loads((export_dir / "tensorrt" / "compat.json").read_text())["models"][0]
    assert "fixed-batch" in {f["code"] for f in compat["findings"] if f["severity"] == "warning"}


def test_int8_from_qdq_onnx_on_dla(tmp_path: Path, dynamic_onnx: Path, no_tensorrt: None) -> None:
    """DLA: one static batch, TensorRT 10/11 scripts only (8.6's DLA cannot run Q/DQ), and the
    11.x script refuses 11.0-11.3, which have no DLA."""
    qdq = qdq_graph(tmp_path / "qdq.onnx")
    export_dir, manifest = make_export(tmp_path / "export", {"fp32": dynamic_onnx, "int8": qdq})
    entries = export_tensorrt(export_dir, manifest, ["int8"], TensorRTOptions(min_batch=4, opt_batch=4, max_batch=4, dla_core=1))
    bundle = export_dir / "tensorrt"
    strongly = script_args(bundle / "build_int8.sh")
    assert strongly[1] == "--onnx=model_int8.onnx" and "--stronglyTyped" in strongly and "--int8" not in strongly
    assert {"--minShapes=x:4x3x8x8", "--optShapes=x:4x3x8x8", "--maxShapes=x:4x3x8x8"} <= set(strongly)
    assert strongly[-3:] == ["--useDLACore=1", "--allowGPUFallback", "--skipInference"]
    assert not (bundle / "build_int8_trt8.sh").exists()
    assert "explicit (Q/DQ) INT8" in entries[0].extra["not_buildable"]["8.6"]
    assert 'if [ "$major" -eq 11 ] && [ "$minor" -lt 4 ]' in (bundle / "build_int8.sh").read_text()


def test_command_file_runs_trtexec_from_the_export_dir(tmp_path: Path, dynamic_onnx: Path, no_tensorrt: None) -> None:
    """Run the generated script with a trtexec stand-in that records its arguments."""
    export_dir, manifest = make_export(tmp_path / "export", {"fp32": dynamic_onnx})
    export_tensorrt(export_dir, manifest, ["fp32"], TensorRTOptions())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "args.txt"
    (bin_dir / "trtexec").write_text(
        '#!/usr/bin/env bash\n[ "$1" = --help ] && { echo "&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --help"; exit 0; }\n'
        f'pwd > {record}\nprintf "%s\\n" "$@" >> {record}\n')
    (bin_dir / "trtexec").chmod(0o755)
    script = export_dir / "tensorrt" / "build_fp32.sh"
    subprocess.run(["bash", str(script)], check=True, cwd=tmp_path, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    cwd, *argv = record.read_text().splitlines()
    assert Path(cwd) == export_dir.resolve()
    assert ["trtexec", *argv] == script_args(script)
    assert (export_dir / argv[0].split("=", 1)[1]).is_file()  # --onnx resolves from there


def test_impossible_request_writes_nothing(tmp_path: Path, dynamic_onnx: Path) -> None:
    export_dir, manifest = make_export(tmp_path / "export", {"fp32": dynamic_onnx})
    with pytest.raises(InputError, match="Q/DQ ONNX"):
        export_tensorrt(export_dir, manifest, ["fp16", "int8"], TensorRTOptions())
    assert not (export_dir / "tensorrt").exists()


def test_build_engine_cli_defers_and_updates_manifest(tmp_path: Path, dynamic_onnx: Path, no_tensorrt: None, capsys: pytest.CaptureFixture[str]) -> None:
    from edgefkd.cli import main

    export_dir, _ = make_export(tmp_path / "export", {"fp32": dynamic_onnx})
    assert main(["build-engine", str(export_dir), "--precision", "fp32,fp16", "--max-batch", "16"]) == 0
    out = capsys.readouterr().out
    assert f"run on the target: edgefkd build-engine {export_dir} --precision fp32,fp16 --max-batch 16" in out.replace("--min-batch 1 --opt-batch 8 ", "")
    manifest = Manifest.read(export_dir)
    engines = manifest.find("tensorrt")
    assert [(e.precision, e.extra["status"]) for e in engines] == [("fp32", DEFERRED), ("fp16", DEFERRED)]
    assert manifest.find("onnx", "fp32")  # the ONNX entry is kept
    # Running it again refreshes rather than duplicates.
    assert main(["build-engine", str(export_dir), "--precision", "fp16"]) == 0
    assert len(Manifest.read(export_dir).find("tensorrt")) == 2


def test_build_engine_cli_bad_input_is_one_line(tmp_path: Path, dynamic_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgefkd.cli import main

    export_dir, _ = make_export(tmp_path / "export", {"fp32": dynamic_onnx})
    assert main(["build-engine", str(export_dir), "--min-batch", "9"]) == 2
    assert main(["build-engine", str(export_dir), "--precision", "int8"]) == 2
    err = capsys.readouterr().err
    assert "error: batch profile needs 1 <= min <= opt <= max, got 9/8/32" in err
    assert "error: cannot build the int8 engine: INT8 builds from the Q/DQ ONNX" in err
    assert "Traceback" not in err
    assert not (export_dir / "tensorrt").exists()


def test_runner_without_tensorrt_says_why(tmp_path: Path, dynamic_onnx: Path, no_tensorrt: None) -> None:
    from edgefkd.runners import open_runner

    export_dir, manifest = make_export(tmp_path / "export", {"fp32": dynamic_onnx})
    export_tensorrt(export_dir, manifest, ["fp32"], TensorRTOptions())
    engine = export_dir / "tensorrt" / "mobilefacenet_fp32.engine"
    engine.write_bytes(b"\0" * 16)  # stands in for an engine file copied from a target
    with pytest.raises(BackendUnavailable, match="TensorRT is not installed"):
        open_runner(engine)  # the contract comes from the sidecar; TensorRT is what is missing
    with pytest.raises(BackendUnavailable, match="TensorRT is not installed"):
        TensorRTRunner(engine)


@pytest.mark.tensorrt
def test_real_engine_matches_onnxruntime(tmp_path: Path, dynamic_onnx: Path) -> None:
    """Build fp32 and fp16 engines with the installed TensorRT and compare embeddings."""
    require_tensorrt_gpu()
    import onnxruntime as ort

    from edgefkd.manifest import Manifest as M

    export_dir, manifest = make_export(tmp_path / "export", {"fp32": dynamic_onnx})
    entries = export_tensorrt(export_dir, manifest, ["fp32", "fp16"], TensorRTOptions(max_batch=8, opt_batch=4))
    assert [e.extra["status"] for e in entries] == ["built", "built"]
    assert (export_dir / "tensorrt" / "timing.cache").stat().st_size > 0
    x = CONTRACT.example_input(5)
    session = ort.InferenceSession(str(export_dir / "model_fp32.onnx"), providers=["CPUExecutionProvider"])
    reference = session.run(None, {session.get_inputs()[0].name: x})[0]
    for entry in entries:
        with TensorRTRunner(export_dir / entry.path) as runner:
            emb = runner.infer(x)
            assert min(runner.compute_times_ms(x, iterations=3)) > 0 and min(runner.end_to_end_times_ms(x, iterations=3)) > 0
        cos = np.sum(emb * reference, 1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(reference, axis=1))
        assert cos.min() > (0.9999 if entry.precision == "fp32" else 0.999)
        assert json.loads((export_dir / (entry.path + ".json")).read_text())["build"]["gpu"]
    assert M.read(export_dir)  # still a valid manifest directory


def test_bundle_from_the_real_export(mobilefacenet_export: Path, tmp_path: Path, no_tensorrt: None) -> None:
    """The lead's export (dynamic-batch ONNX with the contract, plus an fp16 ONNX): fp16 is
    strongly typed from the fp16 ONNX, for every TensorRT version."""
    export_dir = tmp_path / "export"
    shutil.copytree(mobilefacenet_export, export_dir)
    manifest = Manifest.read(export_dir)
    entries = export_tensorrt(export_dir, manifest, ["fp32", "fp16"], TensorRTOptions())
    fp16_onnx = manifest.find("onnx", "fp16")[0].path
    spec = read_input_spec(export_dir / fp16_onnx)
    assert spec.batch_dynamic
    fp16 = entries[1]
    assert fp16.extra["source_onnx"] == fp16_onnx and fp16.extra["not_buildable"] == {}
    args = script_args(export_dir / "tensorrt" / "build_fp16.sh")
    dims = "x".join(str(d) for d in spec.sample_dims)
    assert args[:3] == ["trtexec", f"--onnx={fp16_onnx}", f"--saveEngine={fp16.path}"]
    assert args[3:7] == [f"--minShapes={spec.name}:1x{dims}", f"--optShapes={spec.name}:8x{dims}", f"--maxShapes={spec.name}:32x{dims}", "--stronglyTyped"]
    sidecar = json.loads((export_dir / (fp16.path + ".json")).read_text())
    assert PreprocessContract.from_dict(sidecar["preprocess"]) == manifest.preprocess
    compat = json.loads((export_dir / "tensorrt" / "compat.json").read_text())["models"]
    assert all(m["summary"]["error"] == 0 for m in compat)
