"""Limit checks (SPEC §7): counters compare the window-to-date total, gauges the current level."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from taskforge_common.decimals import format_decimal
from taskforge_common.meters import UsageType
from taskforge_metering.domain.entitlements import Entitlements, EntitlementStatus

NO_SUBSCRIPTION = "no active subscription"
PAYMENT_OVERDUE = "payment overdue"


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """Where one usage type stands against its limit. `current` is recorded usage (the level for
    gauges), `reserved` the live reservations; `remaining` is what may still be used or reserved."""

    usage_type: UsageType
    limit: Decimal | None
    current: Decimal
    reserved: Decimal

    @property
    def remaining(self) -> Decimal | None:
        if self.limit is None:
            return None
        return max(Decimal(0), self.limit - self.current - self.reserved)

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.current > self.limit

    def admits(self, requested: Decimal) -> bool:
        return self.limit is None or self.current + self.reserved + requested <= self.limit


@dataclass(frozen=True, slots=True)
class LimitDecision:
    allowed: bool
    reason: str
    statuses: tuple[LimitStatus, ...]


def limit_status(
    entitlements: Entitlements, usage_type: UsageType, current: Decimal, reserved: Decimal
) -> LimitStatus:
    return LimitStatus(usage_type, entitlements.limit_for(usage_type), current, reserved)


def standing_denial(entitlements: Entitlements | None) -> str | None:
    """The reason every check is denied regardless of usage, if there is one."""
    if entitlements is None or entitlements.status is EntitlementStatus.NONE:
        return NO_SUBSCRIPTION
    if entitlements.status is EntitlementStatus.PAST_DUE:
        return PAYMENT_OVERDUE
    return None


def check_one(
    entitlements: Entitlements | None, status: LimitStatus | None, requested: Decimal
) -> LimitDecision:
    """May `requested` more of one usage type be used: current + reserved + requested ≤ limit?"""
    statuses = (status,) if status else ()
    denial = standing_denial(entitlements)
    if denial:
        return LimitDecision(False, denial, statuses)
    assert status is not None, "an active subscription always yields a status"
    if status.admits(requested):
        return LimitDecision(True, "", statuses)
    return LimitDecision(False, _over_limit(status, requested), statuses)


def check_all(
    entitlements: Entitlements | None, statuses: Mapping[UsageType, LimitStatus]
) -> LimitDecision:
    """Every limit at once: allowed while no limit is exceeded (the seed's is_within_limits)."""
    ordered = tuple(statuses[usage_type] for usage_type in UsageType if usage_type in statuses)
    denial = standing_denial(entitlements)
    if denial:
        return LimitDecision(False, denial, ordered)
    exceeded = [s for s in ordered if s.exceeded]
    if not exceeded:
        return LimitDecision(True, "", ordered)
    return LimitDecision(False, "; ".join(_over_limit(s, Decimal(0)) for s in exceeded), ordered)


def _over_limit(status: LimitStatus, requested: Decimal) -> str:
    assert status.limit is not None
    parts = f"usage {format_decimal(status.current)}"
    if status.reserved:
        parts += f" + reserved {format_decimal(status.reserved)}"
    if requested:
        parts += f" + requested {format_decimal(requested)}"
    return (
        f"{status.usage_type.value} limit exceeded: {parts} > limit {format_decimal(status.limit)}"
    )
