"""Rows for the contract cases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from taskforge_common.meters import UsageType
from taskforge_common.money import Money
from taskforge_subscriptions.domain.credit import (
    CreditKind,
    CreditMovement,
    CreditMovementKind,
    CreditNote,
)
from taskforge_subscriptions.domain.invoices import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    compute_totals,
)
from taskforge_subscriptions.domain.plans import BillingCycle, Tier
from taskforge_subscriptions.domain.rating import RatedWindow
from taskforge_subscriptions.domain.subscriptions import (
    PlanSegment,
    Subscription,
    SubscriptionStatus,
)

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
D = Decimal


def at(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def row_id(n: int) -> str:
    """Ids that sort the same in Python and in SQL."""
    return str(uuid.UUID(int=n))


def new_org() -> str:
    """An organisation of its own (the audit trail keeps every row across cases)."""
    return str(uuid.uuid4())


def usd(text: str) -> Money:
    return Money(D(text), "USD")


def subscription(
    n: int,
    organization_id: str,
    *,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    anchor: datetime = MARCH,
    created_at: datetime = MARCH,
) -> Subscription:
    return Subscription(
        id=row_id(n),
        organization_id=organization_id,
        tier=Tier.PRO,
        status=status,
        cycle=BillingCycle.MONTHLY,
        auto_renew=True,
        cancel_at_period_end=False,
        price_per_month=D("99.00"),
        currency="USD",
        limits={UsageType.JOB_EXECUTION: D("100000"), UsageType.STORAGE: D("100.5")},
        anchor=anchor,
        period_index=0,
        created_at=created_at,
        updated_at=created_at,
        canceled_at=created_at + timedelta(days=1)
        if status is SubscriptionStatus.CANCELED
        else None,
    )


def segment(start: datetime = MARCH, tier: Tier = Tier.PRO, price: str = "99.00") -> PlanSegment:
    return PlanSegment(start, None, tier, D(price), {UsageType.API_CALL: D("1000000")})


def usage_line() -> InvoiceLine:
    windows = (
        RatedWindow(UsageType.STORAGE, MARCH, at(11), D("2400"), D("0.48"), D("0.0002")),
        RatedWindow(UsageType.STORAGE, at(11), APRIL, D("14400.123456"), D("2.8800246912"), None),
    )
    return InvoiceLine(
        kind=LineKind.USAGE,
        description="Storage (GB-hours)",
        amount=usd("3.36"),
        quantity=D("16800.123456"),
        unit_price=None,
        period_start=MARCH,
        period_end=APRIL,
        usage_type=UsageType.STORAGE,
        windows=windows,
    )


def fee_line() -> InvoiceLine:
    return InvoiceLine(
        LineKind.FEE, "Pro plan, April", usd("99.00"), D(1), D("99.00"), APRIL, at(1, 0, 5)
    )


def invoice(
    n: int,
    sub: Subscription,
    *,
    kind: InvoiceKind = InvoiceKind.PERIOD_END,
    period_start: datetime = MARCH,
    created_at: datetime | None = None,
    lines: tuple[InvoiceLine, ...] | None = None,
) -> Invoice:
    lines = (usage_line(), fee_line()) if lines is None else lines
    totals = compute_totals([line.amount for line in lines], D("0.10"), usd("0"))
    return Invoice(
        id=row_id(n),
        organization_id=sub.organization_id,
        subscription_id=sub.id,
        kind=kind,
        status=InvoiceStatus.DRAFT,
        currency="USD",
        period_start=period_start,
        period_end=period_start + (APRIL - MARCH),
        lines=lines,
        totals=totals,
        created_at=created_at or period_start + (APRIL - MARCH),
    )


def finalized(draft: Invoice, number: str, when: datetime = APRIL) -> Invoice:
    return draft.finalized(number, when, usd("0"))


def credit_note(n: int, organization_id: str, number: str, total: str = "38.50") -> CreditNote:
    return CreditNote(
        id=row_id(n),
        number=number,
        organization_id=organization_id,
        kind=CreditKind.DOWNGRADE,
        reason="Downgrade pro → starter (prorated)",
        subtotal=usd("35.00"),
        tax_rate=D("0.10"),
        tax=usd("3.50"),
        total=usd(total),
        created_at=at(16, 12) + timedelta(minutes=n),
    )


def movement(
    n: int, organization_id: str, amount: str, *, note: CreditNote | None = None
) -> CreditMovement:
    kind = CreditMovementKind.ISSUED if D(amount) > 0 else CreditMovementKind.APPLIED
    return CreditMovement(
        id=row_id(n),
        organization_id=organization_id,
        kind=kind,
        amount=usd(amount),
        created_at=at(16, 12) + timedelta(minutes=n),
        credit_note_id=None if note is None else note.id,
    )
