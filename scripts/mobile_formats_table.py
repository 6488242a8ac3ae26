#!/usr/bin/env python3
"""LiteRT and ExecuTorch artifacts of the shared MobileFaceNet, measured (printed, never asserted).

Per format x precision: file size, cosine to PyTorch on the real faces (p1 and min), ROC
AUC on pairs_balanced.csv next to PyTorch's, batch-1 p50 latency at `--threads`, and
export seconds. INT8 is calibrated on the shipped synthetic faces, never the real ones.
Latency is this x86 CPU's: a phone's needs the phone.

    python scripts/mobile_formats_table.py
    python scripts/mobile_formats_table.py --formats executorch --precisions int8 --keep-fp 'dw_conv.*'
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("EDGEFKD_FIXTURES", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "tests"))


def p50_ms(runner, face: np.ndarray, runs: int) -> float:
    for _ in range(5):
        runner.infer(face)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.infer(face)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", default="litert,executorch")
    parser.add_argument("--precisions", default="fp32,fp16,int8")
    parser.add_argument("--keep-fp", action="append", default=[])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    import torch

    from edgefkd.models.loading import load_student
    from edgefkd.verify.evaluator import PairAccuracy
    from edgefkd.verify.metrics import cosine_rows
    from mobile_support import embed_with, export_context, pair_auc

    student = load_student(FIXTURES / "models/mobilefacenet-foamliu/mobilefacenet.pt", "mobilefacenet-foamliu")
    pairs = PairAccuracy(FIXTURES / "faces/pairs_balanced.csv", student.contract)
    with torch.no_grad():
        reference = student.module(torch.from_numpy(pairs.inputs)).numpy()
    print(f"PyTorch fp32: AUC {pair_auc(reference, pairs):.4f} on {pairs.pair_set.num_pairs} pairs, {len(pairs.inputs)} faces")
    print("| format | precision | size MB | cos p1 | cos min | AUC | p50 ms (b1) | export s |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = export_context(student, Path(tmp), keep_fp=args.keep_fp)
        for name in args.formats.split(","):
            fmt = importlib.import_module(f"edgefkd.formats.{name}").FORMAT
            for precision in args.precisions.split(","):
                start = time.perf_counter()
                path = fmt.export(ctx, precision)
                seconds = time.perf_counter() - start
                embeddings = embed_with(fmt.runner(path, student.contract, threads=args.threads), pairs.inputs)
                cosine = cosine_rows(reference, embeddings)
                with fmt.runner(path, student.contract, threads=args.threads) as runner:
                    latency = p50_ms(runner, pairs.inputs[:1], args.runs)
                print(
                    f"| {name} | {precision} | {path.stat().st_size / 1e6:.2f} | {np.percentile(cosine, 1):.6f} | "
                    f"{cosine.min():.6f} | {pair_auc(embeddings, pairs):.4f} | {latency:.2f} | {seconds:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
