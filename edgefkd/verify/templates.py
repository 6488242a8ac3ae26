"""Judging artifacts on IJB-B/C template verification and on 1:N search in a teacher gallery.

IJB 1:1: every model embeds every face; templates are pooled per model (ijb.pool_templates)
and each template pair is scored by cosine. Per artifact: TAR at FAR 1e-6..1e-1 (null with
the reason where the set has too few impostor pairs), ROC AUC, cosine agreement with the
reference on the faces, and with a teacher the cross-model rows (the teacher pools template
1, the artifact template 2, and the other way round).

1:N: the gallery is enrolled by the teacher (the reference without one); probes are
embedded by the baseline (the same model as the gallery) and by each artifact.

Gates are drops judged on a 95 % bootstrap interval (verdict.judge_drop): the TAR drop at
the smallest FAR the set resolves, resampling first templates of pairs as clusters (a
template's pairs are not independent); the rank-1 drop, resampling mated probes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import BackendUnavailable, InputError
from . import metrics
from .engine import EngineOptions, embed_items
from .identification import IdentityList, enrol, identify, rank1_drop_bootstrap
from .ijb import IJBSet, pool_templates, template_pair_scores
from .judge import model_block as _model_block
from .parity import Embedded, ModelSource, Targets
from .verdict import PASS, FAIL, Verdict, combine, judge_drop

IJB_FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class TemplateGates:
    min_cosine: float = 0.99
    max_tar_drop: float = 1.0  # pp, at the gate FAR, vs the reference
    max_teacher_drop: float = 1.0  # pp, worst cross direction vs the teacher's own TAR
    max_rank1_drop: float = 1.0  # pp, artifact probes vs baseline probes in the same gallery


@dataclass
class TemplateOptions:
    engine: EngineOptions = field(default_factory=EngineOptions)
    detector_weighting: bool = False
    bootstrap: int = 1000
    gates: TemplateGates = field(default_factory=TemplateGates)


@dataclass
class TemplatesResult:
    report: dict[str, Any]
    curves: dict[str, tuple[np.ndarray, np.ndarray]]


# -- IJB 1:1 metrics ------------------------------------------------------------------------


def ijb_verification(scores: np.ndarray, is_same: np.ndarray) -> dict[str, Any]:
    """ROC AUC, EER and TAR at every IJB FAR target for one set of template-pair scores."""
    far, tar = metrics.roc_curve(scores, is_same)
    return {
        "auc": metrics.roc_auc(far, tar),
        "eer": metrics.equal_error_rate(far, tar),
        "tar_at_far": {metrics.far_key(t): metrics.tar_at_far(scores, is_same, t) for t in IJB_FAR_TARGETS},
        "roc": (far, tar),
    }


def gate_far(impostors: int) -> float | None:
    """The smallest FAR target the set resolves (at least 1/FAR impostor pairs), None if none."""
    usable = [t for t in IJB_FAR_TARGETS if impostors >= np.ceil(1.0 / t - 1e-9)]
    return min(usable) if usable else None


def _tar(scores: np.ndarray, is_same: np.ndarray, far: float) -> float | None:
    value = metrics.tar_at_far(scores, is_same, far)["tar"]
    return None if value is None else 100.0 * value


def tar_drop_interval(
    baseline: np.ndarray, candidates: Sequence[np.ndarray], is_same: np.ndarray, clusters: np.ndarray,
    far: float, resamples: int, seed: int = 0,
) -> tuple[float, float] | None:
    """95 % interval of baseline TAR - worst candidate TAR (pp), resampling pair clusters jointly."""
    ids, cluster_of = np.unique(clusters, return_inverse=True)
    members = np.split(np.argsort(cluster_of, kind="stable"), np.cumsum(np.bincount(cluster_of.ravel()))[:-1])
    rng = np.random.default_rng(seed)
    drops = []
    for _ in range(resamples):
        idx = np.concatenate([members[c] for c in rng.integers(0, len(ids), size=len(ids))])
        base = _tar(baseline[idx], is_same[idx], far)
        worst = [_tar(c[idx], is_same[idx], far) for c in candidates]
        if base is not None and None not in worst and is_same[idx].any():
            drops.append(base - min(worst))  # type: ignore[type-var]
    if len(drops) < max(10, resamples // 2):
        return None
    low, high = np.percentile(drops, [2.5, 97.5])
    return float(low), float(high)


def _cosine_verdict(p1: float, limit: float, faces: int) -> Verdict:
    status = PASS if p1 >= limit else FAIL
    sentence = f"cosine p1 to the reference {p1:.5f} {'>=' if status == PASS else '<'} {limit} on {faces} faces"
    return Verdict("cosine_p1", status, p1, None, None, limit, "cosine", faces, sentence)


def _pooled(ijb: IJBSet, embedded: Embedded, weighting: bool) -> np.ndarray:
    assert embedded.embeddings is not None
    _, feats = pool_templates(embedded.embeddings, ijb.templates, ijb.medias, ijb.scores if weighting else None)
    return feats


def judge_ijb(
    ijb: IJBSet, reference: Embedded, artifacts: Sequence[Embedded], teacher: Embedded | None,
    options: TemplateOptions, rows: dict[str, dict[str, Any]], curves: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    """IJB metrics of the reference and teacher; per artifact a block and verdicts added to `rows`."""
    ids = np.unique(ijb.templates)
    pairs, same = ijb.template_pairs, ijb.is_same
    impostors = int((~same).sum())
    far = gate_far(impostors)
    resamples = options.bootstrap
    ref_feats = _pooled(ijb, reference, options.detector_weighting)
    ref_scores = template_pair_scores(ids, ref_feats, ref_feats, pairs)
    ref_ver = ijb_verification(ref_scores, same)
    curves[f"reference ({reference.source.label})"] = ref_ver.pop("roc")
    block: dict[str, Any] = {"protocol": ijb.describe(), "gate_far": far, "reference": ref_ver, "teacher": None}
    teacher_feats = teacher_scores = None
    if teacher is not None:
        teacher_feats = _pooled(ijb, teacher, options.detector_weighting)
        teacher_scores = template_pair_scores(ids, teacher_feats, teacher_feats, pairs)
        block["teacher"] = ijb_verification(teacher_scores, same)
        curves["teacher"] = block["teacher"].pop("roc")
    for art in artifacts:
        if art.embeddings is None:
            continue
        row = rows[art.source.label]
        feats = _pooled(ijb, art, options.detector_weighting)
        scores = template_pair_scores(ids, feats, feats, pairs)
        ver = ijb_verification(scores, same)
        curves[art.source.label] = ver.pop("roc")
        entry: dict[str, Any] = {"verification": ver, "cross": None}
        assert reference.embeddings is not None
        if art.embeddings.shape[1] == reference.embeddings.shape[1]:
            entry["agreement"] = metrics.agreement(reference.embeddings, art.embeddings)
            row["verdicts"].append(_cosine_verdict(entry["agreement"]["cosine_p1"], options.gates.min_cosine, len(ijb.items)))
        if far is not None:
            point = _tar(ref_scores, same, far) - _tar(scores, same, far)  # type: ignore[operator]
            interval = tar_drop_interval(ref_scores, [scores], same, pairs[:, 0], far, resamples) if resamples else None
            row["verdicts"].append(judge_drop(f"ijb_tar_drop@FAR{far:g}", point, interval, options.gates.max_tar_drop,
                                              len(np.unique(pairs[:, 0])), item_name="templates"))
        if teacher_feats is not None and teacher_scores is not None:
            entry["cross"] = _cross_rows(ijb, ids, teacher_feats, teacher_scores, feats, far, options, row["verdicts"])
        row["ijb"] = entry
    return block


def _cross_rows(
    ijb: IJBSet, ids: np.ndarray, teacher_feats: np.ndarray, teacher_scores: np.ndarray, feats: np.ndarray,
    far: float | None, options: TemplateOptions, verdicts: list[Verdict],
) -> dict[str, Any]:
    """Teacher pools template 1 and the artifact template 2, and the other way round; the worse judged."""
    pairs, same = ijb.template_pairs, ijb.is_same
    if feats.shape[1] != teacher_feats.shape[1]:
        return {"error": f"teacher embeds {teacher_feats.shape[1]}-d, this model {feats.shape[1]}-d"}
    cross = {
        "teacher_t1_artifact_t2": template_pair_scores(ids, teacher_feats, feats, pairs),
        "artifact_t1_teacher_t2": template_pair_scores(ids, feats, teacher_feats, pairs),
    }
    if far is not None:
        worst = min(_tar(s, same, far) for s in cross.values())  # type: ignore[type-var]
        point = _tar(teacher_scores, same, far) - worst  # type: ignore[operator]
        interval = (tar_drop_interval(teacher_scores, list(cross.values()), same, pairs[:, 0], far, options.bootstrap)
                    if options.bootstrap else None)
        verdicts.append(judge_drop(f"ijb_teacher_tar_drop@FAR{far:g}", point, interval, options.gates.max_teacher_drop,
                                   len(np.unique(pairs[:, 0])), item_name="templates"))
    return {name: _without_roc(ijb_verification(s, same)) for name, s in cross.items()}


def _without_roc(ver: dict[str, Any]) -> dict[str, Any]:
    ver.pop("roc", None)
    return ver


# -- 1:N --------------------------------------------------------------------------------------


def judge_identification(
    gallery: IdentityList, probes: IdentityList, gallery_model: Embedded, baseline: Embedded,
    artifacts: Sequence[Embedded], options: TemplateOptions, rows: dict[str, dict[str, Any]],
    reference: Embedded | None = None,
) -> dict[str, Any]:
    """Rank-k / TPIR of the baseline probes and of each artifact's probes in the same gallery.

    Artifacts not judged on IJB faces get the cosine gate here, on the reference's probes.
    """
    assert gallery_model.embeddings is not None and baseline.embeddings is not None
    names, entries = enrol(gallery_model.embeddings, gallery.identities)
    base = identify(names, entries, baseline.embeddings, probes.identities)
    block = {
        "gallery": {"source": str(gallery.source), "faces": len(gallery.items), "model": gallery_model.source.label},
        "probes": {"source": str(probes.source), "faces": len(probes.items)},
        "baseline": {"model": baseline.source.label, **base.summary},
    }
    for art in artifacts:
        if art.embeddings is None:
            continue
        row = rows[art.source.label]
        if art.embeddings.shape[1] != entries.shape[1]:
            row["identification"] = {"error": f"gallery embeds {entries.shape[1]}-d, this model {art.embeddings.shape[1]}-d"}
            row["verdicts"].append(Verdict("rank1_drop", FAIL, float("nan"), None, None, options.gates.max_rank1_drop, "pp",
                                           0, row["identification"]["error"]))
            continue
        result = identify(names, entries, art.embeddings, probes.identities)
        point = 100 * (base.summary["rank1"] - result.summary["rank1"])
        interval = rank1_drop_bootstrap(base.rank_of_truth, result.rank_of_truth, options.bootstrap) if options.bootstrap else None
        row["identification"] = {**result.summary, "rank1_drop_pp": point}
        if (reference is not None and row["ijb"] is None and reference.embeddings is not None
                and reference.embeddings.shape == art.embeddings.shape):
            row["identification"]["agreement"] = metrics.agreement(reference.embeddings, art.embeddings)
            p1 = row["identification"]["agreement"]["cosine_p1"]
            row["verdicts"].append(_cosine_verdict(p1, options.gates.min_cosine, len(probes.items)))
        row["verdicts"].append(judge_drop("rank1_drop", point, interval, options.gates.max_rank1_drop,
                                          int(len(result.rank_of_truth)), item_name="mated probes"))
    return block


# -- orchestration ------------------------------------------------------------------------------


def _check_runnable(models: Sequence[Embedded | None]) -> None:
    for model in models:
        if model is not None and model.embeddings is None:
            raise BackendUnavailable(f"{model.source.label} could not run here: {model.source.skip_reason}")


def _row(e: Embedded) -> dict[str, Any]:
    block = _model_block(e)
    block.update(status="skipped" if e.embeddings is None else "verified", skip_reason=e.source.skip_reason,
                 ijb=None, identification=None, verdicts=[], verdict=None)
    return block


def run_templates(
    targets: Targets, teacher: ModelSource | None, ijb: IJBSet | None, gallery: IdentityList | None,
    probes: IdentityList | None, options: TemplateOptions, on_progress: Callable[[int], None] | None = None,
) -> TemplatesResult:
    """Embed and judge every artifact on IJB templates and/or 1:N search."""
    if ijb is None and gallery is None:
        raise InputError("give --ijb DIR or --gallery FILE with --probes FILE")
    if (gallery is None) != (probes is None):
        raise InputError("--gallery and --probes go together")
    sources = [targets.reference, *targets.artifacts] + ([teacher] if teacher else [])
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    report: dict[str, Any] = {"ijb": None, "identification": None}
    rows: dict[str, dict[str, Any]] | None = None
    if ijb is not None:
        embedded = embed_items(ijb.items, sources, options.engine, on_progress)
        reference, arts = embedded[0], embedded[1 : 1 + len(targets.artifacts)]
        teacher_e = embedded[-1] if teacher else None
        _check_runnable([reference, teacher_e])
        rows = {a.source.label: _row(a) for a in arts}
        report["ijb"] = judge_ijb(ijb, reference, arts, teacher_e, options, rows, curves)
        report["reference"], report["teacher"] = _model_block(reference), teacher_e and _model_block(teacher_e)
    if gallery is not None and probes is not None:
        gallery_source = teacher or targets.reference
        (gallery_e,) = embed_items(gallery.items, [gallery_source], options.engine, on_progress)
        embedded = embed_items(probes.items, sources, options.engine, on_progress)
        _check_runnable([gallery_e, *([embedded[-1]] if teacher else [embedded[0]])])
        arts = embedded[1 : 1 + len(targets.artifacts)]
        if rows is None:
            rows = {a.source.label: _row(a) for a in arts}
            report["reference"] = _model_block(embedded[0])
            report["teacher"] = _model_block(embedded[-1]) if teacher else None
        report["identification"] = judge_identification(
            gallery, probes, gallery_e, embedded[-1] if teacher else embedded[0], arts, options, rows, embedded[0]
        )
        if teacher:  # the reference's own probes in the teacher's gallery, for comparison
            ref_search = identify(*enrol(gallery_e.embeddings, gallery.identities), embedded[0].embeddings, probes.identities)  # type: ignore[arg-type]
            report["identification"]["reference_probes"] = ref_search.summary
    assert rows is not None
    for row in rows.values():
        if row["status"] == "verified":
            row["verdict"] = combine([v.status for v in row["verdicts"]]) if row["verdicts"] else PASS
        row["verdicts"] = [v.to_dict() for v in row["verdicts"]]
    statuses = [r["verdict"] for r in rows.values() if r["verdict"]]
    report["options"] = _options_block(options)
    report["artifacts"] = list(rows.values())
    report["verdict"] = combine(statuses) if statuses else FAIL
    return TemplatesResult(report, curves)


def _options_block(options: TemplateOptions) -> dict[str, Any]:
    e = options.engine
    return {
        "engine": e.engine, "batch_size": e.batch_size, "flip": e.flip, "storage_dtype": e.storage_dtype,
        "detector_weighting": options.detector_weighting, "bootstrap": options.bootstrap,
        "gates": vars(options.gates).copy(),
    }
