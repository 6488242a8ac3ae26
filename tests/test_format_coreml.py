"""Core ML (.mlpackage, ML Program) on the real MobileFaceNet.

Core ML predicts only on macOS: here the packages are checked statically (spec, input and
output, precision, metadata); on a Mac the same tests also compare predictions to PyTorch.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from edgefkd.contract import PreprocessContract
from edgefkd.errors import BackendUnavailable, ExportError, InputError, ValidationError
from edgefkd.fileio import artifact_digest
from edgefkd.formats.coreml import FORMAT, NOT_MACOS, check_package, load_spec
from edgefkd.imaging import list_images, load_faces
from edgefkd.models.loading import load_student
from format_support import export_context, save_torchscript

pytest.importorskip("coremltools", reason="the coreml extra is not installed: pip install 'edgefkd[coreml]'")
ON_MAC = sys.platform == "darwin"
BARS = {"fp32": ("cosine_min", 0.99999), "fp16": ("cosine_min", 0.9999), "int8": ("cosine_p1", 0.97)}


@pytest.fixture(scope="module")
def mobilefacenet(mobilefacenet_pt: Path):
    return load_student(mobilefacenet_pt, "mobilefacenet-foamliu")


@pytest.fixture(scope="module")
def exported(mobilefacenet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ctx = export_context(mobilefacenet, tmp_path_factory.mktemp("coreml-stage"))
    return {p: FORMAT.export(ctx, p) for p in ("fp32", "int8")}


def spec_io(path: Path) -> tuple[list[int], list[int], str]:
    spec = load_spec(path)
    return (list(spec.description.input[0].type.multiArrayType.shape),
            list(spec.description.output[0].type.multiArrayType.shape), spec.WhichOneof("Type"))


def check_runs_or_is_skipped_here(student, path: Path, precision: str, faces_dir: Path) -> None:
    """On a Mac: predictions match PyTorch. Elsewhere: the runner says Core ML needs macOS."""
    runner = FORMAT.runner(path, student.contract, precision)
    if not ON_MAC:
        assert FORMAT.available() == NOT_MACOS
        with pytest.raises(BackendUnavailable, match="Core ML runs only on macOS"):
            runner.activate()
        return
    from edgefkd.exporters.validate import compare_runners
    from edgefkd.runners.torch_runner import TorchRunner

    faces = load_faces(list_images(faces_dir)[:16], student.contract.input_size)
    with TorchRunner(student.module, student.contract) as reference, runner:
        stats = compare_runners(reference, runner, faces, (1, 8))
    stat, bar = BARS[precision]
    assert stats[stat] >= bar, stats


def test_packages_are_ml_programs_with_the_contract(mobilefacenet, exported, faces_dir: Path) -> None:
    for precision, path in exported.items():
        assert path.is_dir() and path.name == f"model_{precision}.mlpackage"
        assert spec_io(path) == ([1, 3, 112, 112], [1, 128], "mlProgram")
        meta = FORMAT.read_metadata(path)
        assert PreprocessContract.from_metadata(meta) == mobilefacenet.contract
        assert meta["edgefkd.precision"] == precision
        check_runs_or_is_skipped_here(mobilefacenet, path, precision, faces_dir)
    # nothing but the packages: the save went through a scratch folder that is gone
    assert sorted(p.name for p in exported["fp32"].parent.iterdir()) == ["model_fp32.mlpackage", "model_int8.mlpackage"]


def test_int8_weights_shrink_the_package_and_keep_first_conv_and_head_float(exported) -> None:
    digest32, size32 = artifact_digest(exported["fp32"])
    digest8, size8 = artifact_digest(exported["int8"])
    assert digest32 != digest8
    assert size8 < 0.35 * size32  # int8 weights vs fp32 weights
    program = load_spec(exported["int8"]).mlProgram.functions["main"]
    ops = [op for block in program.block_specializations.values() for op in block.operations]
    quantized = {op.outputs[0].name for op in ops if op.type == "constexpr_affine_dequantize"}
    convs = [op for op in ops if op.type in ("conv", "linear")]
    weight_of = lambda op: op.inputs["weight"].arguments[0].name  # noqa: E731
    assert weight_of(convs[0]) not in quantized and weight_of(convs[-1]) not in quantized
    assert sum(weight_of(op) in quantized for op in convs) >= len(convs) - 10


def test_directory_digest_covers_every_file(exported, tmp_path: Path) -> None:
    copy = shutil.copytree(exported["fp32"], tmp_path / "copy.mlpackage")
    digest, size = artifact_digest(copy)
    assert (digest, size) == artifact_digest(exported["fp32"])
    assert size == sum(p.stat().st_size for p in copy.rglob("*") if p.is_file())
    weights = next(copy.rglob("weight.bin"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert artifact_digest(copy)[0] != digest


def test_static_check_catches_a_wrong_contract(mobilefacenet, exported) -> None:
    other = PreprocessContract((112, 112), (127.5,) * 3, (128.0,) * 3, "bgr")
    with pytest.raises(ValidationError, match="metadata"):
        check_package(exported["fp32"], other, "fp32", 128)
    with pytest.raises(ValidationError, match="embedding size 128"):
        check_package(exported["fp32"], mobilefacenet.contract, "fp32", 512)


@pytest.mark.parametrize("damage", ["no-manifest", "garbage-spec", "a-file"])
def test_corrupt_package_gives_one_typed_line(exported, tmp_path: Path, damage: str) -> None:
    path = tmp_path / "broken.mlpackage"
    if damage == "a-file":
        path.write_bytes(b"not a package")
    else:
        shutil.copytree(exported["fp32"], path)
        if damage == "no-manifest":
            (path / "Manifest.json").unlink()
        else:
            next(path.rglob("model.mlmodel")).write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError) as err:
        FORMAT.read_metadata(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_user_factory_and_torchscript_students(mobilefacenet, user_arch, tmp_path: Path, faces_dir: Path) -> None:
    arch_file, ckpt = user_arch
    arch = f"{arch_file}:tiny"
    tiny = load_student(ckpt, arch, input_size="112x96")
    path = FORMAT.export(export_context(tiny, tmp_path / "tiny"), "fp16")
    assert spec_io(path) == ([1, 3, 112, 96], [1, 64], "mlProgram")
    check_runs_or_is_skipped_here(tiny, path, "fp16", faces_dir)
    scripted = load_student(save_torchscript(tiny, tmp_path / "tiny.torchscript.pt"), input_size="112x96")
    path = FORMAT.export(export_context(scripted, tmp_path / "scripted"), "fp32")
    assert spec_io(path)[:2] == ([1, 3, 112, 96], [1, 64])


def test_an_op_coreml_cannot_convert_is_named(mobilefacenet, tmp_path: Path) -> None:
    import torch

    class NeedsSvd(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.svdvals(x.mean(1))

    ctx = export_context(mobilefacenet, tmp_path)
    ctx.module = NeedsSvd().eval()
    with pytest.raises(ExportError, match=r"^coreml: .*linalg_svdvals") as err:
        FORMAT.export(ctx, "fp16")
    assert "\n" not in str(err.value)
    assert not list(tmp_path.rglob("*.mlpackage"))
