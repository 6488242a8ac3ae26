"""verify-parity outputs: report.json, report.md and roc.png, written as one directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import check_replaceable_dir
from ..fileio import staged_directory
from .metrics import FAR_TARGETS, far_key
from .judge import ParityResult

REPORT_FILES = ("report.json", "report.md", "roc.png")


def check_report_dir(directory: Path) -> None:
    """Refuse a report folder that holds anything but an earlier report."""
    check_replaceable_dir(directory, REPORT_FILES)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _cos(agreement: dict[str, Any] | None) -> str:
    return "-" if not agreement else f"{agreement['cosine_p1']:.5f}"


def _interval(verdict: dict[str, Any] | None) -> str:
    """`+0.57 [-1.14, +2.27]` pp, or the point alone when no interval was computed."""
    if not verdict:
        return "-"
    if verdict.get("low") is None:
        return f"{verdict['point']:+.2f} (point)"
    return f"{verdict['point']:+.2f} [{verdict['low']:+.2f}, {verdict['high']:+.2f}]"


def _teacher_cell(space: dict[str, Any]) -> str:
    if not space:
        return "-"
    if "error" in space:
        return space["error"]
    return " / ".join(
        f"{_pct(d['accuracy'])} ({_interval(d['verdict'])} {d['verdict']['status']})" for d in space["directions"].values()
    )


def _flips(entry: dict[str, Any]) -> str:
    best = (entry.get("flips") or {}).get("best_accuracy")
    if not best or best.get("flipped") is None:
        return "-"
    return f"{best['flipped']} (-{best['reference_right_candidate_wrong']}/+{best['reference_wrong_candidate_right']}, p={best['mcnemar_p']:.2g})"


def _verdict_cell(entry: dict[str, Any]) -> str:
    if entry.get("status") == "skipped":
        return f"SKIPPED: {entry['skip_reason']}"
    if entry.get("status") == "missing":
        return f"FAIL: {entry['skip_reason']}"
    return str(entry["verdict"]).upper()


def gate_notes(block: dict[str, Any]) -> list[str]:
    """The sentence of every gate that did not pass, and other failures, one line each."""
    return [f"{a['label']}: {f}" for a in block["artifacts"] for f in a.get("failures") or []]


def summary_rows(block: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one pair set's table (shared by report.md and the terminal)."""
    header = ["model", "fmt", "prec", "cos p1", "acc % ± std", "drop pp [95% CI]", "best-thr acc %", "AUC", "EER %",
              "flips @ref thr", "teacher-space acc % T>S / S>T (drop pp [95% CI])", "load+embed s", "verdict"]
    rows = []
    ref, teacher = block["reference"], block["teacher"]
    entries = [("reference", ref)] + ([("teacher", teacher)] if teacher else [])
    entries += [(a["label"], a) for a in block["artifacts"]]
    for name, entry in entries:
        ver = entry.get("verification")
        is_model = entry is ref or entry is teacher
        timing = entry["timing"]
        rows.append([
            name,
            entry["format"],
            entry["precision"],
            _cos(entry.get("agreement")),
            "-" if not ver else f"{_pct(ver['accuracy'])} ± {_pct(ver['accuracy_std'])}",
            "-" if not ver or is_model else _interval(ver.get("verdict")),
            "-" if not ver else _pct(ver["best_threshold_accuracy"]),
            "-" if not ver else f"{ver['auc']:.4f}",
            "-" if not ver else _pct(ver["eer"]),
            _flips(entry),
            _teacher_cell(entry.get("teacher_space") or {}),
            "-" if entry.get("status") in ("skipped", "missing") else f"{timing['activate_seconds'] + timing['embed_seconds']:.2f}",
            name if is_model else _verdict_cell(entry),
        ])
    return header, rows


