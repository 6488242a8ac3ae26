"""Judging embeddings: every metric, interval and gate verdict of each artifact on one pair set.

A verdict (see verdict.py) is taken on the 95 % interval of the drop from a paired bootstrap
that re-runs the whole protocol on each resample, so a set too small to decide a gate says
`inconclusive` instead of passing or failing on a pair or two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import metrics, statistics
from .datasets import PairSet
from .protocol import PairScores, pair_scores, protocol_accuracy
from .verdict import FAIL, PASS, Verdict, combine, exit_code, judge_drop

if TYPE_CHECKING:
    from .parity import Embedded, ParityOptions

DIRECTIONS = ("teacher_a_student_b", "student_a_teacher_b")


@dataclass
class ParityResult:
    report: dict[str, Any]
    #: per pair set: (set name, impostor pairs, label -> (FAR, TAR)) for the ROC plot
    curves: list[tuple[str, int, dict[str, tuple[np.ndarray, np.ndarray]]]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])

    @property
    def exit_code(self) -> int:
        return int(self.report["exit_code"])


def model_block(e: Embedded) -> dict[str, Any]:
    return {
        "label": e.source.label,
        "path": e.source.path,
        "format": e.source.format,
        "precision": e.source.precision,
        "contract": e.contract.to_dict() if e.contract else None,
        "backend": e.backend,
        **e.source.info,
        "timing": {"activate_seconds": e.activate_seconds, "embed_seconds": e.embed_seconds, "batch": e.batch_limit},
    }


@dataclass
class _Scored:
    """A model's scores on one set and the protocol's accuracy."""

    scores: PairScores
    verification: dict[str, Any]
    accuracy: float
    #: the protocol's best-accuracy threshold on all pairs (similarity units)
    best_threshold: float
    cosine_verification: metrics.Verification


def _score(protocol: str, emb_a: np.ndarray, emb_b: np.ndarray, pairs: PairSet, folds: int) -> _Scored:
    scores = pair_scores(protocol, emb_a, emb_b, pairs.pairs, pairs.is_same)
    ver = metrics.verify_scores(scores.cosine, scores.is_same, folds)
    acc = protocol_accuracy(scores, folds)
    # ROC, AUC, EER and TAR@FAR are on cosine (rank-based: the same for every protocol's score).
    return _Scored(scores, {**ver.to_dict(), **acc.to_dict()}, acc.accuracy, acc.best_threshold, ver)


class _SetJudge:
    """Everything needed to judge the artifacts of one pair set."""

    def __init__(self, pairs: PairSet, reference: np.ndarray, teacher: np.ndarray | None, options: ParityOptions):
        self.pairs, self.options = pairs, options
        self.protocol, self.folds = options.protocol, options.folds
        self.reference = _score(self.protocol, reference, reference, pairs, self.folds)
        self.teacher_emb = teacher
        self.teacher = _score(self.protocol, teacher, teacher, pairs, self.folds) if teacher is not None else None
        self.points = statistics.operating_points(self.reference.scores, self.reference.best_threshold)

    def cross(self, student: np.ndarray) -> dict[str, _Scored] | None:
        t = self.teacher_emb
        if t is None or t.shape[1] != student.shape[1]:
            return None
        return {
            DIRECTIONS[0]: _score(self.protocol, t, student, self.pairs, self.folds),
            DIRECTIONS[1]: _score(self.protocol, student, t, self.pairs, self.folds),
        }

    def verdict(self, gate: str, point_drop: float, drops: np.ndarray | None, limit: float) -> Verdict:
        interval = None if drops is None else statistics.interval_pp(drops)
        return judge_drop(gate, point_drop, interval, limit, self.pairs.num_pairs)


def _curve(scored: _Scored) -> tuple[np.ndarray, np.ndarray]:
    return scored.cosine_verification.far, scored.cosine_verification.tar


def _named(verdict: Verdict) -> str:
    """The verdict's sentence, led by its gate's name."""
    return verdict.sentence if verdict.sentence.startswith(verdict.gate) else f"{verdict.gate}: {verdict.sentence}"


def _cosine_verdict(p1: float, limit: float, samples: int) -> Verdict:
    # A tensor tolerance on every image, not an estimate from pairs: no interval to take.
    status = PASS if p1 >= limit else FAIL
    relation = ">=" if status == PASS else "<"
    return Verdict("cosine_p1", status, p1, None, None, limit, "cosine", samples,
                   f"cosine_p1: {p1:.5f} {relation} {limit} vs the reference on {samples} images")


def _teacher_space(judge: _SetJudge, key: str, cross: dict[str, _Scored] | None, student_dim: int,
                   samples: dict[str, np.ndarray]) -> dict[str, Any]:
    """Cross-model verification in both directions, each with its drop's interval and verdict."""
    assert judge.teacher is not None and judge.teacher_emb is not None
    if cross is None:
        return {"error": f"teacher embeds {judge.teacher_emb.shape[1]}-d, this model {student_dim}-d: not one embedding space"}
    directions = {}
    teacher_acc = judge.teacher.accuracy
    for name, scored in cross.items():
        drop = 100 * (teacher_acc - scored.accuracy)
        boot = samples["teacher"] - samples[f"{key}|{name}"] if samples else None
        verdict = judge.verdict(f"teacher_drop[{name}]", drop, boot, judge.options.gates.max_teacher_drop)
        directions[name] = {**scored.verification, "drop_pp": drop, "verdict": verdict.to_dict()}
    worst = min(d["accuracy"] for d in directions.values())
    return {
        "teacher_accuracy": teacher_acc,
        "cross_accuracy": worst,
        "drop_pp": 100 * (teacher_acc - worst),
        "directions": directions,
        "verdict": combine([d["verdict"]["status"] for d in directions.values()]),
    }


