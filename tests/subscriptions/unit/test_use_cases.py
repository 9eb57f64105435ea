"""The use cases against the in-memory fake and a stand-in for metering: lifecycle, proration,
billing runs, finalization, credit, overdue and suspension, idempotency. Expected amounts are
worked out by hand in the comments."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskforge_common.caller import Caller
from taskforge_common.clock import ManualClock
from taskforge_common.errors import (
    AlreadyExists,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Reason,
)
from taskforge_common.meters import UsageType
from taskforge_common.money import Money
from taskforge_common.page_tokens import PageTokens
from taskforge_subscriptions.application.billing_run import BillingRun, BillingSettings, RunSummary
from taskforge_subscriptions.application.commands import (
    CancelSubscription,
    ChangeTier,
    CreateSubscription,
)
from taskforge_subscriptions.application.invoice_actions import InvoiceActions
from taskforge_subscriptions.application.price_book import PriceBookAdmin
from taskforge_subscriptions.application.queries import BillingQueries
from taskforge_subscriptions.application.subscribing import SubscriptionUseCases
from taskforge_subscriptions.domain.invoices import Invoice, InvoiceKind, InvoiceStatus, LineKind
from taskforge_subscriptions.domain.plans import BillingCycle, MeterPrice, Tier
from taskforge_subscriptions.domain.subscriptions import Subscription, SubscriptionStatus
from tests.fakes.subscriptions import (
    InMemoryDatabase,
    InMemorySubscriptions,
    InMemoryUnitOfWork,
)
from tests.subscriptions.fake_usage import FakeUsage

D = Decimal
ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
OTHER = "6e1c2a9b-7f3d-4f0e-8b1a-2c3d4e5f6a7b"
ADMIN = Caller("operator", None, is_admin=True)
CUSTOMER = Caller("customer", ORG)
GRACE = timedelta(hours=1)


def usd(text: str) -> Money:
    return Money(D(text), "USD")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Billing:
    clock: ManualClock = field(default_factory=lambda: ManualClock(at("2026-03-01T00:00:00Z")))
    db: InMemoryDatabase = field(default_factory=InMemoryDatabase)
    usage: FakeUsage = field(default_factory=FakeUsage)

    def __post_init__(self) -> None:
        settings = BillingSettings(GRACE, timedelta(days=14), D("0.10"))
        self.subscriptions = SubscriptionUseCases(self.db, self.usage, self.clock, D("0.10"))
        self.run = BillingRun(self.db, self.usage, self.clock, settings)
        self.actions = InvoiceActions(self.db, self.clock, timedelta(days=14))
        self.price_book = PriceBookAdmin(self.db, self.clock)
        self.queries = BillingQueries(
            self.db, self.usage, self.clock, PageTokens(b"k" * 32), D("0.10")
        )

    async def create(self, tier: Tier = Tier.STARTER, **options: object) -> None:
        command = CreateSubscription(ORG, tier, BillingCycle.MONTHLY, True)
        await self.subscriptions.create(replace(command, **options), ADMIN)  # type: ignore[arg-type]

    async def actions_price(self, tier: Tier, price: MeterPrice, since: datetime) -> None:
        await self.price_book.set_price(tier, price, since, ADMIN)

    async def bill(self, when: str) -> RunSummary:
        self.clock.set(at(when))
        return await self.run.run(self.clock.now(), ADMIN)

    def invoices(self) -> list[Invoice]:
        # In the order they were issued: several share an instant when a run catches up.
        return sorted(
            self.db.state.invoices.values(),
            key=lambda i: (
                i.created_at,
                i.period_end,
                i.kind is not InvoiceKind.SUBSCRIPTION_START,
            ),
        )


@pytest.fixture
def billing() -> Billing:
    return Billing()


async def test_spec_upgrade_mid_march(billing: Billing) -> None:
    subscription, first = await billing.subscriptions.create(
        CreateSubscription(ORG, Tier.STARTER, BillingCycle.MONTHLY, True), CUSTOMER
    )
    # 29.00 + 10% = 31.90, finalized at once with the first number.
    assert (first.status, first.number, first.totals.total) == (
        InvoiceStatus.SENT,
        "INV-2026-000001",
        usd("31.90"),
    )
    billing.clock.set(at("2026-03-16T12:00:00Z"))
    changed = await billing.subscriptions.change_tier(ChangeTier(ORG, Tier.PRO), CUSTOMER)
    invoice = changed.proration_invoice
    assert invoice is not None
    assert changed.credit_note is None
    # (99 − 29) × 1,339,200 / 2,678,400 = 35.00; tax 3.50; due 7 days later.
    assert [(line.kind, line.description, line.amount) for line in invoice.lines] == [
        (LineKind.PRORATION, "Upgrade starter → pro (prorated)", usd("35.00"))
    ]
    assert (invoice.totals.tax, invoice.totals.total) == (usd("3.50"), usd("38.50"))
    assert invoice.due_at == at("2026-03-23T12:00:00Z")
    # The invoice belongs to the March period; its one line covers what was left of it.
    assert (invoice.period_start, invoice.period_end) == (
        at("2026-03-01T00:00:00Z"),
        at("2026-04-01T00:00:00Z"),
    )
    assert invoice.lines[0].period_start == at("2026-03-16T12:00:00Z")
    assert invoice.number == "INV-2026-000002"
    assert changed.subscription.tier is Tier.PRO
    assert changed.subscription.current_period == subscription.current_period  # never moves


async def test_spec_downgrade_credits_and_the_credit_pays_later_invoices(billing: Billing) -> None:
    await billing.create(Tier.PRO)
    billing.clock.set(at("2026-03-16T12:00:00Z"))
    changed = await billing.subscriptions.change_tier(ChangeTier(ORG, Tier.STARTER), ADMIN)
    note = changed.credit_note
    assert note is not None
    assert changed.proration_invoice is None
    assert (note.number, note.subtotal, note.tax, note.total) == (
        "CN-2026-000001",
        usd("35.00"),
        usd("3.50"),
        usd("38.50"),
    )
    assert await billing.queries.credit_balance(ORG, CUSTOMER) == usd("38.50")
    # The April invoice: the starter fee 29.00 + 2.90 = 31.90, all paid from the 38.50 credit;
    # 6.60 carries forward.
    await billing.bill("2026-04-01T00:00:00Z")
    summary = await billing.bill("2026-04-01T01:00:00Z")
    assert summary.invoices_finalized == 1
    april = billing.invoices()[-1]
    assert (april.totals.total, april.totals.credit_applied, april.totals.amount_due) == (
        usd("31.90"),
        usd("31.90"),
        usd("0.00"),
    )
    assert april.status is InvoiceStatus.PAID
    assert await billing.queries.credit_balance(ORG, CUSTOMER) == usd("6.60")


async def test_period_end_invoice_waits_for_the_grace_and_counts_late_usage(
    billing: Billing,
) -> None:
    await billing.create()
    billing.usage.record(ORG, UsageType.JOB_EXECUTION, at("2026-03-10T00:00:00Z"), "1000")
    summary = await billing.bill("2026-04-01T00:00:00Z")
    assert summary.invoices_created == 1
    draft = billing.invoices()[-1]
    assert draft.status is InvoiceStatus.DRAFT
    assert draft.number is None
    # Late usage inside the grace (its timestamp in March) is counted at finalization.
    billing.usage.record(ORG, UsageType.JOB_EXECUTION, at("2026-03-31T23:59:59Z"), "500")
    billing.usage.record(ORG, UsageType.JOB_EXECUTION, at("2026-04-01T00:00:00Z"), "7")  # April
    await billing.bill("2026-04-01T00:59:59Z")
    assert billing.invoices()[-1].status is InvoiceStatus.DRAFT
    await billing.bill("2026-04-01T01:00:00Z")
    final = billing.invoices()[-1]
    # 1,500 jobs × 0.001 = 1.50 and the April fee 29.00: subtotal 30.50, tax 3.05, 33.55.
    assert [(line.kind, line.quantity, line.amount) for line in final.lines] == [
        (LineKind.USAGE, D(1500), usd("1.50")),
        (LineKind.FEE, D(1), usd("29.00")),
    ]
    assert final.totals.total == usd("33.55")
    assert final.number == "INV-2026-000002"
    subscription = await billing.queries.subscription(ORG, CUSTOMER)
    assert subscription.usage_closed_before == at("2026-04-01T00:00:00Z")


async def test_a_back_dated_year_is_billed_period_by_period(billing: Billing) -> None:
    billing.clock.set(at("2026-03-01T00:00:00Z"))
    await billing.create(start_time=at("2025-01-31T10:00:00Z"))
    summary = await billing.bill("2026-03-01T00:00:00Z")
    # Periods end 2025-02-28, 03-31, …, 2026-01-31, 2026-02-28: 13 period ends.
    assert summary.invoices_created == 13
    assert summary.invoices_finalized == 13
    ends = [i.period_end for i in billing.invoices() if i.kind is InvoiceKind.PERIOD_END]
    assert ends[:3] == [
        at("2025-02-28T10:00:00Z"),
        at("2025-03-31T10:00:00Z"),
        at("2025-04-30T10:00:00Z"),
    ]
    numbers = [i.number for i in billing.invoices()]
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 15)]  # gap-free
    again = await billing.bill("2026-03-01T00:00:00Z")
    assert again.invoices_created == again.invoices_finalized == 0


async def test_without_auto_renew_the_last_invoice_has_no_fee_and_ends_it(billing: Billing) -> None:
    await billing.create(auto_renew=False)
    billing.usage.record(ORG, UsageType.API_CALL, at("2026-03-05T00:00:00Z"), "100000")
    summary = await billing.bill("2026-04-01T01:00:00Z")
    assert summary.subscriptions_canceled == 1
    final = billing.invoices()[-1]
    # 100,000 calls × 0.00001 = 1.00; no fee; tax 0.10.
    assert [line.kind for line in final.lines] == [LineKind.USAGE]
    assert final.totals.total == usd("1.10")
    subscription = await billing.queries.subscription(ORG, CUSTOMER)
    assert subscription.status is SubscriptionStatus.CANCELED
    # The organisation may subscribe again.
    await billing.create()


async def test_immediate_cancellation_invoices_usage_and_credits_the_unused_fee(
    billing: Billing,
) -> None:
    await billing.create()
    billing.usage.record(ORG, UsageType.JOB_EXECUTION, at("2026-03-05T00:00:00Z"), "10")
    billing.usage.record(ORG, UsageType.JOB_EXECUTION, at("2026-03-25T00:00:00Z"), "99")
    billing.clock.set(at("2026-03-22T00:00:00Z"))
    with pytest.raises(PermissionDenied):
        await billing.subscriptions.cancel(CancelSubscription(ORG, False), CUSTOMER)
    canceled = await billing.subscriptions.cancel(CancelSubscription(ORG, False), ADMIN)
    assert canceled.status is SubscriptionStatus.CANCELED
    [note] = billing.db.state.credit_notes.values()
    # 10 of 31 days unused: 29 × 10/31 = 9.3548… → 9.35, tax 0.94 (0.935 half up), 10.29.
    assert (note.subtotal, note.tax, note.total) == (usd("9.35"), usd("0.94"), usd("10.29"))
    draft = billing.invoices()[-1]
    assert draft.period_end == at("2026-03-22T00:00:00Z")
    await billing.bill("2026-03-22T01:00:00Z")
    final = billing.invoices()[-1]
    # Only the 10 jobs before the cancellation: 0.01, tax 0.00; credit pays it.
    assert [line.quantity for line in final.lines] == [D(10)]
    assert final.totals.amount_due == usd("0.00")


async def test_a_second_live_subscription_is_refused(billing: Billing) -> None:
    await billing.create()
    with pytest.raises(AlreadyExists) as refused:
        await billing.create(tier=Tier.PRO)
    assert refused.value.reason is Reason.SUBSCRIPTION_EXISTS


async def test_request_ids_make_creation_safe_to_retry(billing: Billing) -> None:
    command = CreateSubscription(ORG, Tier.STARTER, BillingCycle.MONTHLY, True, request_id="r1")
    first = await billing.subscriptions.create(command, CUSTOMER)
    again = await billing.subscriptions.create(command, CUSTOMER)
    assert again == first
    assert len(billing.db.state.invoices) == 1
    with pytest.raises(AlreadyExists) as reused:
        await billing.subscriptions.create(replace(command, tier=Tier.PRO), CUSTOMER)
    assert reused.value.reason is Reason.IDEMPOTENCY_KEY_REUSED


async def test_customers_cannot_back_date_or_reach_other_organisations(billing: Billing) -> None:
    with pytest.raises(PermissionDenied):
        await billing.subscriptions.create(
            CreateSubscription(
                ORG, Tier.STARTER, BillingCycle.MONTHLY, True, start_time=at("2026-01-01T00:00:00Z")
            ),
            CUSTOMER,
        )
    with pytest.raises(PermissionDenied):
        await billing.subscriptions.create(
            CreateSubscription(OTHER, Tier.STARTER, BillingCycle.MONTHLY, True), CUSTOMER
        )
    await billing.create()
    invoice = billing.invoices()[0]
    with pytest.raises(NotFound):
        await billing.queries.invoice(invoice.id, Caller("x", OTHER))


async def test_overdue_then_past_due_then_payment_lifts_it(billing: Billing) -> None:
    await billing.create()
    first = billing.invoices()[0]
    summary = await billing.bill("2026-03-31T00:00:01Z")  # due 2026-03-31T00:00Z passed
    assert summary.invoices_overdue == 1
    assert summary.subscriptions_suspended == 0
    summary = await billing.bill("2026-04-14T00:00:00Z")  # overdue exactly 14 days: not yet
    assert summary.subscriptions_suspended == 0
    summary = await billing.bill("2026-04-14T00:00:01Z")  # beyond the grace: suspended
    assert summary.subscriptions_suspended == 1
    assert (await billing.queries.subscription(ORG, CUSTOMER)).status is SubscriptionStatus.PAST_DUE
    with pytest.raises(PreconditionFailed) as mismatch:
        await billing.actions.apply_payment(first.id, "pay-1", D("1.00"), None, ADMIN)
    assert mismatch.value.reason is Reason.PAYMENT_MISMATCH
    paid = await billing.actions.apply_payment(first.id, "pay-1", D("31.90"), None, ADMIN)
    assert paid.status is InvoiceStatus.PAID
    again = await billing.actions.apply_payment(first.id, "pay-1", D("31.90"), None, ADMIN)
    assert again == paid  # the same payment changes nothing
    # The April period-end invoice is still unpaid but not overdue: the subscription is active.
    assert (await billing.queries.subscription(ORG, CUSTOMER)).status is SubscriptionStatus.ACTIVE


async def test_voiding_gives_applied_credit_back(billing: Billing) -> None:
    await billing.create(Tier.PRO)
    billing.clock.set(at("2026-03-16T12:00:00Z"))
    await billing.subscriptions.change_tier(ChangeTier(ORG, Tier.STARTER), ADMIN)  # 38.50
    await billing.bill("2026-04-01T01:00:00Z")
    april = billing.invoices()[-1]
    assert april.totals.credit_applied == usd("31.90")
    with pytest.raises(PreconditionFailed):  # paid by credit: no longer voidable
        await billing.actions.void(april.id, "mistake", ADMIN)
    first = billing.invoices()[0]
    voided = await billing.actions.void(first.id, "duplicate", ADMIN)
    assert voided.status is InvoiceStatus.VOID
    assert await billing.queries.credit_balance(ORG, CUSTOMER) == usd("6.60")


async def test_an_invoice_whose_numbers_do_not_add_up_is_held_as_a_draft(
    billing: Billing, caplog: pytest.LogCaptureFixture
) -> None:
    await billing.create()
    await billing.bill("2026-04-01T00:00:00Z")
    draft = billing.invoices()[-1]
    # Provoke it: an operator's hand edit leaves a fee line that is not whole cents.
    broken = replace(draft.lines[-1], amount=usd("29.001"))
    billing.db.state.invoices[draft.id] = replace(draft, lines=(broken,))
    with caplog.at_level(logging.ERROR):
        summary = await billing.bill("2026-04-01T01:00:00Z")
    assert summary.invoices_held == 1
    assert summary.invoices_finalized == 0
    assert billing.db.state.invoices[draft.id].status is InvoiceStatus.DRAFT
    assert billing.db.state.sequences["invoice"] == 1  # no number burned
    assert any("not rounded" in str(getattr(r, "problems", "")) for r in caplog.records)


async def test_every_change_queues_entitlements_with_growing_versions(billing: Billing) -> None:
    await billing.create()
    billing.clock.set(at("2026-03-16T12:00:00Z"))
    await billing.subscriptions.change_tier(ChangeTier(ORG, Tier.PRO), CUSTOMER)
    await billing.bill("2026-04-01T01:00:00Z")
    pushed = sorted(billing.db.state.outbox.values(), key=lambda row: row.version)
    assert [row.payload["tier"] for row in pushed] == ["starter", "pro", "pro", "pro"]
    assert pushed[-1].payload["usage_closed_before"] == "2026-04-01T00:00:00Z"
    assert pushed[-1].payload["current_period_start"] == "2026-04-01T00:00:00Z"
    assert pushed[1].payload["limits"]["job_execution"] == "100000"


async def test_preview_shows_usage_so_far_and_the_credit_it_would_take(billing: Billing) -> None:
    await billing.create()
    billing.usage.record(ORG, UsageType.WORKER_HOURS, at("2026-03-02T00:00:00Z"), "10")
    billing.clock.set(at("2026-03-10T00:00:00Z"))
    preview = await billing.queries.preview(ORG, CUSTOMER)
    # 10 worker-hours × 0.02 = 0.20 and the next fee 29.00: 29.20 + 2.92 = 32.12.
    assert preview.totals.total == usd("32.12")
    assert preview.number is None
    assert len(billing.db.state.invoices) == 1  # nothing stored


async def test_one_metering_call_per_batch_not_per_subscription(billing: Billing) -> None:
    for index in range(5):
        org = f"0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a1{index}"
        await billing.subscriptions.create(
            CreateSubscription(org, Tier.STARTER, BillingCycle.MONTHLY, True), ADMIN
        )
    billing.usage.calls.clear()
    await billing.bill("2026-04-01T00:00:00Z")
    assert billing.usage.calls == [5]  # one call, five queries


async def test_the_audit_trail_says_who_did_what_before_and_after(billing: Billing) -> None:
    await billing.subscriptions.create(
        CreateSubscription(ORG, Tier.STARTER, BillingCycle.MONTHLY, True, request_id="r-9"),
        CUSTOMER,
    )
    billing.clock.set(at("2026-03-16T12:00:00Z"))
    await billing.subscriptions.change_tier(ChangeTier(ORG, Tier.PRO), CUSTOMER)
    page = await billing.queries.audit_entries(ORG, None, 50, "", ADMIN)
    actions = [(e.action, e.actor) for e in reversed(page.items)]
    assert actions == [
        ("invoice.finalized", "customer"),
        ("subscription.created", "customer"),
        ("invoice.finalized", "customer"),
        ("subscription.tier_changed", "customer"),
    ]
    changed = page.items[0]
    assert isinstance(changed.before, dict)
    assert isinstance(changed.after, dict)
    assert (changed.before["tier"], changed.after["tier"]) == ("starter", "pro")
    assert page.items[-1].request_id == "r-9"
    first_page = await billing.queries.audit_entries(ORG, None, 3, "", ADMIN)
    rest = await billing.queries.audit_entries(ORG, None, 3, first_page.next_page_token, ADMIN)
    assert [e.id for e in first_page.items + rest.items] == [e.id for e in page.items]
    with pytest.raises(PermissionDenied):
        await billing.queries.audit_entries(ORG, None, 50, "", CUSTOMER)


async def test_a_retried_downgrade_answers_the_same_credit_note(billing: Billing) -> None:
    await billing.create(Tier.PRO)
    billing.clock.set(at("2026-03-16T12:00:00Z"))
    command = ChangeTier(ORG, Tier.STARTER, request_id="down-1")
    first = await billing.subscriptions.change_tier(command, CUSTOMER)
    billing.clock.set(at("2026-03-17T00:00:00Z"))  # the retry comes later: same answer
    again = await billing.subscriptions.change_tier(command, CUSTOMER)
    assert again.credit_note == first.credit_note
    assert again.subscription == first.subscription
    assert len(billing.db.state.credit_notes) == 1


@given(
    changes=st.lists(
        st.tuples(st.integers(1, 30 * 24 - 1), st.integers(1, 5000)),
        min_size=1,
        max_size=4,
        unique_by=lambda c: c[0],
    ),
    used=st.lists(st.tuples(st.integers(0, 31 * 24 - 1), st.integers(1, 10**6)), max_size=6),
)
@settings(max_examples=40, deadline=None)
async def test_usage_is_rated_by_the_price_in_force_when_it_happened(
    changes: list[tuple[int, int]], used: list[tuple[int, int]]
) -> None:
    """Job prices change at random hours of March; every job is priced at the price in force
    at its hour, summed exactly and rounded once (computed here event by event)."""
    billing = Billing()
    await billing.create()
    march = at("2026-03-01T00:00:00Z")
    prices = sorted((march + timedelta(hours=h), D(p).scaleb(-6)) for h, p in changes)
    for since, price in prices:
        await billing.actions_price(Tier.STARTER, MeterPrice(UsageType.JOB_EXECUTION, price), since)
    expected = D(0)
    for hour, quantity in used:
        instant = march + timedelta(hours=hour)
        billing.usage.record(ORG, UsageType.JOB_EXECUTION, instant, str(quantity))
        in_force = [p for since, p in prices if since <= instant]
        expected += quantity * (in_force[-1] if in_force else D("0.001"))
    await billing.bill("2026-04-01T01:00:00Z")
    usage_lines = [line for line in billing.invoices()[-1].lines if line.kind is LineKind.USAGE]
    assert [line.amount.amount for line in usage_lines] == (
        [expected.quantize(D("0.01"), rounding=ROUND_HALF_UP)] if used else []
    )


BROKEN: set[str] = set()  # subscriptions whose row "is corrupt" in the test below


class _FailingSubscriptions(InMemorySubscriptions):
    async def lock(self, subscription_id: str) -> Subscription | None:
        if subscription_id in BROKEN:
            raise RuntimeError("corrupt row")
        return await super().lock(subscription_id)


class _FailingUnitOfWork(InMemoryUnitOfWork):
    @property
    def subscriptions(self) -> _FailingSubscriptions:
        return _FailingSubscriptions(self._open)


class _FailingDatabase(InMemoryDatabase):
    def __call__(self) -> _FailingUnitOfWork:
        return _FailingUnitOfWork(self)


async def test_one_broken_subscription_never_stops_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    billing = Billing(db=_FailingDatabase())
    organizations = [f"0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a2{n}" for n in range(3)]
    created = []
    for org in organizations:
        subscription, _ = await billing.subscriptions.create(
            CreateSubscription(org, Tier.STARTER, BillingCycle.MONTHLY, True), ADMIN
        )
        created.append(subscription)
    BROKEN.add(created[1].id)
    with caplog.at_level(logging.ERROR):
        summary = await billing.bill("2026-04-01T01:00:00Z")
    assert summary.steps_failed == 1
    assert (summary.invoices_created, summary.invoices_finalized) == (2, 2)
    assert any("left for the next run" in r.getMessage() for r in caplog.records)
    BROKEN.clear()  # repaired: the next run bills it
    again = await billing.bill("2026-04-01T01:00:00Z")
    assert (again.steps_failed, again.invoices_created, again.invoices_finalized) == (0, 1, 1)


@pytest.mark.parametrize(
    ("paid_at", "standing"),
    [
        # The April invoice (due 05-01T01:00) is exactly 14 days overdue: not beyond the grace.
        ("2026-05-15T01:00:00Z", SubscriptionStatus.ACTIVE),
        # A second later it is beyond it: paying the older invoice does not lift the suspension.
        ("2026-05-15T01:00:01Z", SubscriptionStatus.PAST_DUE),
    ],
)
async def test_paying_lifts_a_suspension_only_if_no_other_invoice_is_beyond_the_grace(
    paid_at: str, standing: SubscriptionStatus
) -> None:
    billing = Billing()
    await billing.create()
    first = billing.invoices()[0]  # due 03-31T00:00
    await billing.bill("2026-04-01T01:00:00Z")  # the April invoice, due 05-01T01:00
    await billing.bill("2026-04-14T00:00:01Z")  # the first is overdue beyond 14 days
    assert (await billing.queries.subscription(ORG, CUSTOMER)).status is SubscriptionStatus.PAST_DUE
    billing.clock.set(at(paid_at))
    await billing.actions.apply_payment(first.id, "pay-1", D("31.90"), None, ADMIN)
    assert (await billing.queries.subscription(ORG, CUSTOMER)).status is standing
