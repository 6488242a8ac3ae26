"""Outputs of verify-parity on IJB templates and 1:N search: report.json, report.md, roc.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fileio import staged_directory
from .report import check_report_dir, plot_roc
from .templates import IJB_FAR_TARGETS, TemplatesResult

MECHANICS_NOTE = (
    "On a small set (such as the test fixture built from ../shared/faces) these numbers prove the "
    "mechanics, not the model: the intervals say how little such a set can resolve."
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _tar_cell(ver: dict[str, Any] | None, far: float | None) -> str:
    if not ver or far is None:
        return "-"
    return _pct(ver["tar_at_far"][f"{far:.0e}"]["tar"])


def summary_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table (report.md and the terminal)."""
    ijb, ident = report["ijb"], report["identification"]
    far = ijb["gate_far"] if ijb else None
    header = ["model", "fmt", "prec", "cos p1"]
    if ijb:
        header += ["IJB AUC", f"TAR % @FAR {far:g}" if far else "TAR %", "cross TAR % (worst)"]
    if ident:
        header += ["rank-1 %", "rank-5 %", "rank-1 drop pp"]
    header += ["verdict"]
    rows = []
    reference = {**report["reference"], "label": "reference"}
    teacher = report["teacher"] and {**report["teacher"], "label": "teacher"}
    # Without a teacher the reference enrols the gallery and its probes are the baseline.
    entries = [(reference, {"verification": ijb["reference"]} if ijb else None,
                (ident.get("reference_probes") or ident["baseline"]) if ident else None, None)]
    if teacher:
        entries.append((teacher, {"verification": ijb["teacher"]} if ijb and ijb["teacher"] else None,
                        ident["baseline"] if ident else None, None))
    for a in report["artifacts"]:
        entries.append((a, a["ijb"], a["identification"], a))
    for model, ijb_entry, ident_entry, art in entries:
        cells = [model["label"], model["format"], model["precision"]]
        agreement = (ijb_entry or {}).get("agreement") or (ident_entry or {}).get("agreement")
        cells.append("-" if not agreement else f"{agreement['cosine_p1']:.5f}")
        if ijb:
            ver = (ijb_entry or {}).get("verification")
            cross = (ijb_entry or {}).get("cross") or {}
            worst = [c["tar_at_far"][f"{far:.0e}"]["tar"] for c in cross.values() if isinstance(c, dict) and far] if cross else []
            cells += ["-" if not ver else f"{ver['auc']:.4f}", _tar_cell(ver, far),
                      cross.get("error", "-") if not worst or None in worst else _pct(min(worst))]
        if ident:
            entry = ident_entry or {}
            cells += [_pct(entry.get("rank1")), _pct(entry.get("rank5")),
                      "-" if entry.get("rank1_drop_pp") is None else f"{entry['rank1_drop_pp']:+.2f}"]
        if art is None:
            own = report["teacher"] if model is teacher else report["reference"]
            cells.append(model["label"] + (" (1:N baseline)" if ident and ident["baseline"]["model"] == own["label"] else ""))
        elif art["status"] == "skipped":
            cells.append(f"SKIPPED: {art['skip_reason']}")
        else:
            cells.append(art["verdict"].upper())
        rows.append(cells)
    return header, rows


def _ijb_lines(ijb: dict[str, Any], report: dict[str, Any]) -> list[str]:
    p = ijb["protocol"]
    lines = [
        "## IJB 1:1 template verification",
        "",
        f"`{p['source']}` ({p['format']}): {p['faces']} faces, {p['templates']} templates, {p['media']} media, "
        f"{p['pairs']} template pairs ({p['same']} same, {p['different']} different). Gate FAR: "
        + (f"{ijb['gate_far']:g} (the smallest FAR this set resolves)." if ijb["gate_far"] else "none: too few impostor pairs."),
        "",
        "| model | AUC | EER % | " + " | ".join(f"TAR % @ {t:g}" for t in IJB_FAR_TARGETS) + " |",
        "|" + "---|" * (3 + len(IJB_FAR_TARGETS)),
    ]
    models = [("reference", ijb["reference"])] + ([("teacher", ijb["teacher"])] if ijb["teacher"] else [])
    models += [(a["label"], a["ijb"]["verification"]) for a in report["artifacts"] if a["ijb"]]
    for label, ver in models:
        cells = [_pct(ver["tar_at_far"][f"{t:.0e}"]["tar"]) for t in IJB_FAR_TARGETS]
        lines.append(f"| {label} | {ver['auc']:.4f} | {_pct(ver['eer'])} | " + " | ".join(cells) + " |")
    notes = {p["note"] for _, v in models for p in v["tar_at_far"].values() if p["note"]}
    lines += [""] + [f"- null TAR: {n}" for n in sorted(notes)]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    lines = ["# verify-parity: templates and 1:N search", "", f"**Verdict: {report['verdict'].upper()}**", ""]
    header, rows = summary_rows(report)
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    lines += ["", MECHANICS_NOTE, ""]
    if report["ijb"]:
        lines += _ijb_lines(report["ijb"], report)
    ident = report["identification"]
    if ident:
        g, pr, b = ident["gallery"], ident["probes"], ident["baseline"]
        lines += [
            "## 1:N search in the gallery",
            "",
            f"Gallery `{g['source']}`: {g['faces']} faces enrolled by {g['model']} into {b['gallery_identities']} "
            f"identities. Probes `{pr['source']}`: {b['probes']} ({b['mated_probes']} mated, {b['non_mated_probes']} not enrolled).",
            "",
        ]
        for a in [{"label": f"baseline ({b['model']} probes)", "identification": b}] + report["artifacts"]:
            entry = a.get("identification") or {}
            tpir = "; ".join(
                f"TPIR @FPIR {k}: " + (v["note"] if v["tpir"] is None else f"{_pct(v['tpir'])} %")
                for k, v in (entry.get("tpir_at_fpir") or {}).items()
            )
            if "rank1" in entry:
                lines.append(f"- {a['label']}: rank-1 {_pct(entry['rank1'])} %, rank-5 {_pct(entry['rank5'])} %" + (f"; {tpir}" if tpir else ""))
        lines.append("")
    lines.append("## Verdicts")
    for a in report["artifacts"]:
        for v in a["verdicts"]:
            lines.append(f"- {a['label']}: **{v['status']}** ({v['gate']}) — {v['sentence']}")
    if report["ijb"]:
        lines += ["", "![ROC](roc.png)"]
    return "\n".join(lines) + "\n"


def write_templates_report(result: TemplatesResult, directory: Path) -> Path:
    """report.json, report.md and (with IJB) roc.png, written as one directory."""
    check_report_dir(directory)
    with staged_directory(directory, force=True) as stage:
        (stage / "report.json").write_text(json.dumps(result.report, indent=2, default=_json_default) + "\n")
        (stage / "report.md").write_text(render_markdown(result.report))
        if result.report["ijb"]:
            ijb = result.report["ijb"]["protocol"]
            plot_roc([(f"{ijb['format']} template pairs", ijb["different"], result.curves)], stage / "roc.png")
    return directory


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
