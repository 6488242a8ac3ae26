"""latency.png: p50 bars with p90/p99 whiskers, one panel per batch size."""

from __future__ import annotations

import os
from typing import Iterable

from .report import BenchRow, sorted_rows


def plot_latency(rows: Iterable[BenchRow], path: str | os.PathLike[str]) -> None:
    """Draw the measured rows; a run with nothing measured still gets a labelled empty figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in sorted_rows(rows) if r.measured]
    batches = sorted({r.batch for r in measured if r.batch is not None}) or [None]
    artifacts = list(dict.fromkeys(r.artifact for r in measured))
    fig, axes = plt.subplots(
        1, len(batches), figsize=(max(6.0, 1.0 + 0.7 * len(artifacts)) * len(batches), 4.8), squeeze=False
    )
    for ax, batch in zip(axes[0], batches):
        panel = [r for r in measured if r.batch == batch]
        xs = range(len(panel))
        p50 = [r.latency.p50 for r in panel]  # type: ignore[union-attr]
        p90 = [r.latency.p90 - r.latency.p50 for r in panel]  # type: ignore[union-attr]
        p99 = [r.latency.p99 - r.latency.p50 for r in panel]  # type: ignore[union-attr]
        colours = ["#888888" if r.backend == "torch" else "#1f77b4" for r in panel]
        ax.bar(xs, p50, color=colours, label="p50")
        ax.errorbar(xs, p50, yerr=[[0] * len(panel), p99], fmt="none", ecolor="#d62728", capsize=3, lw=1, label="p99")
        ax.errorbar(xs, p50, yerr=[[0] * len(panel), p90], fmt="none", ecolor="black", capsize=5, lw=2, label="p90")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r.artifact for r in panel], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"batch {batch}" if batch is not None else "nothing measured")
        ax.grid(axis="y", alpha=0.3)
        if panel:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
