"""ExecuTorch (.pte, XNNPACK) on the real MobileFaceNet and real faces: every precision exported, run
through its runner and judged against PyTorch; contract round-trip; bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from edgefkd.errors import EdgeFKDError, ExportError, InputError
from edgefkd.verify.evaluator import PairAccuracy
from int8_support import real_faces
from format_support import cosine_p1, embed_with, export_context, pair_auc

pytest.importorskip("executorch")

from edgefkd.formats.executorch import FORMAT  # noqa: E402


@pytest.fixture(scope="module")
def student(mobilefacenet_pt: Path):
    from edgefkd.models.loading import load_student

    return load_student(mobilefacenet_pt, "mobilefacenet-foamliu")


@pytest.fixture(scope="module")
def artifacts(student, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ctx = export_context(student, tmp_path_factory.mktemp("executorch"))
    return {precision: FORMAT.export(ctx, precision) for precision in FORMAT.precisions}


@pytest.fixture(scope="module")
def pairs(pairs_csv: Path, student) -> PairAccuracy:
    return PairAccuracy(pairs_csv, student.contract)


@pytest.fixture(scope="module")
def reference(student, pairs: PairAccuracy) -> np.ndarray:
    with torch.no_grad():
        return student.module(torch.from_numpy(pairs.inputs)).numpy()


def _embed(path: Path, student, inputs: np.ndarray) -> np.ndarray:
    return embed_with(FORMAT.runner(path, student.contract, threads=2), inputs)


@pytest.mark.parametrize("precision, bar", [("fp32", 0.99999), ("fp16", 0.9999)])
def test_float_artifacts_match_pytorch(artifacts, student, pairs, reference, precision, bar) -> None:
    embeddings = _embed(artifacts[precision], student, pairs.inputs)
    cosine = np.min(np.sum(embeddings * reference, 1) / np.linalg.norm(embeddings, axis=1) / np.linalg.norm(reference, axis=1))
    assert cosine >= bar, f"{precision}: min cosine {cosine:.6f}"


def test_int8_keeps_face_accuracy(artifacts, student, pairs, reference) -> None:
    embeddings = _embed(artifacts["int8"], student, pairs.inputs)
    assert cosine_p1(reference, embeddings) >= 0.97
    assert abs(pair_auc(embeddings, pairs) - pair_auc(reference, pairs)) <= 0.005
    assert artifacts["int8"].stat().st_size < 0.5 * artifacts["fp32"].stat().st_size


def test_any_batch_size_and_float_io(artifacts, student, faces_dir: Path) -> None:
    inputs = student.contract.prepare(real_faces(faces_dir, (112, 112))[:5])
    runner = FORMAT.runner(artifacts["int8"], student.contract)
    with runner:
        batched = runner.infer(inputs)
        single = np.concatenate([runner.infer(inputs[i : i + 1]) for i in range(len(inputs))])
        assert runner.max_batch == 1  # lowered at batch 1: the runner splits
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_contract_round_trip(artifacts, student) -> None:
    from edgefkd.contract import PreprocessContract

    for precision, path in artifacts.items():
        meta = FORMAT.read_metadata(path)
        assert PreprocessContract.from_metadata(meta) == student.contract
        assert meta["edgefkd.precision"] == precision
        assert FORMAT.companions(path) == [path.with_name(path.name + ".json")]


def test_corrupt_pte_is_one_line_input_error(artifacts, student, tmp_path: Path) -> None:
    bad = tmp_path / "model.pte"
    bad.write_bytes(artifacts["fp32"].read_bytes()[:4096])
    shutil.copy(artifacts["fp32"].with_name("model_fp32.pte.json"), tmp_path / "model.pte.json")
    runner = FORMAT.runner(bad, student.contract)
    with pytest.raises(InputError) as info:
        runner.activate()
    assert "not a readable ExecuTorch program" in str(info.value) and "\n" not in str(info.value)


def test_user_factory_with_prelu_and_non_square_input(user_arch, tmp_path: Path, faces_dir: Path) -> None:
    from edgefkd.models.loading import load_student

    arch, ckpt = user_arch
    student = load_student(ckpt, f"{arch}:tiny", input_size="112x96")
    ctx = export_context(student, tmp_path)
    inputs = student.contract.prepare(real_faces(faces_dir, (112, 96))[:4])
    with torch.no_grad():
        reference = student.module(torch.from_numpy(inputs)).numpy()
    assert cosine_p1(reference, _embed(FORMAT.export(ctx, "fp32"), student, inputs)) >= 0.99999
    assert cosine_p1(reference, _embed(FORMAT.export(ctx, "int8"), student, inputs)) >= 0.97


def test_rejected_op_and_torchscript_are_typed_errors(user_arch, tmp_path: Path) -> None:
    from edgefkd.models.loading import load_student

    arch, ckpt = user_arch
    with pytest.raises(EdgeFKDError) as info:
        FORMAT.export(export_context(load_student(ckpt.with_name("needs_svd.pth"), f"{arch}:needs_svd", input_size="16x16"), tmp_path), "fp32")
    assert "executorch" in str(info.value) and "svd" in str(info.value) and "\n" not in str(info.value)

    scripted = tmp_path / "scripted.pt"
    torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())).save(str(scripted))
    student = load_student(scripted, input_size="8x8")
    with pytest.raises(ExportError, match="TorchScript"):
        FORMAT.export(export_context(student, tmp_path), "fp32")
