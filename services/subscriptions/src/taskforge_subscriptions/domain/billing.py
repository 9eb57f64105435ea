"""What each billing moment charges or credits (SPEC §4–§6), as invoice lines and credit
amounts: the fee in advance at the start and at each renewal, usage in arrears at each period
end, the prorated difference of a tier change, the unused fee of an immediate cancellation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from taskforge_common.meters import UsageType
from taskforge_common.money import Money, round_money
from taskforge_common.periods import Period
from taskforge_subscriptions.domain.invoices import InvoiceLine, LineKind
from taskforge_subscriptions.domain.plans import BillingCycle, Tier
from taskforge_subscriptions.domain.proration import (
    ChangeDirection,
    direction,
    prorated_difference,
    share,
)
from taskforge_subscriptions.domain.rating import UsageCharge

# How a usage line reads, in the unit it is billed in (storage: time-weighted GB-hours).
USAGE_LINE_NAMES = {
    UsageType.JOB_EXECUTION: "Job executions (jobs)",
    UsageType.JOB_PROCESSING_TIME: "Job processing time (seconds)",
    UsageType.WORKER_HOURS: "Worker hours (hours)",
    UsageType.API_CALL: "API calls (calls)",
    UsageType.DATA_TRANSFER: "Data transfer (GB)",
    UsageType.QUEUE_STORAGE: "Queue storage (GB-hours)",
    UsageType.STORAGE: "Storage (GB-hours)",
    UsageType.ACTIVE_WORKERS: "Active workers (worker-hours)",
    UsageType.QUEUES: "Queues (queue-hours)",
}


def _day(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d}"


def fee_line(
    tier: Tier, cycle: BillingCycle, price_per_month: Decimal, period: Period, currency: str
) -> InvoiceLine:
    """One cycle's plan fee for `period`, billed in advance."""
    fee = price_per_month * cycle.months
    return InvoiceLine(
        kind=LineKind.FEE,
        description=(
            f"{tier.capitalize()} plan, {cycle} ({_day(period.start)} – {_day(period.end)})"
        ),
        amount=Money(round_money(fee, currency), currency),
        quantity=Decimal(cycle.months),
        unit_price=price_per_month,
        period_start=period.start,
        period_end=period.end,
    )


def usage_lines(
    charges: Sequence[UsageCharge], start: datetime, end: datetime, currency: str
) -> list[InvoiceLine]:
    """One line per meter with a non-zero quantity (SPEC §4), in arrears."""
    return [
        InvoiceLine(
            kind=LineKind.USAGE,
            description=USAGE_LINE_NAMES[c.usage_type],
            amount=Money(c.amount, currency),
            quantity=c.quantity,
            unit_price=c.unit_price,
            period_start=start,
            period_end=end,
            usage_type=c.usage_type,
            windows=c.windows,
        )
        for c in charges
    ]


@dataclass(frozen=True, slots=True)
class TierChange:
    """The money side of a tier change at `at`: an upgrade charges `amount`, a downgrade
    credits it, a lateral change moves nothing."""

    direction: ChangeDirection
    amount: Money
    description: str


def tier_change(
    old_tier: Tier,
    old_cycle_fee: Decimal,
    new_tier: Tier,
    new_cycle_fee: Decimal,
    period: Period,
    at: datetime,
    currency: str,
) -> TierChange:
    moving = direction(old_cycle_fee, new_cycle_fee)
    amount = prorated_difference(old_cycle_fee, new_cycle_fee, period, at, currency)
    verb = "Upgrade" if moving is ChangeDirection.UPGRADE else "Downgrade"
    return TierChange(moving, Money(amount, currency), f"{verb} {old_tier} → {new_tier} (prorated)")


def proration_line(change: TierChange, period: Period, at: datetime) -> InvoiceLine:
    return InvoiceLine(
        kind=LineKind.PRORATION,
        description=change.description,
        amount=change.amount,
        quantity=Decimal(1),
        unit_price=change.amount.amount,
        period_start=at,
        period_end=period.end,
    )


def unused_fee(cycle_fee: Decimal, period: Period, at: datetime, currency: str) -> Money:
    """The share of a paid cycle fee after `at`: credited at an immediate cancellation, as a
    downgrade to 0 would be (SPEC §6)."""
    return Money(round_money(share(cycle_fee, (at, period.end), period), currency), currency)