def _bootstrap(judge: _SetJudge, artifacts: Sequence[np.ndarray | None], crosses: dict[str, Any]) -> dict[str, np.ndarray]:
    series: dict[str, PairScores] = {"reference": judge.reference.scores}
    if judge.teacher is not None:
        series["teacher"] = judge.teacher.scores
    for i, emb in enumerate(artifacts):
        if emb is not None:
            series[str(i)] = pair_scores(judge.protocol, emb, emb, judge.pairs.pairs, judge.pairs.is_same)
    for key, cross in crosses.items():
        for name, scored in (cross or {}).items():
            series[f"{key}|{name}"] = scored.scores
    return statistics.bootstrap_accuracies(series, judge.folds, judge.options.bootstrap, judge.options.seed)


def _artifact_row(judge: _SetJudge, index: int, art: Embedded, cross: dict[str, _Scored] | None,
                  samples: dict[str, np.ndarray], ref_emb: np.ndarray) -> dict[str, Any]:
    emb = art.embeddings
    assert emb is not None
    gates = judge.options.gates
    row: dict[str, Any] = {"agreement": None, "flips": None, "score_differences": None}
    verdicts: list[Verdict] = []
    failures: list[str] = []
    if emb.shape[1] != ref_emb.shape[1]:
        failures.append(f"embeds {emb.shape[1]}-d, the reference {ref_emb.shape[1]}-d")
    else:
        row["agreement"] = metrics.agreement(ref_emb, emb)
        verdicts.append(_cosine_verdict(row["agreement"]["cosine_p1"], gates.min_cosine, len(emb)))
    scored = _score(judge.protocol, emb, emb, judge.pairs, judge.folds)
    row["verification"] = {**scored.verification, "accuracy_drop_pp": 100 * (judge.reference.accuracy - scored.accuracy)}
    boot = samples["reference"] - samples[str(index)] if samples else None
    accuracy = judge.verdict("accuracy_drop", row["verification"]["accuracy_drop_pp"], boot, gates.max_acc_drop)
    row["verification"]["verdict"] = accuracy.to_dict()
    verdicts.append(accuracy)
    row["drift"] = metrics.threshold_drift(judge.reference.cosine_verification, scored.cosine_verification)
    row["flips"] = statistics.decision_flips(judge.reference.scores, scored.scores, judge.points)
    row["score_differences"] = statistics.score_differences(judge.reference.scores.cosine, scored.scores.cosine)
    row["teacher_space"] = None
    if judge.teacher is not None:
        space = _teacher_space(judge, str(index), cross, emb.shape[1], samples)
        row["teacher_space"] = space
        if "error" in space:
            failures.append(space["error"])
        else:
            verdicts += [Verdict(**d["verdict"]) for d in space["directions"].values()]
    statuses = [v.status for v in verdicts] + ([FAIL] if failures else [])
    row["gates"] = [v.to_dict() for v in verdicts]
    row["verdict"] = combine(statuses)
    row["passed"] = row["verdict"] == PASS
    row["failures"] = failures + [_named(v) for v in verdicts if v.status != PASS]
    return {**row, "curve": (scored.cosine_verification.far, scored.cosine_verification.tar)}


