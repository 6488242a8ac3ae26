"""Embedding throughput of verify-parity's engines, measured (never asserted) on this machine.

The IJB-C-layout fixture of the tests (150 loose crops with landmarks, built from
../shared/faces) is repeated to at least --images faces and embedded by the shared
MobileFaceNet exported to ONNX fp32 (decode + landmark alignment + inference), with:
local 1 worker, local 2 workers, and Ray on a local 2-CPU cluster. Each configuration
runs in its own process, so the driver's peak RSS (ru_maxrss) is that configuration's.
Then, on paper, the time to embed IJB-C (469,375 faces) with six artifacts on 1, 8 and 64
nodes like this one, assuming shards scale linearly across nodes (they share nothing).

    PYTHONPATH=$PWD python scripts/benchmark_embedding_engine.py [--images 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("EDGEFKD_FIXTURES", REPO.parent / "shared")).resolve()
CHECKPOINT = FIXTURES / "models" / "mobilefacenet-foamliu" / "mobilefacenet.pt"
IJBC_FACES = 469_375
ARTIFACTS = 6
CONFIGS = {"local-1": ("local", 1), "local-2": ("local", 2), "ray-2cpu": ("ray", None)}


def prepare(work: Path) -> tuple[Path, Path]:
    """The IJB fixture and an ONNX fp32 export of the shared MobileFaceNet, in `work`."""
    sys.path.insert(0, str(REPO / "tests"))
    from ijb_fixture import build_ijb_fixture

    from edgefkd.exporters.onnx import export_onnx
    from edgefkd.models.loading import load_student

    fixture = build_ijb_fixture(FIXTURES / "faces", work / "IJBC")
    loaded = load_student(CHECKPOINT, "mobilefacenet-foamliu")
    onnx_path = export_onnx(loaded.module, loaded.contract, work / "mobilefacenet_fp32.onnx", exporter="legacy").path
    return fixture, Path(onnx_path)


def run_one(config: str, fixture: Path, onnx_path: Path, images: int) -> dict:
    """Embed the repeated fixture with one engine configuration; the measurements."""
    from edgefkd.runners import open_runner
    from edgefkd.verify.engine import EngineOptions, FaceItem, embed_items
    from edgefkd.verify.ijb import read_ijb
    from edgefkd.verify.parity import ModelSource

    engine, workers = CONFIGS[config]
    base = read_ijb(fixture, "IJBC").items
    copies = -(-images // len(base))
    items = [FaceItem(f"{k}/{i.key}", i.location, i.landmarks) for k in range(copies) for i in base]
    if engine == "ray":
        import ray

        ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    source = ModelSource("onnx fp32", str(onnx_path), "onnx", "fp32", lambda: open_runner(onnx_path))
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    (result,) = embed_items(items, [source], EngineOptions(engine, workers, batch_size=32))
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
    assert result.embeddings is not None and len(result.embeddings) == len(items)
    return {
        "config": config, "faces": len(items), "seconds": seconds, "faces_per_s": len(items) / seconds,
        # Ray workers are not children of the driver: their CPU time is not in this figure.
        "faces_per_cpu_s": None if engine == "ray" else len(items) / cpu,
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "load_avg": os.getloadavg(),
    }


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the decoding pool)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def paper_table(rate: float) -> list[str]:
    lines = [f"IJB-C ({IJBC_FACES:,} faces) x {ARTIFACTS} artifacts at {rate:.0f} faces/s per 2-CPU node:"]
    for nodes in (1, 8, 64):
        hours = IJBC_FACES * ARTIFACTS / (rate * nodes) / 3600
        lines.append(f"  {nodes:>3} node(s): {hours:7.2f} h")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="which of local-1,local-2,ray-2cpu to run")
    parser.add_argument("--one", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--fixture", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--onnx", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.fixture, args.onnx, args.images)))
        return
    with tempfile.TemporaryDirectory(prefix="edgefkd-engine-bench-") as tmp:
        fixture, onnx_path = prepare(Path(tmp))
        results = {}
        for config in args.configs.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--one", config, "--fixture", str(fixture), "--onnx", str(onnx_path),
                 "--images", str(args.images)], capture_output=True, text=True, check=True,
            )
            results[config] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[config]
            per_cpu = "" if r["faces_per_cpu_s"] is None else f" ({r['faces_per_cpu_s']:.1f} per CPU-second)"
            print(f"{config:>9}: {r['faces']} faces in {r['seconds']:.1f} s = {r['faces_per_s']:.1f} faces/s{per_cpu}, "
                  f"driver peak RSS {r['driver_peak_rss_mb']:.0f} MB, load average {r['load_avg'][0]:.1f}", flush=True)
    if "ray-2cpu" in results:
        print("\n".join(paper_table(results["ray-2cpu"]["faces_per_s"])))


if __name__ == "__main__":
    main()
