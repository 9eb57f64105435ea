"""Usage from the metering service, rated into invoice lines.

The metering service is asked once per batch of subscriptions, never once per subscription per
meter: every piece of every period goes into one `summaries` call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from taskforge_common.meters import UsageType
from taskforge_subscriptions.application.ports import PricedFrom
from taskforge_subscriptions.domain.billing import usage_lines
from taskforge_subscriptions.domain.invoices import InvoiceLine
from taskforge_subscriptions.domain.plans import MeterPrice, Tier
from taskforge_subscriptions.domain.rating import WindowUsage, rate_usage
from taskforge_subscriptions.domain.subscriptions import PlanSegment, UsagePiece, usage_pieces


@dataclass(frozen=True, slots=True)
class UsageQuery:
    organization_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class LimitStanding:
    """Where usage stands against one limit (None: unlimited)."""

    usage_type: UsageType
    limit: Decimal | None
    current: Decimal
    remaining: Decimal | None
    exceeded: bool


@dataclass(frozen=True, slots=True)
class UsageStanding:
    """An organisation's usage now, as metering counts it: counters in the current monthly
    window, gauge levels, and every limit."""

    current: Mapping[UsageType, Decimal]
    window_start: datetime | None
    window_end: datetime | None
    limits: Sequence[LimitStanding]


class UsageSource(Protocol):
    """The metering service as the billing code sees it."""

    async def summaries(self, queries: Sequence[UsageQuery]) -> list[Mapping[UsageType, Decimal]]:
        """The billable quantity per meter (storage in GB-hours) over each [start, end), in
        the order of `queries`."""
        ...

    async def standing(self, organization_id: str) -> UsageStanding:
        """Current usage and every limit, for the dashboard."""
        ...


@dataclass(frozen=True, slots=True)
class UsageRequest:
    """The usage of one subscription over [start, end) to rate."""

    organization_id: str
    anchor: datetime
    start: datetime
    end: datetime
    segments: Sequence[PlanSegment]
    currency: str

    def pieces(self, history: Mapping[Tier, Sequence[PricedFrom]]) -> list[UsagePiece]:
        """The stretches to ask metering about: one plan and one price in each."""
        changes = {entry.effective_from for own in history.values() for entry in own}
        return usage_pieces(self.anchor, self.start, self.end, self.segments, changes)


def price_in_force(
    history: Mapping[Tier, Sequence[PricedFrom]], tier: Tier, usage_type: UsageType, at: datetime
) -> MeterPrice | None:
    """The latest price of the meter on the tier that took effect at or before `at`."""
    price = None
    for entry in history.get(tier, ()):
        if entry.price.usage_type is usage_type and entry.effective_from <= at:
            price = entry.price
    return price


async def rate_requests(
    source: UsageSource,
    requests: Sequence[UsageRequest],
    history: Mapping[Tier, Sequence[PricedFrom]],
) -> list[list[InvoiceLine]]:
    """Usage lines of each request, in order, from one call to the metering service."""
    pieces = [request.pieces(history) for request in requests]
    queries = [
        UsageQuery(request.organization_id, piece.start, piece.end)
        for request, own in zip(requests, pieces, strict=True)
        for piece in own
    ]
    quantities = iter(await source.summaries(queries) if queries else [])
    lines = []
    for request, own in zip(requests, pieces, strict=True):
        usage = []
        for piece in own:
            for usage_type, quantity in next(quantities).items():
                price = price_in_force(history, piece.segment.tier, usage_type, piece.start)
                if price is not None and quantity:
                    usage.append(
                        WindowUsage(
                            usage_type, piece.window_start, piece.start, piece.end, quantity, price
                        )
                    )
        charges = rate_usage(usage, request.currency)
        lines.append(usage_lines(charges, request.start, request.end, request.currency))
    return lines
