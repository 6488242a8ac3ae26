"""`edgefkd export` as a user runs it: bad inputs fail cleanly, user factories work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgefkd.manifest import Manifest


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "edgefkd.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], pattern: str, out_dir: Path) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    import re

    assert re.search(pattern, error_lines[0]), error_lines[0]
    # Nothing half-written: neither the output folder nor a staging folder beside it.
    assert not out_dir.exists()
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(f".{out_dir.name}.")]




def test_user_factory_with_non_square_input_exports_and_validates(tmp_path: Path, user_arch, faces_dir: Path) -> None:
    arch, ckpt = user_arch
    out = tmp_path / "tiny"
    result = run_cli(
        "export", str(ckpt), "--arch", f"{arch}:tiny", "--input-size", "112x96", "--mean", "127.5", "--std", "128",
        "--channel-order", "bgr", "--out", str(out), "--val-images", str(faces_dir),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    manifest = Manifest.read(out)
    assert manifest.preprocess.input_size == (112, 96)
    assert manifest.preprocess.channel_order == "bgr"
    assert manifest.model["embedding_size"] == 64
    assert len(manifest.artifacts) == 4
    assert all(a.parity["cosine_min"] >= 0.999 for a in manifest.artifacts)
    import onnx

    dims = onnx.load(str(out / "onnx" / "model_fp32.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, 112, 96]


def test_existing_output_is_kept_without_force(tmp_path: Path, user_arch, faces_dir: Path) -> None:
    arch, ckpt = user_arch
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_cli("export", str(ckpt), "--arch", f"{arch}:tiny", "--input-size", "112x96", "--out", str(out))
    assert result.returncode == 2 and "--force" in result.stderr
    assert (out / "keep.txt").read_text() == "mine" and len(list(out.iterdir())) == 1


def _bad_cases(tmp: Path, mobilefacenet_pt: Path, user_arch: tuple[Path, Path]) -> dict[str, tuple[list[str], str]]:
    arch, ckpt = user_arch
    not_ckpt = tmp / "notes.pt"
    not_ckpt.write_text("these are not weights\n")
    evil = tmp / "evil.pt"
    marker = tmp / "pwned"
    torch.save({"state_dict": _Evil(marker)}, evil)
    return {
        "missing file": ([str(tmp / "nope.pt"), "--arch", "mobilefacenet-foamliu"], r"checkpoint not found"),
        "not a checkpoint": ([str(not_ckpt), "--arch", "mobilefacenet-foamliu"], r"not a readable PyTorch checkpoint"),
        "code execution": ([str(evil), "--arch", "mobilefacenet-foamliu"], r"code execution.*refused"),
        "wrong arch": ([str(mobilefacenet_pt), "--arch", "mbf"], r"does not fit|does not match|shares no parameter"),
        "unknown arch": ([str(mobilefacenet_pt), "--arch", "mobilefacenet-v9"], r"unknown architecture 'mobilefacenet-v9'"),
        "no arch": ([str(mobilefacenet_pt)], r"pass --arch"),
        "onnx-unfriendly op": ([str(ckpt.with_name("needs_svd.pth")), "--arch", f"{arch}:needs_svd"], r"ONNX export failed.*svd"),
        "output not (N, D)": ([str(ckpt.with_name("spatial.pth")), "--arch", f"{arch}:spatial"], r"output has shape \(2, 8, 112, 112\).*\(N, D\)"),
        "bad input size": ([str(mobilefacenet_pt), "--arch", "mobilefacenet-foamliu", "--input-size", "big"], r"input size must look like"),
        "bad precision": ([str(mobilefacenet_pt), "--arch", "mobilefacenet-foamliu", "--precisions", "fp8"], r"unknown precision"),
        "unknown format": ([str(mobilefacenet_pt), "--arch", "mobilefacenet-foamliu", "--formats", "onnx,tflite2"],
                           r"unknown format \['tflite2'\]; choose from onnx, .*ort"),
        "bad ort target": ([str(mobilefacenet_pt), "--arch", "mobilefacenet-foamliu", "--formats", "ort", "--ort-target", "x86"],
                           r"unknown --ort-target 'x86'; choose arm or amd64"),
    }


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


CASES = ["missing file", "not a checkpoint", "code execution", "wrong arch", "unknown arch", "no arch",
         "onnx-unfriendly op", "output not (N, D)", "bad input size", "bad precision", "unknown format", "bad ort target"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_line_exit_2_and_no_output(case: str, tmp_path: Path, mobilefacenet_pt: Path, user_arch) -> None:
    args, pattern = _bad_cases(tmp_path, mobilefacenet_pt, user_arch)[case]
    out = tmp_path / "out" / "x"
    out.parent.mkdir()
    extra = [] if case == "onnx-unfriendly op" else ["--no-validate"]
    result = run_cli("export", *args, "--out", str(out), *extra)
    assert_clean_failure(result, pattern, out)
    assert not (tmp_path / "pwned").exists()


def test_help_does_not_import_heavy_libraries() -> None:
    code = "import sys; from edgefkd.cli import app; import edgefkd.cli; print(sorted(m for m in ('torch','onnx','openvino','onnxruntime','tensorrt','matplotlib','nncf') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
