"""benchmark.json / .csv / .md / latency.png schema, sorting, speedups and the parity merge."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from edgefkd.bench.host import host_info
from edgefkd.bench.report import (
    CSV_COLUMNS,
    BenchResult,
    BenchRow,
    fill_speedups,
    merge_parity,
    read_parity_report,
    sorted_rows,
    write_report,
)
from edgefkd.bench.stats import summarize_ns
from edgefkd.errors import InputError

MS = 1_000_000
ISSUE_ROW_KEYS = {"artifact", "backend", "precision", "batch", "latency_ms", "throughput_ips",
                  "first_inference_ms", "peak_rss_mb", "bytes", "speedup_vs_torch"}  # fmt: skip


def _row(artifact: str, backend: str, batch: int, p50_ms: float, **kw: object) -> BenchRow:
    stats = summarize_ns([int(p50_ms * MS)] * 5)
    return BenchRow(
        artifact=artifact, backend=backend, precision=str(kw.pop("precision", "fp32")), batch=batch, latency=stats,
        throughput_ips=stats.throughput_ips(batch), first_inference_ms=100.0, peak_rss_mb=200.0, bytes=4_000_000,
        path=str(kw.pop("path", artifact)), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _result() -> BenchResult:
    rows = [
        _row("pytorch-eager", "torch", 1, 16.0, path="/ckpt/mobilefacenet.pt"),
        _row("pytorch-eager", "torch", 8, 80.0, path="/ckpt/mobilefacenet.pt"),
        _row("model.onnx", "onnxruntime", 8, 40.0),
        _row("model.onnx", "onnxruntime", 1, 8.0),
        _row("model_fp32.xml", "openvino", 1, 4.0, inference_precision="f32"),
        _row("model_fp32.xml@bf16", "openvino", 1, 2.0, inference_precision="bf16", path="model_fp32.xml"),
        BenchRow(artifact="model_fp16.engine", backend="tensorrt", precision="fp16", batch=None, path="model_fp16.engine",
                 status="skipped", reason="manifest status: deferred: TensorRT not installed"),  # fmt: skip
    ]
    fill_speedups(rows)
    return BenchResult(host=host_info(2), settings={"batch_sizes": [1, 8], "threads": 2}, rows=rows)


def test_speedups_and_sort_order() -> None:
    result = _result()
    by_key = {(r.artifact, r.batch): r for r in result.rows}
    assert by_key[("pytorch-eager", 1)].speedup_vs_torch == pytest.approx(1.0)
    assert by_key[("model.onnx", 1)].speedup_vs_torch == pytest.approx(16.0 / 8.0)
    assert by_key[("model.onnx", 8)].speedup_vs_torch == pytest.approx(80.0 / 40.0)
    assert by_key[("model_fp16.engine", None)].speedup_vs_torch is None
    order = [(r.artifact, r.batch) for r in sorted_rows(result.rows)]
    # Fastest batch-1 p50 first, each artifact's batches together, the skipped row last.
    assert order == [
        ("model_fp32.xml@bf16", 1), ("model_fp32.xml", 1), ("model.onnx", 1), ("model.onnx", 8),
        ("pytorch-eager", 1), ("pytorch-eager", 8), ("model_fp16.engine", None),
    ]  # fmt: skip


def test_json_csv_md_png_schema(tmp_path: Path) -> None:
    result = _result()
    out = write_report(result, tmp_path / "benchmark")
    data = json.loads((out / "benchmark.json").read_text())
    assert set(data) >= {"host", "rows", "settings", "warnings"}
    assert {"cpu_model", "logical_cores", "libraries", "threads"} <= set(data["host"])
    assert len(data["rows"]) == len(result.rows)
    for row in data["rows"]:
        assert ISSUE_ROW_KEYS <= set(row)
        if row["status"] == "ok":
            assert set(row["latency_ms"]) == {"mean", "p50", "p90", "p99", "min", "max", "std"}
        else:
            assert row["latency_ms"] is None and row["batch"] is None and "TensorRT" in row["reason"]
    with open(out / "benchmark.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0].keys()) == CSV_COLUMNS and len(table) == len(result.rows)
    assert float(table[0]["p50_ms"]) == pytest.approx(2.0)
    markdown = (out / "benchmark.md").read_text()
    assert "| artifact |" in markdown and "skipped: manifest status: deferred" in markdown
    assert "accuracy" not in markdown  # no parity report given
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A re-run replaces the earlier report in place.
    write_report(result, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(["benchmark.json", "benchmark.csv", "benchmark.md", "latency.png"])


def test_report_dir_with_other_files_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="holds other files"):
        write_report(_result(), target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def _parity_report(export_dir: Path) -> dict:
    """A verify-parity report.json in the schema of issue 3 (paths relative to the export)."""

    def artifact(path: str, precision: str, fmt: str, acc: float, p1: float, passed: bool, **extra: str) -> dict:
        return {**extra,
            "path": path, "format": fmt, "precision": precision,
            "agreement": {"cosine_min": p1 - 1e-4, "cosine_p1": p1, "cosine_mean": 0.99999},
            "verification": {"accuracy": acc, "accuracy_std": 0.01, "auc": 0.997, "eer": 0.03, "tar_at_far": {}},
            "drift": {}, "teacher_space": None, "passed": passed, "failures": [] if passed else ["cosine_p1"],
        }  # fmt: skip

    return {
        "pairs": {"source": "pairs_balanced.csv", "count": 176},
        "reference": {"path": "/ckpt/mobilefacenet.pt", "verification": {"accuracy": 0.977}},
        "teacher": None,
        "artifacts": [
            artifact("model.onnx", "fp32", "onnx", 0.977, 0.99999, True),
            # A report with verdicts: the pairs could not decide this one.
            artifact(str(export_dir / "model_fp32.xml"), "fp32", "openvino", 0.971, 0.98, False, verdict="inconclusive"),
        ],
    }


def test_merge_with_parity_report(tmp_path: Path) -> None:
    export_dir = tmp_path / "export"
    (export_dir / "parity").mkdir(parents=True)
    report_path = export_dir / "parity" / "report.json"
    report_path.write_text(json.dumps(_parity_report(export_dir)))
    result = _result()
    matched = merge_parity(result.rows, read_parity_report(report_path), [export_dir])
    by_key = {(r.artifact, r.batch): r for r in result.rows}
    # Relative and absolute report paths both match; every batch of the artifact gets it.
    # A report from before verdicts: the verdict comes from passed.
    assert by_key[("model.onnx", 1)].parity == {"accuracy": 0.977, "cosine_p1": 0.99999, "passed": True, "verdict": "pass"}
    assert by_key[("model.onnx", 8)].parity == by_key[("model.onnx", 1)].parity
    assert by_key[("model_fp32.xml", 1)].parity["passed"] is False
    assert by_key[("model_fp32.xml", 1)].parity["verdict"] == "inconclusive"
    # The bf16-executed row is not what verify-parity checked (f32), so it gets nothing.
    assert by_key[("model_fp32.xml@bf16", 1)].parity is None
    assert by_key[("pytorch-eager", 1)].parity["accuracy"] == 0.977
    assert by_key[("model_fp16.engine", None)].parity is None
    assert matched == 5  # 2 onnx + 1 openvino f32 + 2 pytorch rows
    result.parity_report = str(report_path)
    out = write_report(result, export_dir / "benchmark")
    markdown = (out / "benchmark.md").read_text()
    assert "| accuracy | cos p1 | parity |" in markdown
    assert "97.70%" in markdown and "INCONCLUSIVE" in markdown and "pass" in markdown
    with open(out / "benchmark.csv", newline="") as fh:
        onnx_rows = [r for r in csv.DictReader(fh) if r["artifact"] == "model.onnx"]
    assert {r["parity_passed"] for r in onnx_rows} == {"True"}
    assert {r["parity_verdict"] for r in onnx_rows} == {"pass"}


def test_unreadable_parity_report_is_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "report.json"
    bad.write_text("{not json")
    with pytest.raises(InputError):
        read_parity_report(bad)
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(InputError, match="not a verify-parity report"):
        read_parity_report(bad)
