"""NCNN and Core ML figures for the shared MobileFaceNet, measured (never asserted) here.

For each format x precision: artifact size, export seconds, cosine to PyTorch (p1 and min)
and ROC AUC on `pairs_balanced.csv`, and the batch-1 p50 latency (2 threads, a quick loop)
on this x86 CPU. Core ML cannot predict on Linux: its rows give size, export time and the
static check; for int8 the cosine/AUC of PyTorch with the same weight rounding (per output
channel, symmetric, first conv and head float, tensors under 2048 weights float) is
printed as a simulation, marked as such. x86 latency says nothing about a phone.

    PYTHONPATH=$PWD python scripts/mobile_ncnn_coreml.py [--iters 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
FIXTURES = Path(os.environ.get("EDGEFKD_FIXTURES", REPO.parent / "shared")).resolve()
CHECKPOINT = FIXTURES / "models" / "mobilefacenet-foamliu" / "mobilefacenet.pt"
PAIRS = FIXTURES / "faces" / "pairs_balanced.csv"


def pair_faces(size: tuple[int, int]) -> tuple[np.ndarray, object]:
    from edgefkd.imaging import fit_face
    from edgefkd.verify.datasets import load_csv_pairs

    pairs = load_csv_pairs(PAIRS)
    faces = np.stack([fit_face(pairs.decode(i), size) for i in range(len(pairs.images))])
    return faces, pairs


def judge(reference: np.ndarray, emb: np.ndarray, pairs: object) -> dict[str, float]:
    from edgefkd.verify.metrics import agreement, pair_scores, verify_scores

    stats = agreement(reference, emb)
    auc = verify_scores(pair_scores(emb, emb, pairs.pairs), pairs.is_same).auc  # type: ignore[attr-defined]
    return {"cos_p1": stats["cosine_p1"], "cos_min": stats["cosine_min"], "auc": auc}


def p50_ms(runner: object, x: np.ndarray, iters: int) -> float:
    from edgefkd.bench.loop import _time_sync
    from edgefkd.bench.stats import summarize_ns

    _time_sync(runner, x, 10, None)  # warm-up
    return summarize_ns(_time_sync(runner, x, iters, None)).p50


def simulated_int8_weights(module: object) -> object:
    """PyTorch with Core ML's int8 weight rounding (per output channel, symmetric)."""
    import torch

    sim = copy.deepcopy(module)
    layers = [m for m in sim.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]  # type: ignore[attr-defined]
    with torch.no_grad():
        for layer in layers[1:-1]:
            w = layer.weight
            if w.numel() <= 2048:
                continue
            scale = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True) / 127
            w.copy_(torch.where(scale > 0, torch.round(w / scale.clamp_min(1e-30)) * scale, w))
    return sim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-coreml", action="store_true", help="NCNN rows only (Core ML export is slow)")
    args = parser.parse_args()

    import torch

    from edgefkd.fileio import artifact_digest
    from edgefkd.formats import coreml, ncnn
    from edgefkd.models.loading import load_student
    from edgefkd.runners.torch_runner import TorchRunner
    from format_support import export_context

    torch.set_num_threads(args.threads)
    student = load_student(CHECKPOINT, "mobilefacenet-foamliu")
    faces, pairs = pair_faces(student.contract.input_size)
    x = student.contract.prepare(faces)
    with TorchRunner(student.module, student.contract, threads=args.threads) as reference:
        ref = reference.infer(x)
        rows = [("pytorch eager", "fp32", None, None, judge(ref, ref, pairs), p50_ms(reference, x[:1], args.iters), "")]
    print(f"{len(faces)} faces, {len(pairs.is_same)} pairs; threads={args.threads}")

    with tempfile.TemporaryDirectory(prefix="edgefkd-mobile-") as tmp:
        ctx = export_context(student, Path(tmp))
        for precision in ncnn.PRECISIONS:
            start = time.perf_counter()
            path = ncnn.FORMAT.export(ctx, precision)
            seconds = time.perf_counter() - start
            size = sum(artifact_digest(p)[1] for p in [path, *ncnn.companions(path)])
            with ncnn.FORMAT.runner(path, student.contract, precision, threads=args.threads) as runner:
                quality = judge(ref, runner.infer(x), pairs)
                rows.append(("ncnn", precision, size, seconds, quality, p50_ms(runner, x[:1], args.iters), ""))
        for precision in () if args.skip_coreml else coreml.PRECISIONS:
            start = time.perf_counter()
            path = coreml.FORMAT.export(ctx, precision)  # includes the static check
            seconds = time.perf_counter() - start
            quality, note = None, "static check passed; predicts only on macOS"
            if precision == "int8":
                with torch.inference_mode():
                    sim = simulated_int8_weights(student.module)(torch.from_numpy(x)).numpy()
                quality, note = judge(ref, sim, pairs), "cosine/AUC: PyTorch simulation of its int8 weights"
            rows.append(("coreml", precision, artifact_digest(path)[1], seconds, quality, None, note))

    print("| format | precision | size MB | export s | cosine p1 | cosine min | AUC | batch-1 p50 ms | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    for fmt, precision, size, seconds, quality, p50, note in rows:
        q = quality or {}
        cells = [
            fmt, precision, f"{size / 1e6:.2f}" if size else "", f"{seconds:.1f}" if seconds else "",
            f"{q['cos_p1']:.6f}" if q else "", f"{q['cos_min']:.6f}" if q else "", f"{q['auc']:.4f}" if q else "",
            f"{p50:.2f}" if p50 else "", note,
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
