#!/usr/bin/env python3
"""edgefkd's Q/DQ quantizer vs NVIDIA ModelOpt ONNX PTQ, side by side (figures printed, never asserted).

For the shared MobileFaceNet and a random-weight IResNet-50, both quantizers calibrate on the
same synthetic faces (`calib_data/`, disjoint from every real face), each in a fresh process
(its own peak RSS via os.wait4, its own wall time). Each INT8 ONNX is then judged on the
real faces with ONNX Runtime (CPU): cosine p1 to PyTorch, pair ROC AUC on
pairs_balanced.csv, and edgefkd's static TensorRT compatibility report.

    python scripts/compare_int8_quantizers.py                 # both models, 128 calibration faces
    python scripts/compare_int8_quantizers.py --models mobilefacenet --calib-count 64

ModelOpt is installed without its `[onnx]` extra (see NOTES-cpu-trials.md); it imports pynvml
only to count GPUs for an ONNX Runtime arena setting, so on a host without pynvml a stand-in
that reports no GPU is registered before the import (ModelOpt's own no-GPU path).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("EDGEFKD_FIXTURES", REPO.parent / "shared"))
MFN = FIXTURES / "models" / "mobilefacenet-foamliu" / "mobilefacenet.pt"
FACES = FIXTURES / "faces"
QUANTIZERS = {"edgefkd-minmax": ("edgefkd", "minmax"), "edgefkd-entropy": ("edgefkd", "entropy"),
              "modelopt-max": ("modelopt", "max"), "modelopt-entropy": ("modelopt", "entropy")}


def _no_gpu_pynvml() -> None:
    if "pynvml" in sys.modules:
        return
    try:
        import pynvml  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("pynvml")

        def no_nvml(*_: object) -> None:
            raise RuntimeError("NVML is not available on this host")

        stand_in.nvmlInit = stand_in.nvmlShutdown = stand_in.nvmlDeviceGetCount = no_nvml
        sys.modules["pynvml"] = stand_in


def quantize_worker(kind: str, method: str, fp32: str, calib_npy: str, out: str) -> None:
    """Runs in its own process: quantize and write `out`."""
    batches = np.load(calib_npy)
    if kind == "edgefkd":
        from edgefkd.exporters.quantize_onnx import quantize_onnx_qdq

        quantize_onnx_qdq(Path(fp32), Path(out), batches, method=method)
        return
    _no_gpu_pynvml()
    from modelopt.onnx.quantization import quantize

    quantize(fp32, quantize_mode="int8", calibration_data=batches, calibration_method=method,
             calibration_eps=["cpu"], output_path=out)


def run_quantizer(name: str, fp32: Path, calib_npy: Path, out: Path) -> dict[str, float | str]:
    kind, method = QUANTIZERS[name]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--worker", kind, method, str(fp32), str(calib_npy), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0 or not out.is_file():
        return {"error": log.strip().splitlines()[-1] if log.strip() else "failed"}
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def export_fp32(name: str, workdir: Path) -> tuple[Path, object, object]:
    """(fp32 ONNX, PyTorch module, contract) for the shared MobileFaceNet or a random IResNet-50."""
    import torch

    from edgefkd.exporters.onnx import export_onnx
    from edgefkd.models.loading import load_student

    if name == "mobilefacenet":
        student = load_student(MFN, "mobilefacenet-foamliu")
    else:
        from edgefkd.models.registry import create_model

        torch.manual_seed(0)
        checkpoint = workdir / "iresnet50_random.pt"
        torch.save(create_model("iresnet50").state_dict(), checkpoint)
        student = load_student(checkpoint, "iresnet50")
    path = workdir / f"{name}_fp32.onnx"
    export_onnx(student.module, student.contract, path)
    return path, student.module, student.contract


def embed_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 16]})[0] for i in range(0, len(x), 16)])


def judge(path: Path, x: np.ndarray, reference: np.ndarray, pairs: object) -> dict[str, object]:
    from edgefkd.exporters.trt_compat import check_onnx
    from edgefkd.verify.metrics import agreement, pair_scores
    from sklearn.metrics import roc_auc_score

    emb = embed_onnx(path, x)
    report = check_onnx(path, (1, 8, 32))
    return {
        "cosine_p1": agreement(reference, emb)["cosine_p1"],
        "auc": float(roc_auc_score(pairs.is_same, pair_scores(emb, emb, pairs.pairs))),
        "compat": f"{report.verdict} ({report.count('error')} err, {report.count('warning')} warn)",
        "compat_codes": sorted(report.codes("error") | report.codes("warning")),
        "qdq_nodes": sum(n for op, n in report.op_counts.items() if op in ("QuantizeLinear", "DequantizeLinear")),
    }


def compare(model: str, calib_count: int, workdir: Path) -> None:
    import torch

    from edgefkd.calib import load_calibration_faces
    from edgefkd.verify.datasets import load_csv_pairs

    fp32, module, contract = export_fp32(model, workdir)
    pairs = load_csv_pairs(FACES / "pairs_balanced.csv")
    from edgefkd.imaging import fit_face

    faces = np.stack([fit_face(pairs.decode(i), contract.input_size) for i in range(len(pairs.images))])
    x = contract.prepare(faces)
    with torch.no_grad():
        reference = module(torch.from_numpy(x)).numpy()
    calib = contract.prepare(load_calibration_faces("default", contract.input_size, limit=calib_count, seed=0))
    calib_npy = workdir / f"{model}_calib.npy"
    np.save(calib_npy, calib)
    print(f"\n## {model}: {len(calib)} synthetic calibration faces; judged on {len(faces)} real faces, {pairs.num_pairs} pairs")
    print(f"fp32 ONNX: {judge(fp32, x, reference, pairs)}")
    print("| quantizer | cosine p1 | pair AUC | Q/DQ nodes | TensorRT compat | wall s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for name in QUANTIZERS:
        out = workdir / f"{model}_{name}.onnx"
        run = run_quantizer(name, fp32, calib_npy, out)
        if "error" in run:
            print(f"| {name} | failed: {run['error'][:120]} | | | | | |")
            continue
        j = judge(out, x, reference, pairs)
        print(f"| {name} | {j['cosine_p1']:.4f} | {j['auc']:.4f} | {j['qdq_nodes']} | {j['compat']} {','.join(j['compat_codes'])} "
              f"| {run['seconds']:.1f} | {run['peak_rss_mb']:.0f} |", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        quantize_worker(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilefacenet,iresnet50")
    parser.add_argument("--calib-count", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgefkd-int8-compare-") as tmp:
        for model in args.models.split(","):
            compare(model.strip(), args.calib_count, Path(tmp))
    print(json.dumps({"note": "figures are printed, never asserted"}))


if __name__ == "__main__":
    main()
