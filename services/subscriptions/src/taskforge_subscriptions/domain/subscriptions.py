"""Subscriptions (SPEC §1, §3, §5, §6): standing and its transitions, anniversary periods, the plan
segments that say which tier was in force when, and which period ends a billing run must close."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from taskforge_common.errors import PreconditionFailed, Reason
from taskforge_common.meters import UsageType
from taskforge_common.periods import Period, monthly_window, period_at, period_containing
from taskforge_subscriptions.domain.plans import BillingCycle, Tier
from taskforge_subscriptions.domain.proration import FeeSegment


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    # An invoice is overdue beyond the suspension grace: limits deny usage until it is paid.
    PAST_DUE = "past_due"
    CANCELED = "canceled"


SUBSCRIPTION_TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    SubscriptionStatus.ACTIVE: frozenset(
        {SubscriptionStatus.PAST_DUE, SubscriptionStatus.CANCELED}
    ),
    SubscriptionStatus.PAST_DUE: frozenset(
        {SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELED}
    ),
    SubscriptionStatus.CANCELED: frozenset(),
}


def check_subscription_transition(current: SubscriptionStatus, target: SubscriptionStatus) -> None:
    if target not in SUBSCRIPTION_TRANSITIONS[current]:
        reason = (
            Reason.SUBSCRIPTION_CANCELED
            if current is SubscriptionStatus.CANCELED
            else Reason.INVALID_STATE_TRANSITION
        )
        raise PreconditionFailed(
            f"a subscription that is {current} cannot become {target}", reason=reason
        )


@dataclass(frozen=True, slots=True)
class PlanSegment:
    """[start, end) of a subscription's life on one tier at one price (end None: still on it)."""

    start: datetime
    end: datetime | None
    tier: Tier
    price_per_month: Decimal
    limits: Mapping[UsageType, Decimal] = field(default_factory=dict)

    def clipped(self, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
        """The part of this segment inside [start, end), if any."""
        lower = max(self.start, start)
        upper = end if self.end is None else min(self.end, end)
        return (lower, upper) if lower < upper else None


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    organization_id: str
    tier: Tier
    status: SubscriptionStatus
    cycle: BillingCycle
    auto_renew: bool
    cancel_at_period_end: bool
    price_per_month: Decimal
    currency: str
    limits: Mapping[UsageType, Decimal]
    anchor: datetime
    # The number of the current period counted from the anchor (0: the first).
    period_index: int
    created_at: datetime
    updated_at: datetime
    canceled_at: datetime | None = None
    # Usage before this instant belongs to finalized invoices: metering refuses it (SPEC §4).
    usage_closed_before: datetime | None = None
    # Bumped by every change: a stale writer's guarded UPDATE matches no row.
    version: int = 1

    @property
    def current_period(self) -> Period:
        return period_at(self.anchor, self.cycle.months, self.period_index)

    @property
    def cycle_fee(self) -> Decimal:
        return self.price_per_month * self.cycle.months

    @property
    def renews(self) -> bool:
        """Whether the current period's end starts a new one (SPEC §6)."""
        return self.auto_renew and not self.cancel_at_period_end

    @property
    def is_live(self) -> bool:
        return self.status is not SubscriptionStatus.CANCELED

    def revised(self, now: datetime, **changes: Any) -> Subscription:
        """This subscription with `changes`, changed at `now`: one version on, so a writer
        still holding the previous version finds its guarded UPDATE matching no row."""
        return replace(self, **changes, updated_at=now, version=self.version + 1)

    @property
    def entitlements_version(self) -> int:
        """A version that grows with every change of this subscription and of any later
        subscription of the organisation (metering ignores pushes not above the last one):
        the creation millisecond, then the subscription's own version in the low 20 bits."""
        created_ms = int(self.created_at.timestamp() * 1000)
        return (created_ms << 20) + min(self.version, (1 << 20) - 1)


def suspension_cutoff(now: datetime, grace: timedelta) -> datetime:
    """Invoices due before this instant are overdue beyond the suspension grace (SPEC §7): the
    one boundary both suspending and lifting a suspension use."""
    return now - grace


def periods_to_close(subscription: Subscription, as_of: datetime) -> Iterator[Period]:
    """Every period that has ended by `as_of` and is not closed yet, oldest first: a run catches
    up however far behind it is (a subscription back-dated a year has twelve), and stops after
    a period that does not renew."""
    if not subscription.is_live:
        return
    index = subscription.period_index
    while True:
        period = period_at(subscription.anchor, subscription.cycle.months, index)
        if period.end > as_of:
            return
        yield period
        if not subscription.renews:
            return
        index += 1


def period_of(subscription: Subscription, instant: datetime) -> Period:
    return period_containing(subscription.anchor, subscription.cycle.months, instant)


@dataclass(frozen=True, slots=True)
class UsagePiece:
    """A stretch of a billing period inside one monthly usage window and one plan segment: the
    unit of usage the metering service is asked about and the price book prices."""

    window_start: datetime
    start: datetime
    end: datetime
    segment: PlanSegment


def usage_pieces(
    anchor: datetime,
    start: datetime,
    end: datetime,
    segments: Sequence[PlanSegment],
    price_changes: Collection[datetime] = (),
) -> list[UsagePiece]:
    """[start, end) cut at every monthly window boundary from the anchor, every tier change and
    every instant a price took effect, in time order: within a piece one price applies. The
    pieces tile [start, end) when the segments do."""
    pieces = []
    cursor = start
    while cursor < end:
        window = monthly_window(anchor, cursor)
        window_end = min(window.end, end)
        for segment in segments:
            part = segment.clipped(cursor, window_end)
            if part is None:
                continue
            bounds = sorted(
                {part[0], part[1], *(t for t in price_changes if part[0] < t < part[1])}
            )
            pieces += [
                UsagePiece(window.start, lower, upper, segment)
                for lower, upper in itertools.pairwise(bounds)
            ]
        cursor = window_end
    pieces.sort(key=lambda p: p.start)
    return pieces


def fee_segments(period: Period, segments: Sequence[PlanSegment], months: int) -> list[FeeSegment]:
    """The plan segments inside `period` with their cycle fees, for the coverage invariant."""
    result = []
    for segment in segments:
        part = segment.clipped(period.start, period.end)
        if part is not None:
            fee = segment.price_per_month * months
            result.append(FeeSegment(part[0], part[1], fee, segment.tier))
    return result
