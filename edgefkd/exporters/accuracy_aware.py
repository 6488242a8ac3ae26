"""Accuracy-aware Q/DQ INT8: revert the most harmful quantized layers to float.

Calibrate once, then if the evaluation callback's accuracy drop exceeds `max_drop`, rank
every quantized node by how much reverting it alone improves embedding agreement with the
fp32 model (mean cosine on calibration faces; cheap and label-free), and revert them in that
order, one at a time, re-evaluating after each, until the drop is within bounds. The
callback is the expensive, labelled measurement (verification accuracy on pairs); the
ranking keeps the number of callback calls to the number of layers actually reverted.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import InputError, ValidationError
from ..runners.base import embed_batches
from ..verify.metrics import cosine_rows
from .quantize_onnx import (
    QuantizationPlan,
    build_qdq_model,
    calibrate_model,
    peak_rss_mb,
    quantization_info,
    rebatch,
    write_qdq_model,
)

if TYPE_CHECKING:  # pragma: no cover
    import onnx

#: Accuracy of the model at a path, in the units of max_drop (e.g. percent on pairs).
EvaluateFn = Callable[[Path], float]


def session_embeddings(model: "onnx.ModelProto", inputs: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Embeddings of an in-memory ONNX model (fixed-batch models are fed their batch size)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    fixed = session.get_inputs()[0].shape[0]
    size = fixed if isinstance(fixed, int) and fixed > 0 else batch_size
    return embed_batches(lambda part: session.run(None, {name: part})[0], inputs, size).reshape(len(inputs), -1)


def rank_harmful_nodes(
    model: "onnx.ModelProto",
    plan: QuantizationPlan,
    ranges: dict[str, float],
    inputs: np.ndarray,
) -> list[tuple[str, float]]:
    """Quantized nodes with the agreement gain of reverting each alone, most harmful first."""
    reference = session_embeddings(model, inputs)
    base = float(cosine_rows(session_embeddings(build_qdq_model(model, plan, ranges), inputs), reference).mean())
    gains = []
    for name in plan.quantized:
        reverted = build_qdq_model(model, plan.without([name], "ranking"), ranges)
        gains.append((name, float(cosine_rows(session_embeddings(reverted, inputs), reference).mean()) - base))
    return sorted(gains, key=lambda item: item[1], reverse=True)


def quantize_onnx_accuracy_aware(
    fp32_onnx: Path,
    out_path: Path,
    calib_batches: Iterable[np.ndarray] | np.ndarray,
    evaluate: EvaluateFn,
    max_drop: float,
    method: str = "entropy",
    keep_fp: Sequence[str] = (),
    face_aware: bool = True,
    ranking_samples: int = 64,
    max_reverts: int | None = None,
) -> dict[str, Any]:
    """Q/DQ INT8 whose `evaluate` drop versus fp32 is at most `max_drop`, else ValidationError.

    Returns quantize_onnx_qdq's info plus fp32/int8 accuracy, the drop, and `reverted`
    (node, agreement gain, accuracy after reverting) in the order they were reverted.
    """
    if max_drop < 0:
        raise InputError(f"--max-acc-drop must be >= 0, got {max_drop}")
    calibrated = calibrate_model(fp32_onnx, calib_batches, method, keep_fp, face_aware)
    model, plan, ranges = calibrated.model, calibrated.plan, calibrated.ranges
    fp32_accuracy = evaluate(Path(fp32_onnx))
    reverted: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgefkd-int8-") as tmp:
        candidate_path = Path(tmp) / "candidate.onnx"

        def accuracy_of(candidate_plan: QuantizationPlan) -> tuple["onnx.ModelProto", float]:
            import onnx

            candidate = build_qdq_model(model, candidate_plan, ranges)
            onnx.save(candidate, str(candidate_path))
            return candidate, evaluate(candidate_path)

        quantized, accuracy = accuracy_of(plan)
        ranking: list[tuple[str, float]] = []
        if fp32_accuracy - accuracy > max_drop and max_reverts != 0:
            inputs = next(rebatch(calibrated.batches, ranking_samples))
            ranking = rank_harmful_nodes(model, plan, ranges, inputs)
        for name, gain in ranking[:max_reverts]:
            if fp32_accuracy - accuracy <= max_drop:
                break
            plan = plan.without([name], "accuracy-aware: reverted")
            quantized, accuracy = accuracy_of(plan)
            reverted.append({"node": name, "agreement_gain": round(gain, 6), "accuracy": accuracy})
    drop = fp32_accuracy - accuracy
    if drop > max_drop:
        raise ValidationError(
            f"INT8 accuracy drop {drop:.3g} stays above --max-acc-drop {max_drop} after reverting "
            f"{len(reverted)} layer(s); raise the bound or use more representative calibration faces"
        )
    calibrated.plan = plan
    info = quantization_info(calibrated, method, face_aware, keep_fp)
    info.update(fp32_accuracy=fp32_accuracy, int8_accuracy=accuracy, accuracy_drop=drop, max_drop=max_drop,
                reverted=reverted)
    write_qdq_model(quantized, Path(out_path), info)
    info["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return info
