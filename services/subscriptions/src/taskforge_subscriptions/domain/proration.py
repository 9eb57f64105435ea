"""Proration to the second (SPEC §5) and the fee segments of a billing period.

A period's fee is paid in advance at the fee in force when it starts. Each tier change at instant
t charges (upgrade) or credits (downgrade) the fee difference for the share of the period still
ahead, (end − t) / (end − start). Summed over any number of changes, every stretch of the period
between two changes is paid exactly once, at its own fee: the segments tile the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from enum import StrEnum

from taskforge_common.money import round_money
from taskforge_common.periods import Period, exact_seconds

# Digits kept in the one division of a proration. A quotient of an amount by a period's length
# in microseconds (below 10^15) that is not exactly halfway between two cents lies at least
# 10^-18 away from it, so this many digits can never tip a half-up rounding the wrong way.
_DIVISION_DIGITS = 60


class ChangeDirection(StrEnum):
    UPGRADE = "upgrade"  # the new cycle fee is higher: invoice the difference
    DOWNGRADE = "downgrade"  # lower: credit the difference
    LATERAL = "lateral"  # the same fee: limits change, no money moves


def direction(old_cycle_fee: Decimal, new_cycle_fee: Decimal) -> ChangeDirection:
    if new_cycle_fee > old_cycle_fee:
        return ChangeDirection.UPGRADE
    if new_cycle_fee < old_cycle_fee:
        return ChangeDirection.DOWNGRADE
    return ChangeDirection.LATERAL


def share(amount: Decimal, part: Period | tuple[datetime, datetime], whole: Period) -> Decimal:
    """amount × |part| / |whole|, exact to the division's digits, not yet rounded."""
    start, end = (part.start, part.end) if isinstance(part, Period) else part
    if not whole.start <= start <= end <= whole.end:
        raise ValueError("the part must lie inside the period")
    with localcontext() as context:
        context.prec = _DIVISION_DIGITS
        return amount * exact_seconds(end - start) / exact_seconds(whole.end - whole.start)


def prorated_difference(
    old_cycle_fee: Decimal, new_cycle_fee: Decimal, period: Period, at: datetime, currency: str
) -> Decimal:
    """|new − old| × remaining / period, rounded half up: the upgrade charge or downgrade
    credit of a change at `at` (SPEC §5)."""
    if not period.start <= at < period.end:
        raise ValueError("a tier change happens inside the current period")
    remaining = share(abs(new_cycle_fee - old_cycle_fee), (at, period.end), period)
    return round_money(remaining, currency)


@dataclass(frozen=True, slots=True)
class FeeSegment:
    """[start, end) of a period billed at `cycle_fee` (the fee of the plan then in force)."""

    start: datetime
    end: datetime
    cycle_fee: Decimal
    tier: str


def segment_violations(period: Period, segments: Sequence[FeeSegment]) -> list[str]:
    """What keeps `segments` from covering `period` exactly once: gaps, overlaps, overhangs.
    Empty when every instant of the period lies in exactly one segment."""
    problems = []
    ordered = sorted(segments, key=lambda s: s.start)
    cursor = period.start
    for segment in ordered:
        if segment.end <= segment.start:
            problems.append(f"empty segment at {segment.start.isoformat()}")
        if segment.start > cursor:
            problems.append(f"gap {cursor.isoformat()} → {segment.start.isoformat()}")
        elif segment.start < cursor:
            problems.append(f"overlap {segment.start.isoformat()} → {cursor.isoformat()}")
        cursor = max(cursor, segment.end)
    if cursor != period.end:
        problems.append(f"segments end at {cursor.isoformat()}, the period at {period.end}")
    covered = sum((exact_seconds(s.end - s.start) for s in ordered), Decimal(0))
    if covered != exact_seconds(period.end - period.start):
        problems.append(f"segments cover {covered} s of {period.seconds} s")
    return problems
