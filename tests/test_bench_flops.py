"""The ONNX MAC counter: a hand-built graph, and the real MobileFaceNet against torch hooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefkd.bench.flops import count_onnx_macs
from edgefkd.errors import InputError


def _tiny_graph(path: Path) -> None:
    """Conv 3->8 k3 stride1 pad1 on 1x3x10x10, depthwise 8 k3 no pad, GAP, Gemm 8->4 (dynamic batch)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1 = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w1")
    w2 = numpy_helper.from_array(np.zeros((8, 1, 3, 3), np.float32), "w2")
    w3 = numpy_helper.from_array(np.zeros((4, 8), np.float32), "w3")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], group=8),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w3"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [w1, w2, w3],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(model, str(path))


def test_hand_counted_graph(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    _tiny_graph(path)
    count = count_onnx_macs(path)
    conv1 = 8 * 10 * 10 * 3 * 3 * 3  # out channels * out pixels * (in/group) * k*k
    depthwise = 8 * 8 * 8 * 1 * 3 * 3  # 10x10 -> 8x8 without padding
    gemm = 4 * 8
    assert count.macs_by_op == {"Conv": conv1 + depthwise, "Gemm": gemm}
    assert count.macs == conv1 + depthwise + gemm and count.flops == 2 * count.macs


def test_mobilefacenet_matches_torch_module(mobilefacenet_pt: Path, mobilefacenet_upstream_onnx: Path) -> None:
    """MACs of the upstream ONNX equal those counted with hooks on the PyTorch module."""
    import torch

    from edgefkd.models.loading import load_student

    student = load_student(mobilefacenet_pt, "mobilefacenet-foamliu")
    macs = 0

    def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, torch.nn.Conv2d):
            macs += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, torch.nn.Linear):
            macs += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in student.module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode():
        student.module(torch.from_numpy(student.contract.example_input(1)))
    for handle in handles:
        handle.remove()
    assert count_onnx_macs(mobilefacenet_upstream_onnx).macs == macs


def test_not_onnx_is_input_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf")
    with pytest.raises(InputError):
        count_onnx_macs(junk)
    with pytest.raises(InputError, match="not found"):
        count_onnx_macs(tmp_path / "absent.onnx")
