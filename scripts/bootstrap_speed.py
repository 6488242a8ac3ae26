"""How long the paired bootstrap takes on an LFW-sized set, measured (never asserted) here.

A reference and an artifact (the reference plus small noise) on 6,000 synthetic pairs, the
whole 10-fold protocol re-run on each of 1,000 fold-stratified resamples, for both protocols;
prints seconds, the interval of the accuracy drop, and the memory the run was planned with.

    PYTHONPATH=$PWD python scripts/bootstrap_speed.py [--pairs 6000] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgefkd.verify.protocol import pair_scores
from edgefkd.verify.statistics import bootstrap_accuracies, bootstrap_memory, chunk_size, interval_pp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.pairs
    emb = rng.standard_normal((2 * n, 128)).astype(np.float32)
    same = rng.random(n) < 0.5
    emb[1::2][same] = emb[0::2][same] + 1.1 * rng.standard_normal((int(same.sum()), 128)).astype(np.float32)
    artifact = emb + 0.05 * rng.standard_normal(emb.shape).astype(np.float32)
    pairs = np.arange(2 * n).reshape(-1, 2)
    for protocol in ("insightface", "edgefkd"):
        series = {
            "reference": pair_scores(protocol, emb, emb, pairs, same),
            "artifact": pair_scores(protocol, artifact, artifact, pairs, same),
        }
        start = time.perf_counter()
        acc = bootstrap_accuracies(series, 10, args.resamples, seed=0)
        seconds = time.perf_counter() - start
        low, high = interval_pp(acc["reference"] - acc["artifact"])
        planned = bootstrap_memory(args.resamples, [n], 2, 10, protocol)
        print(f"{protocol:11s}: {n} pairs x {args.resamples} resamples x 2 series in {seconds:.2f} s "
              f"({chunk_size(n, 10, protocol)} resamples per pass, planned {planned / 2**20:.0f} MiB); "
              f"drop interval [{low:+.2f}, {high:+.2f}] pp")


if __name__ == "__main__":
    main()
