"""benchmark-latency end to end: skipped backends, a real small run, the CLI."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from edgefkd.bench.loop import BenchSettings, run_benchmark, targets_from_files
from edgefkd.bench.session import BenchRequest, measure_request, run_benchmark_command
from edgefkd.cli import main
from edgefkd.contract import PreprocessContract
from edgefkd.errors import BackendError
from edgefkd.manifest import ArtifactEntry, Manifest

TENSORRT_ABSENT = importlib.util.find_spec("tensorrt") is None


@pytest.fixture(scope="module")
def export_dir(request: pytest.FixtureRequest) -> Path:
    """The lead's session-scoped export of the shared MobileFaceNet (ONNX + OpenVINO)."""
    try:
        return Path(request.getfixturevalue("mobilefacenet_export"))
    except pytest.FixtureLookupError:
        pytest.skip("the mobilefacenet_export fixture (tests/conftest.py) is not available in this checkout")


def test_unrunnable_artifacts_are_rows_with_reasons(tmp_path: Path, mobilefacenet_upstream_onnx: Path) -> None:
    """A deferred engine, an engine without TensorRT, a missing checkpoint and an ONNX without
    an edgefkd contract each become one row with the reason; the run completes."""
    export = tmp_path / "export"
    export.mkdir()
    (export / "model_int8.engine").write_bytes(b"not really an engine")
    manifest = Manifest(
        model={"name": "mfn", "arch": "mobilefacenet-foamliu", "checkpoint": str(tmp_path / "gone.pt")},
        preprocess=PreprocessContract(),
    )
    manifest.upsert(ArtifactEntry(path="model_fp16.engine", format="tensorrt", precision="fp16",
                                  extra={"status": "deferred: TensorRT not installed"}))  # fmt: skip
    manifest.upsert(ArtifactEntry.for_file(export, export / "model_int8.engine", "tensorrt", "int8"))
    shutil.copy(mobilefacenet_upstream_onnx, export / "upstream.onnx")
    manifest.upsert(ArtifactEntry.for_file(export, export / "upstream.onnx", "onnx", "fp32"))
    manifest.write(export)
    request = BenchRequest([export], batch_sizes=(1,), iters=2, warmup=0)
    result, report_dir = measure_request(request)
    rows = {r.artifact: r for r in result.rows}
    assert len(result.rows) == 4 and not any(r.measured for r in result.rows)
    assert rows["pytorch-eager"].status == "skipped" and "gone.pt" in rows["pytorch-eager"].reason
    assert rows["model_fp16.engine"].status == "skipped" and "deferred" in rows["model_fp16.engine"].reason
    if TENSORRT_ABSENT:
        assert rows["model_int8.engine"].status == "skipped"
        # The same reason list-formats and verify-parity give (the TensorRT format's available()).
        assert rows["model_int8.engine"].reason.startswith("TensorRT is not installed")
    onnx_row = rows["upstream.onnx"]
    assert onnx_row.status == "error" and "preprocessing contract" in onnx_row.reason
    assert all(r.reason for r in result.rows)
    # Nothing measured: the command is an error and writes no report.
    with pytest.raises(BackendError, match="nothing could be measured"):
        run_benchmark_command(request)
    assert not report_dir.exists()


def test_small_interleaved_run_on_real_export(export_dir: Path, faces_dir: Path, tmp_path: Path) -> None:
    manifest = Manifest.read(export_dir)
    request = BenchRequest(
        [export_dir], batch_sizes=(1, 2), iters=3, warmup=1, interleave=True, images=faces_dir,
        report_dir=tmp_path / "bench",
    )  # fmt: skip
    result, report_dir = run_benchmark_command(request)
    measured = [r for r in result.rows if r.measured]
    failed = [(r.artifact, r.reason) for r in result.rows if r.status == "error"]
    assert not failed
    backends = {r.backend for r in measured}
    assert {"torch", "onnxruntime", "openvino"} <= backends
    runnable = [a for a in manifest.artifacts if a.format in ("onnx", "openvino") and not a.extra.get("status")]
    # every runnable artifact at both batch sizes, plus PyTorch
    expected = 2 * (1 + len(runnable))
    assert len(measured) == expected
    for row in measured:
        assert row.latency.samples == 3
        assert row.latency.min <= row.latency.p50 <= row.latency.p90 <= row.latency.p99 <= row.latency.max
        assert row.first_inference_ms > 0 and row.peak_rss_mb > 0 and row.bytes > 0
        assert row.speedup_vs_torch is not None
    torch_rows = [r for r in measured if r.backend == "torch"]
    assert {r.speedup_vs_torch for r in torch_rows} == {1.0}
    data = json.loads((report_dir / "benchmark.json").read_text())
    assert data["settings"]["interleave"] is True and data["settings"]["images"] == 2
    assert (report_dir / "latency.png").stat().st_size > 0


def test_openvino_throughput_hint_uses_async_requests(export_dir: Path) -> None:
    manifest = Manifest.read(export_dir)
    xml = next(a for a in manifest.artifacts if a.format == "openvino")
    settings = BenchSettings(batch_sizes=(1,), iters=8, warmup=1, ov_hint="throughput")
    result = run_benchmark(targets_from_files([export_dir / xml.path]), settings)
    (row,) = result.rows
    assert row.measured and row.mode == "async", row.reason
    assert row.latency.samples == 8 and row.throughput_ips > 0
    assert row.precision == xml.precision  # read back from the artifact's own metadata


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark-latency", str(tmp_path), "--iters", "2"]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    assert main(["benchmark-latency", str(tmp_path), "--batch-sizes", "1,x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
