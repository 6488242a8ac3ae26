"""Version dispatch: TensorRT version string -> build plan (pure, no TensorRT needed)."""

from __future__ import annotations

import pytest

from edgefkd.errors import InputError
from edgefkd.exporters.tensorrt import TensorRTOptions, parse_tensorrt_version, plan_build, tensorrt_family


@pytest.mark.parametrize(
    "version, family",
    [("8.6.1.6", "8.6"), ("8.6.2", "8.6"), ("10.0.1", "10"), ("10.3.0.30", "10"), ("11.0.0", "11"), ("11.4.1", "11"), ("12.0", "11")],
)
def test_family_from_version_string(version: str, family: str) -> None:
    assert tensorrt_family(version) == family


@pytest.mark.parametrize("version", ["8.5.2.2", "7.2.3"])
def test_versions_before_8_6_are_refused(version: str) -> None:
    with pytest.raises(InputError, match="older than 8.6"):
        tensorrt_family(version)


def test_unreadable_version_is_one_clear_error() -> None:
    with pytest.raises(InputError, match="cannot read a TensorRT version"):
        parse_tensorrt_version("unknown")


def test_trt86_uses_builder_flags_and_explicit_batch() -> None:
    fp16 = plan_build("8.6.2", "fp16", "fp32")
    assert (fp16.network_flags, fp16.builder_flags, fp16.strongly_typed) == (("EXPLICIT_BATCH",), ("FP16",), False)
    assert fp16.trtexec_flags == ("--fp16",)
    qdq = plan_build("8.6.2", "int8", "qdq")
    assert qdq.builder_flags == ("INT8", "FP16") and not qdq.calibrator
    implicit = plan_build("8.6.2", "int8", "fp32", implicit_int8=True)
    assert implicit.calibrator and implicit.builder_flags == ("INT8", "FP16")


def test_trt10_is_strongly_typed_from_fp16_and_qdq_onnx() -> None:
    for precision, source in (("fp32", "fp32"), ("fp16", "fp16"), ("int8", "qdq")):
        plan = plan_build("10.3.0", precision, source)
        assert plan.strongly_typed and plan.network_flags == ("STRONGLY_TYPED",)
        assert plan.builder_flags == () and not plan.calibrator
        assert plan.trtexec_flags == ("--stronglyTyped",)


def test_trt10_fp16_from_fp32_onnx_falls_back_to_the_deprecated_flag() -> None:
    plan = plan_build("10.3.0", "fp16", "fp32")
    assert not plan.strongly_typed and plan.builder_flags == ("FP16",) and "deprecated" in plan.note


def test_trt10_has_no_calibrator() -> None:
    with pytest.raises(InputError, match="TensorRT 8.6 INT8 engines only"):
        plan_build("10.3.0", "int8", "fp32", implicit_int8=True)


def test_trt11_never_sets_precision_builder_flags() -> None:
    for precision, source in (("fp32", "fp32"), ("fp16", "fp16"), ("int8", "qdq")):
        plan = plan_build("11.0.0", precision, source)
        assert plan.strongly_typed and plan.builder_flags == ()
    with pytest.raises(InputError, match="no FP16 builder flag"):
        plan_build("11.0.0", "fp16", "fp32")
    with pytest.raises(InputError, match="8.6 INT8 engines only"):
        plan_build("11.0.0", "int8", "fp32", implicit_int8=True)


@pytest.mark.parametrize("family", ["8.6", "10", "11"])
def test_int8_without_qdq_onnx_is_refused(family: str) -> None:
    with pytest.raises(InputError, match="Q/DQ ONNX"):
        plan_build(family, "int8", "fp32")


def test_dla_refuses_fp32_and_mismatched_sources_are_refused() -> None:
    with pytest.raises(InputError, match="DLA runs FP16 and INT8 only"):
        plan_build("8.6", "fp32", "fp32", dla=True)
    with pytest.raises(InputError, match="cannot be built from the qdq ONNX"):
        plan_build("10", "fp16", "qdq")


@pytest.mark.parametrize("batches", [(0, 8, 32), (9, 8, 32), (1, 33, 32)])
def test_profile_must_be_ordered(batches: tuple[int, int, int]) -> None:
    with pytest.raises(InputError, match="min <= opt <= max"):
        TensorRTOptions(*batches)


def test_dla_needs_a_static_batch() -> None:
    with pytest.raises(InputError, match="DLA runs one static batch"):
        TensorRTOptions(dla_core=0)  # the default 1/8/32 range
    assert TensorRTOptions(min_batch=2, opt_batch=2, max_batch=2, dla_core=0).batch_range == (2, 2, 2)


def test_dla_refuses_explicit_int8_on_86_and_trt11_before_11_4() -> None:
    with pytest.raises(InputError, match="8.6's DLA cannot run explicit"):
        plan_build("8.6.2", "int8", "qdq", dla=True)
    assert plan_build("8.6.2", "int8", "fp32", implicit_int8=True, dla=True).calibrator  # implicit INT8 is DLA's 8.6 path
    assert plan_build("10.3.0", "int8", "qdq", dla=True).strongly_typed
    for version in ("11.0.0", "11.3.1"):
        with pytest.raises(InputError, match="has no DLA support"):
            plan_build(version, "fp16", "fp16", dla=True)
    assert plan_build("11.4.0", "fp16", "fp16", dla=True).min_version == (11, 4)
    assert plan_build("11", "int8", "qdq", dla=True).min_version == (11, 4)  # the bundle's 11.x script checks it
    assert plan_build("11", "int8", "qdq").min_version is None


def test_negative_device_is_refused() -> None:
    with pytest.raises(InputError, match="--device"):
        TensorRTOptions(device=-1)


@pytest.mark.parametrize("device, index", [(None, 0), (2, 2), ("1", 1), ("cuda:3", 3), ("GPU.1", 1), ("CPU", 0)])
def test_cuda_device_index(device: object, index: int) -> None:
    from edgefkd.runners.tensorrt_runner import cuda_device_index

    assert cuda_device_index(device) == index


def test_unreadable_cuda_device_is_refused() -> None:
    from edgefkd.runners.tensorrt_runner import cuda_device_index

    with pytest.raises(InputError, match="CUDA device index"):
        cuda_device_index("NPU")
