"""NCNN (.ncnn.param/.bin via pnnx, run by the ncnn package) on the real MobileFaceNet and faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from edgefkd.contract import PreprocessContract
from edgefkd.errors import ExportError, InputError
from edgefkd.exporters.validate import compare_runners
from edgefkd.formats.ncnn import FORMAT, bin_path
from edgefkd.imaging import list_images, load_faces
from edgefkd.models.loading import load_student
from edgefkd.runners.torch_runner import TorchRunner
from format_support import export_context, save_torchscript

pytest.importorskip("ncnn", reason="the ncnn extra is not installed: pip install 'edgefkd[ncnn]'")


@pytest.fixture(scope="module")
def mobilefacenet(mobilefacenet_pt: Path):
    return load_student(mobilefacenet_pt, "mobilefacenet-foamliu")


@pytest.fixture(scope="module")
def exported(mobilefacenet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ctx = export_context(mobilefacenet, tmp_path_factory.mktemp("ncnn-stage"))
    return {p: FORMAT.export(ctx, p) for p in FORMAT.precisions}


@pytest.fixture(scope="module")
def faces(faces_dir: Path):
    return load_faces(list_images(faces_dir)[:16], (112, 112))


def parity(student, artifact: Path, precision: str, faces) -> dict:
    with TorchRunner(student.module, student.contract) as reference, FORMAT.runner(artifact, student.contract, precision, threads=2) as runner:
        return compare_runners(reference, runner, faces, (1, 8))


@pytest.mark.parametrize("precision,bar", [("fp32", 0.99999), ("fp16", 0.9999)])
def test_ncnn_matches_pytorch_on_real_faces(mobilefacenet, exported, faces, precision: str, bar: float) -> None:
    stats = parity(mobilefacenet, exported[precision], precision, faces)
    assert stats["cosine_min"] >= bar, stats


def test_only_the_ncnn_pair_and_its_sidecar_are_kept(exported) -> None:
    folder = exported["fp32"].parent
    assert sorted(p.name for p in folder.iterdir()) == [
        "model_fp16.ncnn.bin", "model_fp16.ncnn.param", "model_fp16.ncnn.param.json",
        "model_fp32.ncnn.bin", "model_fp32.ncnn.param", "model_fp32.ncnn.param.json",
    ]
    assert FORMAT.companions(exported["fp32"]) == [bin_path(exported["fp32"])]
    # fp16 storage halves the weights file
    assert bin_path(exported["fp16"]).stat().st_size < 0.6 * bin_path(exported["fp32"]).stat().st_size


def test_contract_round_trips_through_the_sidecar(mobilefacenet, exported) -> None:
    for precision, path in exported.items():
        meta = FORMAT.read_metadata(path)
        assert PreprocessContract.from_metadata(meta) == mobilefacenet.contract
        assert meta["edgefkd.precision"] == precision
        assert meta["edgefkd.embedding_size"] == "128"


def test_int8_is_refused_in_one_line(mobilefacenet, tmp_path: Path) -> None:
    assert "int8" not in FORMAT.precisions
    with pytest.raises(InputError, match="ncnn2int8") as err:
        FORMAT.export(export_context(mobilefacenet, tmp_path), "int8")
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("corruption", ["truncated", "not-ncnn", "unknown-layer"])
def test_corrupt_param_gives_one_typed_line(mobilefacenet, exported, tmp_path: Path, corruption: str) -> None:
    param = tmp_path / "model.ncnn.param"
    shutil.copy(bin_path(exported["fp32"]), bin_path(param))
    text = exported["fp32"].read_text()
    param.write_text({
        "truncated": text[: len(text) // 2],
        "not-ncnn": "<html>not a model</html>\n",
        "unknown-layer": text.replace("Convolution ", "Convolutionz ", 1),
    }[corruption])
    with pytest.raises(InputError) as err:
        with FORMAT.runner(param, mobilefacenet.contract, "fp32") as runner:
            runner.infer(mobilefacenet.contract.example_input(1))
    assert "\n" not in str(err.value) and str(param) in str(err.value)


def test_user_factory_with_prelu_and_112x96_input(user_arch, tmp_path: Path, faces_dir: Path) -> None:
    arch_file, ckpt = user_arch
    arch = f"{arch_file}:tiny"
    student = load_student(ckpt, arch, input_size="112x96")
    path = FORMAT.export(export_context(student, tmp_path / "stage"), "fp32")
    faces = load_faces(list_images(faces_dir)[:9], (112, 96))
    assert parity(student, path, "fp32", faces)["cosine_min"] >= 0.99999
    assert "PReLU" in path.read_text()


def test_torchscript_student(mobilefacenet, tmp_path: Path, faces) -> None:
    scripted = save_torchscript(mobilefacenet, tmp_path / "student.torchscript.pt")
    student = load_student(scripted, mean="123.675,116.28,103.53", std="58.395,57.12,57.375")
    path = FORMAT.export(export_context(student, tmp_path / "stage"), "fp16")
    assert parity(student, path, "fp16", faces[:9])["cosine_min"] >= 0.9999


class Unconvertible(torch.nn.Module):
    """cummax has no ncnn layer: pnnx passes it through as a raw aten op."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cummax(self.conv(x).mean((2, 3)), 1)[0]


def test_an_op_ncnn_cannot_run_is_named(mobilefacenet, tmp_path: Path) -> None:
    ctx = export_context(mobilefacenet, tmp_path)
    ctx.module = Unconvertible().eval()
    with pytest.raises(ExportError, match=r"^ncnn: .*aten::cummax") as err:
        FORMAT.export(ctx, "fp32")
    assert "\n" not in str(err.value)
    assert not list(tmp_path.rglob("*.param"))
