"""Latency statistics on synthetic timings whose figures can be checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefkd.bench.stats import HIGH_CV, noisy_rows_warning, summarize_ns
from edgefkd.errors import InputError

MS = 1_000_000  # ns per ms


def test_uniform_1_to_100_ms() -> None:
    n = 100
    stats = summarize_ns([i * MS for i in range(n, 0, -1)])  # order must not matter
    assert stats.samples == n
    assert stats.mean == pytest.approx((n + 1) / 2)
    assert stats.min == 1 and stats.max == n
    # Linear interpolation between order statistics: position q*(n-1) in the sorted list.
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(1 + 0.90 * (n - 1))
    assert stats.p99 == pytest.approx(1 + 0.99 * (n - 1))
    # Sample variance of 1..n is n(n+1)/12.
    assert stats.std == pytest.approx(math.sqrt(n * (n + 1) / 12))
    assert stats.cv == pytest.approx(stats.std / stats.mean)
    assert stats.throughput_ips(8) == pytest.approx(8 * 1000 / stats.mean)
    assert set(stats.to_dict()) == {"mean", "p50", "p90", "p99", "min", "max", "std"}


def test_two_values_and_single_value() -> None:
    stats = summarize_ns([2 * MS, 4 * MS])
    assert (stats.mean, stats.p50, stats.min, stats.max) == (3, 3, 2, 4)
    assert stats.std == pytest.approx(math.sqrt(2))  # ((1)^2 + (1)^2) / (2 - 1)
    one = summarize_ns(np.array([5 * MS]))
    assert (one.p50, one.p99, one.std, one.cv) == (5, 5, 0, 0)


def test_cv_threshold_drives_the_warning() -> None:
    steady = summarize_ns([10 * MS] * 50)
    assert steady.cv == 0 and not steady.is_noisy
    # Half the runs at 10 ms, half at 14 ms: std ~2 ms on a 12 ms mean, cv ~0.17 > HIGH_CV.
    jumpy = summarize_ns([10 * MS, 14 * MS] * 25)
    assert jumpy.cv > HIGH_CV and jumpy.is_noisy
    rows = [
        {"artifact": "a.onnx", "batch": 1, "cv": steady.cv},
        {"artifact": "b.xml", "batch": 8, "cv": jumpy.cv},
        {"artifact": "skipped.engine", "batch": None, "cv": None},
    ]
    line = noisy_rows_warning(rows)
    assert line is not None and "b.xml@b8" in line and "a.onnx" not in line
    assert noisy_rows_warning(rows[:1]) is None


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [-1], [[1, 2]]])
def test_bad_timings_are_input_errors(bad: list) -> None:
    with pytest.raises(InputError):
        summarize_ns(bad)
