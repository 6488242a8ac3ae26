"""Latency statistics over per-iteration timings.

Timings come in integer nanoseconds (time.perf_counter_ns, or CUDA-event milliseconds
converted by the caller) and are summarised in milliseconds. Percentiles use numpy's
default linear interpolation, so p50 of 1..100 ms is 50.5 ms. The standard deviation is
the sample one (ddof=1): the timings are a sample of the artifact's latency distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InputError

#: Coefficient of variation (std / mean) above which a row is flagged as noisy. 10% is
#: the usual line at which a p50 difference of a few percent stops meaning anything.
HIGH_CV = 0.10


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one (artifact, batch) measurement, in milliseconds."""

    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float
    std: float
    samples: int

    @property
    def cv(self) -> float:
        """Coefficient of variation std/mean (0 for a single sample)."""
        return self.std / self.mean if self.mean > 0 else 0.0

    @property
    def is_noisy(self) -> bool:
        return self.cv > HIGH_CV

    def to_dict(self) -> dict[str, float]:
        """The `latency_ms` object of benchmark.json."""
        return {
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "min": self.min,
            "max": self.max,
            "std": self.std,
        }

    def throughput_ips(self, batch: int) -> float:
        """Images per second of back-to-back synchronous calls at this batch size."""
        return batch * 1000.0 / self.mean if self.mean > 0 else math.inf


def summarize_ns(timings_ns: Sequence[int] | np.ndarray) -> LatencyStats:
    """Summarise per-iteration timings given in nanoseconds."""
    values = np.asarray(timings_ns, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise InputError("latency statistics need at least one timing")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InputError("latency timings must be finite and non-negative")
    ms = values / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LatencyStats(
        mean=float(ms.mean()),
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        min=float(ms.min()),
        max=float(ms.max()),
        std=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        samples=int(ms.size),
    )


def noisy_rows_warning(rows: Sequence[dict[str, Any]]) -> str | None:
    """One line naming the measured rows whose coefficient of variation is high, if any."""
    noisy = [f"{r['artifact']}@b{r['batch']} (cv {r['cv']:.0%})" for r in rows if r.get("cv") is not None and r["cv"] > HIGH_CV]
    if not noisy:
        return None
    return (
        f"high run-to-run variation (cv > {HIGH_CV:.0%}) for {', '.join(noisy)}: the machine was busy or "
        "throttling; re-run with more --iters/--duration or --interleave"
    )
