"""Gate verdicts that know their own resolution: pass, fail or inconclusive.

A gate bounds how much worse an artifact may be than its reference (accuracy drop in pp,
TAR drop, rank-1 drop...). A point estimate on a small set cannot decide a tight gate, so
each gate is judged on a 95 % interval of the drop:

- pass:          the whole interval is within the gate (high <= limit)
- fail:          the whole interval is beyond it (low > limit)
- inconclusive:  the interval straddles the limit

Identical embeddings give a zero-width interval at 0 and always pass. Without an interval
(bootstrap off) the verdict is the point estimate's, and it says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"
#: Exit code of a run in which no gate failed but some could not decide.
EXIT_INCONCLUSIVE = 3


@dataclass(frozen=True)
class Verdict:
    gate: str  # e.g. "accuracy_drop", "teacher_drop"
    status: str  # pass | fail | inconclusive
    point: float  # the drop on the full set
    low: float | None  # 95 % interval of the drop (None: no interval computed)
    high: float | None
    limit: float  # the gate: drop must stay <= limit
    unit: str  # "pp"
    items: int  # pairs / templates / probes behind the interval
    sentence: str  # what a person needs to read

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_drop(
    gate: str,
    point: float,
    interval: tuple[float, float] | None,
    limit: float,
    items: int,
    item_name: str = "pairs",
    unit: str = "pp",
) -> Verdict:
    """Verdict of `drop <= limit` given the point estimate and a 95 % interval of the drop."""
    if interval is None:
        status = PASS if point <= limit else FAIL
        sentence = (
            f"{gate}: {point:+.2f} {unit} vs gate {limit} {unit} (point estimate only: "
            f"no interval, the {items} {item_name} were not resampled)"
        )
        return Verdict(gate, status, point, None, None, limit, unit, items, sentence)
    low, high = float(interval[0]), float(interval[1])
    span = f"the 95 % interval of the drop is [{low:+.2f}, {high:+.2f}] {unit}"
    if high <= limit:
        status, sentence = PASS, f"{gate}: within {limit} {unit}; {span}"
    elif low > limit:
        status, sentence = FAIL, f"{gate}: beyond {limit} {unit}; {span}"
    else:
        status = INCONCLUSIVE
        needed = items_to_resolve(point, low, high, limit, items)
        more = f"; about {needed} {item_name} would" if needed else ""
        sentence = f"{items} {item_name} cannot resolve a {limit} {unit} gate: {span}{more}"
    return Verdict(gate, status, point, low, high, limit, unit, items, sentence)


def items_to_resolve(point: float, low: float, high: float, limit: float, items: int) -> int | None:
    """Rough set size at which the interval would clear the limit (width shrinks as 1/sqrt(n))."""
    margin = abs(limit - point)
    half = (high - low) / 2
    if margin <= 0 or half <= 0 or items <= 0:
        return None
    return int(math.ceil(items * (half / margin) ** 2))


def combine(statuses: list[str]) -> str:
    """Artifact verdict from its gates: any fail -> fail, else any inconclusive -> inconclusive."""
    if FAIL in statuses:
        return FAIL
    if INCONCLUSIVE in statuses:
        return INCONCLUSIVE
    return PASS


def exit_code(statuses: list[str], inconclusive_as: str | None = None) -> int:
    """0 all pass, 1 any fail, 3 none failed but some inconclusive (or mapped by `inconclusive_as`)."""
    overall = combine(statuses)
    if overall == INCONCLUSIVE and inconclusive_as in (PASS, FAIL):
        overall = inconclusive_as
    return {PASS: 0, FAIL: 1, INCONCLUSIVE: EXIT_INCONCLUSIVE}[overall]
