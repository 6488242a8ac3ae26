"""verify-parity outputs: report.json, report.md and roc.png, written as one directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import check_replaceable_dir
from ..fileio import staged_directory
from .metrics import FAR_TARGETS, far_key
from .parity import ParityResult

REPORT_FILES = ("report.json", "report.md", "roc.png")


def check_report_dir(directory: Path) -> None:
    """Refuse a report folder that holds anything but an earlier report."""
    check_replaceable_dir(directory, REPORT_FILES)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _cos(agreement: dict[str, Any] | None) -> str:
    return "-" if not agreement else f"{agreement['cosine_p1']:.5f}"


def summary_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table (shared by report.md and the terminal)."""
    header = ["model", "fmt", "prec", "cos p1", "acc % ± std", "best-thr acc %", "AUC", "EER %", "FAR/FRR % @ref thr", "teacher-space acc %", "load+embed s", "verdict"]
    rows = []
    ref = report["reference"]
    entries = [("reference", ref)] + ([("teacher", report["teacher"])] if report["teacher"] else [])
    entries += [(a["label"], a) for a in report["artifacts"]]
    for name, entry in entries:
        ver = entry.get("verification")
        drift = (entry.get("drift") or {}).get("best_accuracy")
        space = entry.get("teacher_space") or {}
        if entry is ref or entry is report["teacher"]:
            verdict = name
        elif entry["status"] == "skipped":
            verdict = f"SKIPPED: {entry['skip_reason']}"
        else:
            verdict = "PASS" if entry["passed"] else "FAIL: " + "; ".join(entry["failures"])
        timing = entry["timing"]
        rows.append([
            name,
            entry["format"],
            entry["precision"],
            _cos(entry.get("agreement")),
            "-" if not ver else f"{_pct(ver['accuracy'])} ± {_pct(ver['accuracy_std'])}",
            "-" if not ver else _pct(ver["best_threshold_accuracy"]),
            "-" if not ver else f"{ver['auc']:.4f}",
            "-" if not ver else _pct(ver["eer"]),
            "-" if not drift else f"{_pct(drift['artifact']['far'])}/{_pct(drift['artifact']['frr'])}",
            space.get("error", "-") if "cross_accuracy" not in space else _pct(space["cross_accuracy"]),
            "-" if entry.get("status") == "skipped" else f"{timing['activate_seconds'] + timing['embed_seconds']:.2f}",
            verdict,
        ])
    return header, rows


def render_markdown(report: dict[str, Any]) -> str:
    pairs = report["pairs"]
    gates = report["options"]["gates"]
    ref = report["reference"]
    lines = [
        "# verify-parity report",
        "",
        f"Pairs: `{pairs['source']}` ({pairs['format']}): {pairs['pairs']} pairs "
        f"({pairs['same']} same, {pairs['different']} different), {pairs['unique_images']} unique images; "
        f"{report['options']['folds']}-fold accuracy, flip test {'on' if report['options']['flip'] else 'off'}.",
        f"Gates: cosine p1 >= {gates['min_cosine']}, accuracy drop <= {gates['max_acc_drop_pp']} pp, "
        f"teacher-space drop <= {gates['max_teacher_drop_pp']} pp.",
        f"Reference: `{ref['path']}` ({ref.get('arch', ref['format'])}).",
    ]
    if report["teacher"]:
        t = report["teacher"]
        lines.append(f"Teacher: `{t['path']}`, its own accuracy {_pct(t['verification']['accuracy'])} % (the teacher-space ceiling).")
    if report["options"].get("artifact_hashes_verified") is False:
        lines.append("Artifact sha256 hashes were NOT checked against the manifest (--no-verify-hash).")
    lines += ["", f"**Verdict: {'PASS' if report['passed'] else 'FAIL'}**", ""]
    header, rows = summary_rows(report)
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    lines += [
        "",
        "acc: 10-fold LFW protocol (threshold chosen on the other 9 folds). best-thr acc: threshold tuned on all "
        "pairs (optimistic). FAR/FRR @ref thr: the reference's best-accuracy threshold applied unchanged to the model.",
        "",
    ]
    lines.append("## TAR at FAR")
    for entry in [ref] + [a for a in report["artifacts"] if a["verification"]]:
        cells = []
        for target in FAR_TARGETS:
            point = entry["verification"]["tar_at_far"][far_key(target)]
            cells.append(f"FAR {target:g}: " + (point["note"] if point["tar"] is None else f"TAR {_pct(point['tar'])} %"))
        lines.append(f"- {entry['label']}: " + "; ".join(cells))
    boots = [a for a in report["artifacts"] if a.get("bootstrap")]
    if boots:
        lines += ["", "## Paired bootstrap (accuracy difference vs reference, 95% interval)"]
        for a in boots:
            b = a["bootstrap"]
            lines.append(f"- {a['label']}: {100 * b['difference']:+.2f} pp [{100 * b['ci95'][0]:+.2f}, {100 * b['ci95'][1]:+.2f}] ({b['resamples']} resamples)")
    lines += ["", "![ROC](roc.png)", ""]
    return "\n".join(lines)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], impostors: int, path: Path) -> None:
    """All ROC curves on one plot with a logarithmic FAR axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # FAR 0 has no place on a log axis: draw it at half the smallest resolvable FAR.
    floor = 0.5 / max(impostors, 1)
    styles = ("-", "--", ":", "-.")
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    try:
        for i, (label, (far, tar)) in enumerate(curves.items()):
            ax.plot(np.maximum(far, floor), tar, label=label, drawstyle="steps-post", linestyle=styles[i % len(styles)], alpha=0.85)
        ax.set_xscale("log")
        ax.set_xlim(floor, 1.0)
        ax.axvline(1.0 / max(impostors, 1), color="grey", linewidth=0.8)
        ax.text(1.0 / max(impostors, 1), 0.02, " 1 impostor", color="grey", fontsize=7)
        ax.set_ylim(0.0, 1.01)
        ax.set_xlabel(f"FAR (log scale; FAR 0 drawn at {floor:.2g})")
        ax.set_ylabel("TAR (true accept rate)")
        ax.set_title("verify-parity ROC")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def write_report(result: ParityResult, directory: Path) -> Path:
    """Write report.json, report.md and roc.png into `directory` (replaced as a whole)."""
    check_report_dir(directory)
    with staged_directory(directory, force=True) as stage:
        (stage / "report.json").write_text(json.dumps(result.report, indent=2) + "\n")
        (stage / "report.md").write_text(render_markdown(result.report))
        plot_roc(result.curves, result.report["pairs"]["different"], stage / "roc.png")
    return directory
