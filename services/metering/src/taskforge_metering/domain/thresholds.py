"""Usage thresholds (SPEC §8): each limit notifies at 80% and at 100%, once per window."""

from __future__ import annotations

from decimal import Decimal

THRESHOLDS = (Decimal("0.8"), Decimal(1))


def crossed_thresholds(before: Decimal, after: Decimal, limit: Decimal | None) -> list[Decimal]:
    """The thresholds that usage moving from `before` to `after` reaches for the first time."""
    if limit is None:
        return []

    def reached(amount: Decimal, threshold: Decimal) -> bool:
        return amount > 0 and amount >= limit * threshold

    return [t for t in THRESHOLDS if reached(after, t) and not reached(before, t)]


def threshold_percent(threshold: Decimal) -> int:
    return int(threshold * 100)