def matrix_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The artifact x set summary: accuracy ± interval of the drop and the verdict per set."""
    sets = report["sets"]
    header = ["model"] + [Path(b["pairs"]["source"]).name for b in sets] + ["verdict"]
    rows = [["reference"] + [_pct(b["reference"]["verification"]["accuracy"]) for b in sets] + ["-"]]
    for art in report["artifacts"]:
        if art["status"] in ("skipped", "missing"):
            rows.append([art["label"]] + ["-"] * len(sets) + ["SKIPPED" if art["status"] == "skipped" else "FAIL: file missing"])
            continue
        cells = []
        for cell in art["sets"]:
            span = "" if cell["interval_pp"] is None else f" [{cell['interval_pp'][0]:+.2f}, {cell['interval_pp'][1]:+.2f}]"
            teacher = f"; teacher space {cell['teacher_space']}" if cell["teacher_space"] else ""
            cells.append(f"{_pct(cell['accuracy'])} (drop {cell['drop_pp']:+.2f}{span} pp {cell['accuracy_verdict']}{teacher})")
        rows.append([art["label"]] + cells + [str(art["verdict"]).upper()])
    return header, rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]


def _set_markdown(block: dict[str, Any], options: dict[str, Any]) -> list[str]:
    pairs = block["pairs"]
    lines = [
        f"## {pairs['source']}",
        "",
        f"`{pairs['source']}` ({pairs['format']}): {pairs['pairs']} pairs ({pairs['same']} same, "
        f"{pairs['different']} different), {pairs['unique_images']} unique images.",
        "",
    ]
    lines += [f"> warning: {w}" for w in block.get("warnings", [])]
    header, rows = summary_rows(block)
    lines += _table(header, rows) + ["", "### Gates", ""]
    for art in block["artifacts"]:
        for gate in art.get("gates") or []:
            lines.append(f"- {art['label']} `{gate['gate']}`: **{gate['status']}** — {gate['sentence']}")
    lines += ["", "### TAR at FAR", ""]
    for entry in [block["reference"]] + [a for a in block["artifacts"] if a["verification"]]:
        cells = []
        for target in FAR_TARGETS:
            point = entry["verification"]["tar_at_far"][far_key(target)]
            cells.append(f"FAR {target:g}: " + (point["note"] if point["tar"] is None else f"TAR {_pct(point['tar'])} %"))
        lines.append(f"- {entry['label']}: " + "; ".join(cells))
    lines += ["", "### Score differences (cosine, artifact minus reference)", ""]
    for art in block["artifacts"]:
        d = art.get("score_differences")
        if d:
            lines.append(f"- {art['label']}: mean {d['mean']:+.5f}, std {d['std']:.5f}, p1 {d['p1']:+.5f}, "
                         f"p99 {d['p99']:+.5f}, largest |difference| {d['abs_max']:.5f}")
    return lines + [""]


def render_markdown(report: dict[str, Any]) -> str:
    options = report["options"]
    gates = options["gates"]
    ref = report["reference"]
    lines = [
        "# verify-parity report",
        "",
        f"Protocol: **{options['protocol']}** ({options['folds']}-fold), flip test {'on' if options['flip'] else 'off'}. "
        f"Estimate: {options['estimate']}.",
        f"Gates: cosine p1 >= {gates['min_cosine']}, accuracy drop <= {gates['max_acc_drop_pp']} pp, "
        f"teacher-space drop <= {gates['max_teacher_drop_pp']} pp in both directions. A gate passes when the whole "
        "interval of the drop is within it, fails when the whole interval is beyond it, and is inconclusive otherwise.",
        f"Reference: `{ref['path']}` ({ref.get('arch', ref['format'])}).",
    ]
    if report["teacher"]:
        t = report["teacher"]
        lines.append(f"Teacher: `{t['path']}` (its own accuracy is the teacher-space ceiling).")
    lines += ["", f"**Verdict: {report['verdict'].upper()}** (exit code {report['exit_code']})", ""]
    lines += _table(*matrix_rows(report)) + [""]
    for block in report["sets"]:
        lines += _set_markdown(block, options)
    lines += [
        "acc: 10-fold accuracy of the protocol (threshold chosen on the other 9 folds). best-thr acc: threshold tuned on "
        "all pairs (optimistic). flips @ref thr: pairs whose decision changes at the reference's best-accuracy threshold "
        "(-lost/+gained, exact McNemar p).",
        "",
        "![ROC](roc.png)",
        "",
    ]
    return "\n".join(lines)


def _plot_panel(ax: Any, title: str, impostors: int, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    # FAR 0 has no place on a log axis: draw it at half the smallest resolvable FAR.
    floor = 0.5 / max(impostors, 1)
    styles = ("-", "--", ":", "-.")
    for i, (label, (far, tar)) in enumerate(curves.items()):
        ax.plot(np.maximum(far, floor), tar, label=label, drawstyle="steps-post", linestyle=styles[i % len(styles)], alpha=0.85)
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.axvline(1.0 / max(impostors, 1), color="grey", linewidth=0.8)
    ax.text(1.0 / max(impostors, 1), 0.02, " 1 impostor", color="grey", fontsize=7)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel(f"FAR (log scale; FAR 0 drawn at {floor:.2g})")
    ax.set_ylabel("TAR (true accept rate)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)


def plot_roc(panels: list[tuple[str, int, dict[str, tuple[np.ndarray, np.ndarray]]]], path: Path) -> None:
    """One panel per pair set, all models' ROC curves on it, logarithmic FAR axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5), dpi=110, squeeze=False)
    try:
        for ax, (name, impostors, curves) in zip(axes[0], panels):
            _plot_panel(ax, f"ROC on {Path(name).name}", impostors, curves)
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
        plot_roc(result.curves, stage / "roc.png")
    return directory
