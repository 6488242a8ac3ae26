"""Helpers for the per-format tests: an ExportContext for a loaded student, and a user factory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from edgefkd.formats.base import ExportContext
from edgefkd.models.loading import LoadedStudent

#: A user's own architecture: PReLU, a non-square 112x96 input and a fixed-size head.
PRELU_112X96 = textwrap.dedent(
    """
    import torch
    from torch import nn

    class TinyFaceNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.PReLU(16),
                nn.Conv2d(16, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.PReLU(32),
            )
            self.head = nn.Linear(32 * 28 * 24, 64)

        def forward(self, x):
            return self.head(torch.flatten(self.body(x), 1))

    def tiny(**kwargs):
        torch.manual_seed(0)
        return TinyFaceNet()
    """
)


def write_user_arch(root: Path) -> tuple[Path, str]:
    """(checkpoint, --arch spec) of the PReLU 112x96 factory, saved with a DDP prefix."""
    import importlib.util

    import torch

    arch = root / "tiny_student.py"
    arch.write_text(PRELU_112X96)
    spec = importlib.util.spec_from_file_location("tiny_student_for_format_tests", arch)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    net = module.tiny()
    ckpt = root / "tiny.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, ckpt)
    return ckpt, f"{arch}:tiny"


def save_torchscript(student: LoadedStudent, path: Path) -> Path:
    """A traced TorchScript copy of a loaded student (what a user exports with torch.jit)."""
    import torch

    example = torch.from_numpy(student.contract.example_input(1))
    torch.jit.trace(student.module, example).save(str(path))
    return path


def export_context(student: LoadedStudent, stage: Path, keep_fp: tuple[str, ...] = ()) -> ExportContext:
    meta = {
        "edgefkd.model": student.name,
        "edgefkd.arch": student.arch,
        "edgefkd.embedding_size": str(student.embedding_size),
        "edgefkd.checkpoint_sha256": student.checkpoint_sha256,
        **student.contract.to_metadata(),
    }
    stage.mkdir(parents=True, exist_ok=True)
    return ExportContext(
        module=student.module, contract=student.contract, fp32_onnx=stage / "unused.onnx", stage=stage,
        metadata=meta, calibration_faces=lambda: np.zeros((0, *student.contract.input_size, 3), np.uint8),
        keep_fp=keep_fp,
    )