def judge_set(
    pairs: PairSet,
    reference: Embedded,
    artifacts: Sequence[Embedded],
    teacher: Embedded | None,
    options: ParityOptions,
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The report block of one pair set and its ROC curves."""
    assert reference.embeddings is not None
    ref_emb = reference.embeddings
    judge = _SetJudge(pairs, ref_emb, teacher.embeddings if teacher else None, options)
    curves = {f"reference ({reference.source.label})": _curve(judge.reference)}
    crosses = {"reference": judge.cross(ref_emb)}
    crosses.update({str(i): judge.cross(a.embeddings) for i, a in enumerate(artifacts) if a.embeddings is not None})
    samples = _bootstrap(judge, [a.embeddings for a in artifacts], crosses)
    teacher_block = None
    if teacher is not None and judge.teacher is not None:
        curves[f"teacher ({Path(teacher.source.path).name})"] = _curve(judge.teacher)
        teacher_block = {**model_block(teacher), "verification": judge.teacher.verification}
    reference_block = {**model_block(reference), "verification": judge.reference.verification, "teacher_space": None}
    if judge.teacher is not None:
        reference_block["teacher_space"] = _teacher_space(judge, "reference", crosses["reference"], ref_emb.shape[1], samples)
    rows = []
    for i, art in enumerate(artifacts):
        status = "missing" if getattr(art.source, "missing", False) else "skipped" if art.embeddings is None else "verified"
        row = {**model_block(art), "status": status,
               "skip_reason": art.source.skip_reason, "verification": None, "drift": None, "teacher_space": None,
               "gates": [], "verdict": None, "passed": None, "failures": []}
        if art.embeddings is not None:
            row.update(_artifact_row(judge, i, art, crosses.get(str(i)), samples, ref_emb))
            curves[art.source.label] = row.pop("curve")
        rows.append(row)
    block = {"pairs": pairs.describe(), "reference": reference_block, "teacher": teacher_block, "artifacts": rows}
    return block, curves


def _set_entry(block: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """One cell of the artifact x set summary."""
    ver = row.get("verification") or {}
    verdict = ver.get("verdict") or {}
    space = row.get("teacher_space") or {}
    return {
        "set": block["pairs"]["source"],
        "accuracy": ver.get("accuracy"),
        "accuracy_std": ver.get("accuracy_std"),
        "drop_pp": ver.get("accuracy_drop_pp"),
        "interval_pp": None if verdict.get("low") is None else [verdict["low"], verdict["high"]],
        "accuracy_verdict": verdict.get("status"),
        "teacher_space": space.get("verdict"),
        "verdict": row.get("verdict"),
    }


def _artifact_summaries(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per artifact: its verdict over every set, and (for readers of one set) the first set's numbers."""
    out = []
    for i, first in enumerate(blocks[0]["artifacts"]):
        rows = [block["artifacts"][i] for block in blocks]
        verified = first["status"] == "verified"
        verdict = combine([r["verdict"] for r in rows]) if verified else None
        out.append({
            **{k: first.get(k) for k in ("label", "path", "format", "precision", "backend", "status", "skip_reason")},
            "verdict": verdict,
            "passed": None if not verified else verdict == PASS,
            "failures": [f"{block['pairs']['source']}: {f}" for block, r in zip(blocks, rows) for f in r["failures"]],
            "sets": [_set_entry(block, r) for block, r in zip(blocks, rows)],
            "verification": first.get("verification"),
            "agreement": first.get("agreement"),
        })
    return out


def _options_block(options: ParityOptions) -> dict[str, Any]:
    gates = options.gates
    return {
        "batch_size": options.batch_size,
        "flip": options.flip,
        "folds": options.folds,
        "protocol": options.protocol,
        "bootstrap": options.bootstrap,
        "seed": options.seed,
        "estimate": (
            f"95 % paired bootstrap interval ({options.bootstrap} fold-stratified resamples, seed {options.seed}, "
            "the whole protocol re-run on each)" if options.bootstrap > 0
            else "point estimate only (--bootstrap 0): verdicts do not know their resolution"
        ),
        "inconclusive_as": options.inconclusive_as,
        "gates": {
            "min_cosine": gates.min_cosine,
            "max_acc_drop_pp": gates.max_acc_drop,
            "max_teacher_drop_pp": gates.max_teacher_drop,
        },
    }


def judge_sets(
    per_set: Sequence[tuple[PairSet, Sequence[Embedded]]],
    has_teacher: bool,
    options: ParityOptions,
    warnings: Sequence[list[str]],
) -> ParityResult:
    """Judge every set (embedded models in order: reference, artifacts..., [teacher]) and the whole run."""
    blocks, curves = [], []
    for (pair_set, embedded), set_warnings in zip(per_set, warnings):
        reference, artifacts = embedded[0], list(embedded[1:])
        teacher = artifacts.pop() if has_teacher else None
        block, set_curves = judge_set(pair_set, reference, artifacts, teacher, options)
        blocks.append({**block, "warnings": list(set_warnings)})
        curves.append((pair_set.name, block["pairs"]["different"], set_curves))
    artifacts = _artifact_summaries(blocks)
    for missing in (a for a in artifacts if a["status"] == "missing"):
        # A listed artifact whose file is gone fails the run (unlike a backend absent by design).
        missing.update(verdict=FAIL, passed=False, failures=[missing["skip_reason"]])
    statuses = [a["verdict"] for a in artifacts if a["status"] in ("verified", "missing")]
    # Nothing verified proves nothing: that run fails.
    verdict = combine(statuses) if statuses else FAIL
    report = {
        "options": _options_block(options),
        "protocol": options.protocol,
        "pairs": blocks[0]["pairs"],
        "reference": blocks[0]["reference"],
        "teacher": blocks[0]["teacher"],
        "artifacts": artifacts,
        "sets": blocks,
        "verdict": verdict,
        "passed": verdict == PASS,
        "exit_code": exit_code(statuses, options.inconclusive_as) if statuses else 1,
    }
    return ParityResult(report, curves)
