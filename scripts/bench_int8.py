#!/usr/bin/env python3
"""Batch-1 latency of INT8 vs FP32 on this CPU (figures printed, never asserted).

Rows: OpenVINO INT8 (NNCF), OpenVINO FP32 with INFERENCE_PRECISION_HINT=f32, OpenVINO FP32
with the plugin default (bf16 on AVX-512 BF16 CPUs), ONNX Runtime FP32 and ONNX Runtime
INT8 (Q/DQ). The issue's target is OpenVINO INT8 faster than OpenVINO FP32 at batch 1.

    python scripts/bench_int8.py                          # export the shared MobileFaceNet first
    python scripts/bench_int8.py --export DIR             # an existing export with int8 artifacts
    python scripts/bench_int8.py --calib ../shared/faces/aligned112 --iterations 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FIXTURES = Path(os.environ.get("EDGEFKD_FIXTURES", REPO.parent / "shared"))


def export_mobilefacenet(out: Path, calib: str | None) -> Path:
    from edgefkd.exporters.pipeline import ExportOptions, run_export

    run_export(ExportOptions(
        checkpoint=FIXTURES / "models" / "mobilefacenet-foamliu" / "mobilefacenet.pt",
        arch="mobilefacenet-foamliu", out=out, precisions=("fp32", "int8"), calib=calib,
        val_images=FIXTURES / "faces" / "aligned112",
    ))
    return out


def latency_ms(path: Path, iterations: int, warmup: int, **runner_options) -> tuple[float, float]:
    """(median, p90) milliseconds of one batch-1 inference."""
    from edgefkd.runners import open_runner

    with open_runner(path, **runner_options) as runner:
        batch = runner.contract.example_input(1)
        for _ in range(warmup):
            runner.infer(batch)
        times = []
        for _ in range(iterations):
            start = time.perf_counter()
            runner.infer(batch)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, help="export directory holding fp32 and int8 artifacts")
    parser.add_argument("--calib", help="calibration source when exporting (default: the shipped calib_data/)")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        export = args.export or export_mobilefacenet(Path(tmp) / "mobilefacenet", args.calib)
        rows = [
            ("OpenVINO INT8 (NNCF)", export / "openvino" / "model_int8.xml", {"inference_precision": None}),
            ("OpenVINO FP32 (f32 hint)", export / "openvino" / "model_fp32.xml", {"inference_precision": "f32"}),
            ("OpenVINO FP32 (plugin default, bf16)", export / "openvino" / "model_fp32.xml", {"inference_precision": None}),
            ("ONNX Runtime FP32", export / "onnx" / "model_fp32.onnx", {}),
            ("ONNX Runtime INT8 (Q/DQ)", export / "onnx" / "model_int8_qdq.onnx", {}),
        ]
        print(f"batch 1, {args.iterations} iterations after {args.warmup} warm-up, {os.cpu_count()} CPUs")
        results = {}
        for label, path, options in rows:
            if not path.is_file():
                print(f"{label:<38} missing: {path}")
                continue
            median, p90 = latency_ms(path, args.iterations, args.warmup, **options)
            results[label] = median
            print(f"{label:<38} median {median:7.2f} ms   p90 {p90:7.2f} ms")
        int8, fp32 = results.get(rows[0][0]), results.get(rows[1][0])
        if int8 and fp32:
            print(f"OpenVINO INT8 speed-up over FP32 (f32): {fp32 / int8:.2f}x")


if __name__ == "__main__":
    main()
