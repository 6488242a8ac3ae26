#!/usr/bin/env python3
"""edgefkd's Q/DQ quantizer vs NVIDIA ModelOpt ONNX PTQ, side by side (figures printed, never asserted).

For the shared MobileFaceNet and a random-weight IResNet-50, both quantizers calibrate on the
same synthetic faces (`calib_data/`, disjoint from every real face), each in a fresh process
(its own peak RSS from /proc VmHWM, its own wall time). Each INT8 ONNX is then judged on the
real faces with ONNX Runtime (CPU): cosine p1 to PyTorch, pair ROC AUC on
pairs_balanced.csv, and edgefkd's static TensorRT compatibility report.

    python scripts/compare_int8_quantizers.py                 # both models, 128 calibration faces
    python scripts/compare_int8_quantizers.py --models mobilefacenet --calib-count 64

ModelOpt is installed without its `[onnx]` extra (see NOTES-cpu-trials.md). It also imports
`onnxslim` (put it on PYTHONPATH, e.g. `pip install --no-deps --target /tmp/extra onnxslim`
and `PYTHONPATH=/tmp/extra`), and pynvml only to count GPUs for an ONNX Runtime arena
setting: on a host without pynvml a stand-in reporting no GPU is registered first (ModelOpt's
own no-GPU path). ModelOpt leaves unquantized layers in fp16 by default; the main rows use
fp32 (as edgefkd does) and one row shows its default.
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
#: name -> (tool, calibration method, float dtype ModelOpt leaves unquantized layers in)
QUANTIZERS = {"edgefkd-minmax": ("edgefkd", "minmax", "fp32"), "edgefkd-entropy": ("edgefkd", "entropy", "fp32"),
              "modelopt-max": ("modelopt", "max", "fp32"), "modelopt-entropy": ("modelopt", "entropy", "fp32"),
              "modelopt-max-fp16 (its default)": ("modelopt", "max", "fp16")}


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


def quantize_worker(kind: str, method: str, float_dtype: str, fp32: str, calib_npy: str, out: str) -> None:
    """Runs in its own process: quantize, write `out`, print this process's peak RSS.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would inherit the
    parent's peak (torch and the model already loaded); VmHWM belongs to the new image only.
    """
    batches = np.load(calib_npy)
    if kind == "edgefkd":
        from edgefkd.exporters.quantize_onnx import quantize_onnx_qdq

        quantize_onnx_qdq(Path(fp32), Path(out), batches, method=method)
    else:
        _no_gpu_pynvml()
        from modelopt.onnx.quantization import quantize

        quantize(fp32, quantize_mode="int8", calibration_data=batches, calibration_method=method,
                 calibration_eps=["cpu"], output_path=out, high_precision_dtype=float_dtype)
    hwm_kb = next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM"))
    print(f"PEAK_KB {hwm_kb}")


def run_quantizer(name: str, fp32: Path, calib_npy: Path, out: Path) -> dict[str, float | str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", *QUANTIZERS[name], str(fp32), str(calib_npy), str(out)],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = [l for l in proc.stdout.splitlines() if l.startswith("PEAK_KB ")]
    if proc.returncode != 0 or not out.is_file() or not peak:
        log = (proc.stdout + proc.stderr).strip().splitlines()
        return {"error": log[-1] if log else "failed"}
    return {"seconds": seconds, "peak_rss_mb": int(peak[-1].split()[1]) / 1024}


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

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
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
        quantize_worker(*sys.argv[2:8])
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
