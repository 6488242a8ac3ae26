#!/usr/bin/env python3
"""Export wall time and peak memory (figures printed, never asserted).

Runs `edgefkd export` in a fresh process per case and reads that process's own peak RSS
with os.wait4, so one case's memory never hides another's.

    python scripts/bench_export.py                      # MobileFaceNet (shared) + random IResNet-50
    python scripts/bench_export.py --precisions fp32,fp16,int8
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("EDGEFKD_FIXTURES", REPO.parent / "shared"))


def run_case(label: str, args: list[str]) -> None:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "edgefkd.cli", "export", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    peak_mb = usage.ru_maxrss / 1024  # Linux reports KiB
    print(f"{label:<40} exit {code}  wall {seconds:7.1f} s  peak RSS {peak_mb:7.0f} MB")
    if code != 0:
        print(output[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", default="fp32,fp16")
    parser.add_argument("--formats", default="onnx,openvino")
    args = parser.parse_args()
    faces = FIXTURES / "faces" / "aligned112"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        common = ["--formats", args.formats, "--precisions", args.precisions, "--val-images", str(faces), "--force"]
        mfn = FIXTURES / "models" / "mobilefacenet-foamliu" / "mobilefacenet.pt"
        if mfn.is_file():
            run_case("mobilefacenet-foamliu (shared weights)",
                     [str(mfn), "--arch", "mobilefacenet-foamliu", "--out", str(tmp_path / "mfn"), *common])
        else:
            print(f"skipped MobileFaceNet: {mfn} absent (set EDGEFKD_FIXTURES)")
        import torch

        from edgefkd.models import create_model

        torch.manual_seed(0)
        ckpt = tmp_path / "iresnet50_random.pth"
        torch.save(create_model("iresnet50").state_dict(), ckpt)
        run_case("iresnet50 (random init, 43.6 M params)",
                 [str(ckpt), "--arch", "iresnet50", "--out", str(tmp_path / "r50"), *common])


if __name__ == "__main__":
    main()
