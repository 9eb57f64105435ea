"""The use cases over the SQL storage on both databases (the unit tests run them on the fake):
the same flows must give the same numbers, numbering and constraints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from taskforge_common.caller import Caller
from taskforge_common.clock import ManualClock
from taskforge_common.db.engine import Database
from taskforge_common.errors import AlreadyExists
from taskforge_common.meters import UsageType
from taskforge_common.money import Money
from taskforge_common.page_tokens import PageTokens
from taskforge_subscriptions.application.billing_run import BillingSettings
from taskforge_subscriptions.application.commands import (
    CancelSubscription,
    ChangeTier,
    CreateSubscription,
)
from taskforge_subscriptions.application.use_cases import UseCases
from taskforge_subscriptions.domain.invoices import InvoiceKind, InvoiceStatus
from taskforge_subscriptions.domain.plans import BillingCycle, Tier
from taskforge_subscriptions.domain.subscriptions import SubscriptionStatus
from taskforge_subscriptions.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.subscriptions.fake_usage import FakeUsage

D = Decimal
ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
ADMIN = Caller("operator", None, is_admin=True)


def usd(text: str) -> Money:
    return Money(D(text), "USD")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, tzinfo=UTC))


@pytest.fixture
def usage() -> FakeUsage:
    return FakeUsage()


@pytest.fixture
def use_cases(subscriptions_database: Database, clock: ManualClock, usage: FakeUsage) -> UseCases:
    settings = BillingSettings(timedelta(hours=1), timedelta(days=14), D("0.10"))
    return UseCases.build(
        SqlUnitOfWorkFactory(subscriptions_database), usage, clock, settings, PageTokens(b"k" * 32)
    )


async def all_invoices(use_cases: UseCases) -> list:  # type: ignore[type-arg]
    page = await use_cases.queries.invoices(ORG, None, 1000, "", ADMIN)
    return sorted(page.items, key=lambda i: (i.number or "~", i.created_at))


async def test_spec_section_5_on_storage(use_cases: UseCases, clock: ManualClock) -> None:
    _, first = await use_cases.subscriptions.create(
        CreateSubscription(ORG, Tier.STARTER, BillingCycle.MONTHLY, True), ADMIN
    )
    assert (first.number, first.totals.total, first.status) == (
        "INV-2026-000001",
        usd("31.90"),
        InvoiceStatus.SENT,
    )
    clock.set(datetime(2026, 3, 16, 12, tzinfo=UTC))
    up = await use_cases.subscriptions.change_tier(ChangeTier(ORG, Tier.PRO), ADMIN)
    assert up.proration_invoice is not None
    assert up.proration_invoice.totals.total == usd("38.50")
    stored = await use_cases.queries.invoice(up.proration_invoice.id, ADMIN)
    assert stored == up.proration_invoice  # read back whole, lines included
    down = await use_cases.subscriptions.change_tier(ChangeTier(ORG, Tier.STARTER), ADMIN)
    assert down.credit_note is not None
    assert down.credit_note.total == usd("38.50")
    assert await use_cases.queries.credit_balance(ORG, ADMIN) == usd("38.50")
    with pytest.raises(AlreadyExists):
        await use_cases.subscriptions.create(
            CreateSubscription(ORG, Tier.PRO, BillingCycle.MONTHLY, True), ADMIN
        )


async def test_a_back_dated_half_year_on_storage(
    use_cases: UseCases, clock: ManualClock, usage: FakeUsage
) -> None:
    clock.set(datetime(2026, 8, 1, tzinfo=UTC))
    await use_cases.subscriptions.create(
        CreateSubscription(
            ORG,
            Tier.STARTER,
            BillingCycle.MONTHLY,
            True,
            start_time=datetime(2026, 1, 31, 10, tzinfo=UTC),
        ),
        ADMIN,
    )
    usage.record(ORG, UsageType.JOB_EXECUTION, datetime(2026, 2, 10, tzinfo=UTC), "2000")
    summary = await use_cases.billing.run(clock.now(), ADMIN)
    # Periods end Feb 28, Mar 31, Apr 30, May 31, Jun 30, Jul 31 (10:00): six period ends.
    assert (summary.invoices_created, summary.invoices_finalized) == (6, 6)
    invoices = await all_invoices(use_cases)
    assert [i.number for i in invoices] == [f"INV-2026-{n:06d}" for n in range(1, 8)]
    february = next(i for i in invoices if i.kind is InvoiceKind.PERIOD_END)
    # 2,000 jobs × 0.001 = 2.00 and the next fee 29.00: 31.00 + 3.10 = 34.10.
    assert february.totals.total == usd("34.10")
    assert february.period_end == datetime(2026, 2, 28, 10, tzinfo=UTC)
    again = await use_cases.billing.run(clock.now(), ADMIN)
    assert (again.invoices_created, again.invoices_finalized) == (0, 0)


async def test_immediate_cancellation_on_storage(
    use_cases: UseCases, clock: ManualClock, usage: FakeUsage
) -> None:
    await use_cases.subscriptions.create(
        CreateSubscription(ORG, Tier.STARTER, BillingCycle.MONTHLY, True), ADMIN
    )
    usage.record(ORG, UsageType.API_CALL, datetime(2026, 3, 2, tzinfo=UTC), "150000")
    clock.set(datetime(2026, 3, 22, tzinfo=UTC))
    canceled = await use_cases.subscriptions.cancel(CancelSubscription(ORG, False), ADMIN)
    assert canceled.status is SubscriptionStatus.CANCELED
    notes = await use_cases.queries.credit_notes(ORG, 10, "", ADMIN)
    assert [n.total for n in notes.items] == [usd("10.29")]  # 9.35 + 0.94
    clock.set(datetime(2026, 3, 22, 1, tzinfo=UTC))
    summary = await use_cases.billing.run(clock.now(), ADMIN)
    assert summary.invoices_finalized == 1
    final = (await all_invoices(use_cases))[-1]
    # 150,000 calls × 0.00001 = 1.50 + 0.15 tax = 1.65, paid from the 10.29 credit.
    assert (final.totals.total, final.totals.amount_due) == (usd("1.65"), usd("0.00"))
    assert await use_cases.queries.credit_balance(ORG, ADMIN) == usd("8.64")


async def test_a_concurrent_run_numbers_without_gaps(
    subscriptions_database: Database, clock: ManualClock, usage: FakeUsage
) -> None:
    """Four subscriptions changed at once (each its own transaction and connection on
    PostgreSQL): the number counter serialises finalizations, nothing else does."""
    settings = BillingSettings(
        timedelta(0), timedelta(days=14), D("0.10"), batch_size=5, concurrency=4
    )
    use_cases = UseCases.build(
        SqlUnitOfWorkFactory(subscriptions_database), usage, clock, settings, PageTokens(b"k" * 32)
    )
    clock.set(datetime(2026, 5, 1, tzinfo=UTC))
    organizations = [f"00000000-0000-4000-8000-{n:012d}" for n in range(9)]
    for organization in organizations:
        await use_cases.subscriptions.create(
            CreateSubscription(
                organization,
                Tier.PRO,
                BillingCycle.MONTHLY,
                True,
                start_time=datetime(2026, 1, 15, tzinfo=UTC),
            ),
            ADMIN,
        )
    summary = await use_cases.billing.run(clock.now(), ADMIN)
    # Periods end Feb 15, Mar 15, Apr 15: three per subscription.
    assert (summary.invoices_created, summary.invoices_finalized) == (27, 27)
    numbers: list[str] = []
    for organization in organizations:
        page = await use_cases.queries.invoices(organization, None, 100, "", ADMIN)
        ordered = sorted(
            page.items, key=lambda i: (i.period_end, i.kind is not InvoiceKind.SUBSCRIPTION_START)
        )
        # Within a subscription, numbers follow the periods.
        assert [i.number for i in ordered] == sorted(i.number or "" for i in ordered)
        numbers += [i.number or "" for i in page.items]
    assert sorted(numbers) == [f"INV-2026-{n:06d}" for n in range(1, 37)]
