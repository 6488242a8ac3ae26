"""Every checkpoint form a training run leaves behind, derived from the real shared weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgefkd.errors import CheckpointError, InputError
from edgefkd.models.loading import load_student

ARCH = "mobilefacenet-foamliu"


@pytest.fixture(scope="module")
def real_state(mobilefacenet_pt: Path) -> dict[str, torch.Tensor]:
    return torch.load(mobilefacenet_pt, weights_only=True, map_location="cpu")


@pytest.fixture(scope="module")
def reference_output(mobilefacenet_pt: Path) -> tuple[torch.Tensor, torch.Tensor]:
    student = load_student(mobilefacenet_pt, ARCH)
    x = torch.from_numpy(student.contract.example_input(3, seed=7))
    with torch.inference_mode():
        return x, student.module(x)


def _prefixed(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in sd.items()}


FORMS = {
    "plain": lambda sd: sd,
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 12},
    "model": lambda sd: {"model": sd, "optimizer_step": 3},
    "net_state_dict": lambda sd: {"net_state_dict": sd, "acc": 0.99},
    "backbone": lambda sd: {"backbone": sd, "head": {"weight": torch.zeros(10, 128)}},
    "model_ema": lambda sd: {"model_ema": sd, "epoch": 3},
    "module_prefix": lambda sd: _prefixed(sd, "module."),
    "orig_mod_prefix": lambda sd: _prefixed(sd, "_orig_mod."),
    "backbone_prefix_with_head": lambda sd: {**_prefixed(sd, "backbone."), "head.kernel": torch.zeros(128, 10)},
    "ddp_compiled_nested": lambda sd: {"state_dict": _prefixed(sd, "module._orig_mod.")},
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_checkpoint_form_loads_to_identical_outputs(form: str, tmp_path: Path, real_state, reference_output) -> None:
    path = tmp_path / f"{form}.pth"
    torch.save(FORMS[form](real_state), path)
    student = load_student(path, ARCH, strict=True)
    x, expected = reference_output
    with torch.inference_mode():
        assert torch.equal(student.module(x), expected)


def test_shared_checkpoint_was_saved_on_cuda_and_loads_on_cpu(mobilefacenet_pt: Path) -> None:
    # The shared file (legacy, non-zip serialisation) tags its storages 'cuda:0' (see its
    # MODEL.md); without map_location="cpu" it could not load on this machine.
    assert b"cuda" in mobilefacenet_pt.read_bytes()[:200_000]
    student = load_student(mobilefacenet_pt, ARCH)
    assert all(p.device.type == "cpu" for p in student.module.parameters())


def test_missing_and_unexpected_keys_are_listed_strict_and_reported_non_strict(tmp_path: Path, real_state, reference_output) -> None:
    sd = dict(real_state)
    sd.pop("conv3.bias")
    sd["extra.projection.weight"] = torch.zeros(4, 4)
    path = tmp_path / "partial.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"1 missing keys \(conv3\.bias\).*1 unexpected keys \(extra\.projection\.weight\)"):
        load_student(path, ARCH)
    student = load_student(path, ARCH, strict=False)
    assert student.missing_keys == ["conv3.bias"] and student.unexpected_keys == ["extra.projection.weight"]
    assert any("missing" in w and "conv3.bias" in w for w in student.warnings)


def test_wrong_architecture_reports_shape_mismatches(mobilefacenet_pt: Path) -> None:
    with pytest.raises(CheckpointError, match="shares no parameter names|shape mismatches|missing keys"):
        load_student(mobilefacenet_pt, "iresnet18")


def test_pickle_needing_code_execution_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": Payload()}, path)
    with pytest.raises(CheckpointError, match="code execution"):
        load_student(path, ARCH)
    assert not marker.exists()


def test_torchscript_and_torch_export_load_without_arch(tmp_path: Path, mobilefacenet_pt: Path, reference_output) -> None:
    student = load_student(mobilefacenet_pt, ARCH)
    x, expected = reference_output
    scripted = tmp_path / "student_ts.pt"
    torch.jit.trace(student.module, x).save(str(scripted))
    program = tmp_path / "student.pt2"
    torch.export.save(
        torch.export.export(student.module, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},)),
        str(program),
    )
    for path in (scripted, program):
        loaded = load_student(path, mean="123.675,116.28,103.53", std="58.395,57.12,57.375")
        assert loaded.arch in ("torchscript", "torch.export")
        assert loaded.contract.mean == student.contract.mean
        with torch.inference_mode():
            np.testing.assert_allclose(loaded.module(x).numpy(), expected.numpy(), atol=1e-5)


def test_registered_arch_rejects_an_input_size_it_cannot_take(mobilefacenet_pt: Path) -> None:
    with pytest.raises(InputError, match="only takes 112x112"):
        load_student(mobilefacenet_pt, "iresnet50", input_size="112x96")
