"""Verdicts on real INT8 artifacts: the shared pairs cannot resolve a one-pair change, so an INT8
model that moves a pair or two must come out inconclusive (or pass) with its interval, never a
point-estimate fail; and a real distilled student is judged in its teacher's space both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgefkd.cli import main

TEACHER_ARCH = "mobilefacenet-foamliu"
#: the teacher's preprocessing, which the student was distilled with (its MODEL.md)
STUDENT_CONTRACT = dict(input_size="112x112", mean="123.675,116.28,103.53", std="58.395,57.12,57.375", channel_order="rgb")


def _verify(*args: object) -> int:
    return main(["verify-parity", *map(str, args)])


def _rows(report_dir: Path) -> tuple[dict, dict]:
    data = json.loads((report_dir / "report.json").read_text())
    return data, {a["label"]: a for a in data["sets"][0]["artifacts"]}


@pytest.fixture(scope="module")
def qdq_export(tmp_path_factory, mobilefacenet_pt, faces_dir) -> Path:
    """`edgefkd export --formats onnx --precisions fp32,int8` of the shared MobileFaceNet."""
    from edgefkd.exporters.pipeline import ExportOptions, run_export

    out = tmp_path_factory.mktemp("qdq") / "mobilefacenet"
    run_export(ExportOptions(checkpoint=mobilefacenet_pt, arch=TEACHER_ARCH, out=out, formats=("onnx",),
                             precisions=("fp32", "int8"), val_images=faces_dir))
    return out


@pytest.fixture(scope="module")
def student_export(tmp_path_factory, student_dir, faces_dir) -> Path:
    """The distilled student's OpenVINO INT8 (NNCF), as `edgefkd export --precisions int8` makes it."""
    from edgefkd.exporters.pipeline import ExportOptions, run_export

    out = tmp_path_factory.mktemp("student") / "student"
    run_export(ExportOptions(checkpoint=student_dir / "student.pt", arch=f"{student_dir / 'arch.py'}:build", out=out,
                             formats=("openvino",), precisions=("int8",), val_images=faces_dir, **STUDENT_CONTRACT))
    return out


def test_qdq_int8_is_inconclusive_or_pass_never_a_point_fail(qdq_export, pairs_csv, tmp_path):
    report = tmp_path / "r"
    # --inconclusive pass: a run whose only doubt is the set's resolution exits 0.
    assert _verify(qdq_export, "--pairs", pairs_csv, "--report", report, "--inconclusive", "pass") == 0
    data, rows = _rows(report)
    assert rows["onnx/model_fp32.onnx"]["verdict"] == "pass"
    int8 = rows["onnx/model_int8_qdq.onnx"]
    gate = int8["verification"]["verdict"]
    assert int8["verdict"] in ("inconclusive", "pass") and gate["low"] is not None and gate["low"] <= gate["point"] <= gate["high"]
    assert gate["low"] <= 0.5, gate  # the set cannot show that the drop is beyond the gate
    # A pair or two change sides at the reference's threshold: far from significant.
    flips = int8["flips"]["best_accuracy"]
    assert flips["flipped"] <= 3 and flips["mcnemar_p"] > 0.05
    assert data["verdict"] in ("inconclusive", "pass") and data["exit_code"] == 0


def test_distilled_student_int8_and_teacher_space_both_ways(student_export, student_dir, mobilefacenet_pt, pairs_csv,
                                                           tmp_path):
    report = tmp_path / "r"
    # The manifest's arch is a Python file: it runs only when the command line names it.
    code = _verify(student_export, "--pairs", pairs_csv, "--report", report, "--arch", f"{student_dir / 'arch.py'}:build",
                   "--teacher", mobilefacenet_pt, "--teacher-arch", TEACHER_ARCH)
    data, rows = _rows(report)
    int8 = rows["openvino/model_int8.xml"]
    gate = int8["verification"]["verdict"]
    assert int8["verdict"] in ("inconclusive", "pass"), int8["failures"]
    assert gate["low"] is not None and gate["low"] <= 0.5
    assert code == {"pass": 0, "inconclusive": 3}[data["verdict"]]
    # The student's own checkpoint and its INT8: both cross-model directions, each with interval and verdict.
    for block in (data["sets"][0]["reference"]["teacher_space"], int8["teacher_space"]):
        assert set(block["directions"]) == {"teacher_a_student_b", "student_a_teacher_b"}
        for direction in block["directions"].values():
            verdict = direction["verdict"]
            assert verdict["status"] in ("pass", "inconclusive") and verdict["low"] <= verdict["point"] <= verdict["high"]
            assert direction["accuracy"] > 0.9
    markdown = (report / "report.md").read_text()
    assert "teacher_drop[student_a_teacher_b]" in markdown and "teacher_drop[teacher_a_student_b]" in markdown
