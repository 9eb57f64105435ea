"""What is written reads back whole, lists page newest first, the billing run's queries pick
the right rows, locks skip what another transaction holds, and the databases' own guarantees
(the seeded price book, the append-only audit trail)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from taskforge_common import audit
from taskforge_common.audit import AuditEntry, list_entries
from taskforge_common.db.engine import Database
from taskforge_common.meters import UsageType
from taskforge_subscriptions.application.ports import (
    BillingEvent,
    EntitlementsUpdate,
    UnitOfWorkFactory,
)
from taskforge_subscriptions.domain.invoices import InvoiceKind, InvoiceStatus
from taskforge_subscriptions.domain.plans import (
    DEFAULT_PLANS,
    ChargeModel,
    MeterPrice,
    PriceBand,
    Tier,
)
from taskforge_subscriptions.domain.subscriptions import SubscriptionStatus
from taskforge_subscriptions.storage import tables
from taskforge_subscriptions.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.fakes.subscriptions import ReadOnlyStorageError
from tests.subscriptions.contract.builders import (
    APRIL,
    MARCH,
    D,
    at,
    finalized,
    invoice,
    movement,
    new_org,
    row_id,
    segment,
    subscription,
    usd,
)


async def test_plans_are_seeded_with_the_spec_numbers(unit_of_work: UnitOfWorkFactory) -> None:
    async with unit_of_work.reader() as reader:
        plans = await reader.price_book.plans()
    assert plans == DEFAULT_PLANS
    assert plans[Tier.ENTERPRISE].limits[UsageType.API_CALL] == 10_000_000
    assert plans[Tier.PRO].price_per_month == D("99.00")
    assert plans[Tier.CUSTOM].price_per_month is None
    assert plans[Tier.STARTER].prices[UsageType.STORAGE].unit_price == D("0.0002")


async def test_prices_keep_their_history_and_plans_show_the_latest(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    banded = MeterPrice(
        UsageType.JOB_EXECUTION,
        model=ChargeModel.GRADUATED,
        bands=(PriceBand(D("1000"), D("0")), PriceBand(None, D("0.0008"), D("1.5"))),
        included=D("10"),
    )
    cheaper = MeterPrice(UsageType.JOB_EXECUTION, D("0.0005"))
    async with unit_of_work() as uow:
        await uow.price_book.add_price(Tier.PRO, cheaper, at(1, month=6))
        await uow.price_book.add_price(Tier.PRO, banded, APRIL)
        await uow.price_book.save_plan(
            replace(DEFAULT_PLANS[Tier.PRO], price_per_month=D("109.00"), limits={}), APRIL
        )
        await uow.commit()
    async with unit_of_work.reader() as reader:
        history = await reader.price_book.price_history([Tier.PRO, Tier.STARTER])
        plans = await reader.price_book.plans()
    jobs = [p for p in history[Tier.PRO] if p.price.usage_type is UsageType.JOB_EXECUTION]
    assert [(p.effective_from, p.price) for p in jobs] == [
        (
            at(1, month=1).replace(year=2000),
            DEFAULT_PLANS[Tier.PRO].prices[UsageType.JOB_EXECUTION],
        ),
        (APRIL, banded),
        (at(1, month=6), cheaper),
    ]
    assert len(history[Tier.STARTER]) == len(DEFAULT_PLANS[Tier.STARTER].prices)
    assert plans[Tier.PRO].prices[UsageType.JOB_EXECUTION] == cheaper
    assert plans[Tier.PRO].price_per_month == D("109.00")
    assert plans[Tier.PRO].limits == {}
    assert plans[Tier.STARTER] == DEFAULT_PLANS[Tier.STARTER]


async def test_what_is_written_reads_back_whole(unit_of_work: UnitOfWorkFactory) -> None:
    sub = subscription(1, new_org())
    draft = invoice(10, sub)
    later = segment(at(16, 12), Tier.ENTERPRISE, "299.00")
    async with unit_of_work() as uow:
        await uow.subscriptions.add(sub, segment())
        await uow.subscriptions.change_segment(sub.id, at(16, 12), later)
        await uow.invoices.add(draft)
        await uow.commit()
    async with unit_of_work.reader() as reader:
        assert await reader.subscriptions.get(sub.id) == sub
        assert await reader.invoices.get(draft.id) == draft
        segments = await reader.subscriptions.segments([sub.id, "missing"])
    assert segments == {sub.id: [replace(segment(), end=at(16, 12)), later]}
    async with unit_of_work() as uow:
        with pytest.raises(ValueError, match="no open plan segment"):
            await uow.subscriptions.change_segment("missing", at(17), later)


async def test_invoices_page_newest_first_and_count(unit_of_work: UnitOfWorkFactory) -> None:
    sub = subscription(1, new_org())
    drafts = [
        invoice(10 + n, sub, kind=InvoiceKind.PRORATION, created_at=at(2 + n // 2))
        for n in range(5)
    ]
    async with unit_of_work() as uow:
        await uow.subscriptions.add(sub, segment())
        for draft in drafts:
            await uow.invoices.add(draft)
        await uow.invoices.transition(finalized(drafts[0], "INV-2026-000001"), InvoiceStatus.DRAFT)
        await uow.commit()
    newest_first = sorted(drafts, key=lambda i: (i.created_at, i.id), reverse=True)
    org = sub.organization_id
    async with unit_of_work.reader() as reader:
        first = await reader.invoices.page(org, None, None, 2)
        cursor = (first[-1].created_at, first[-1].id)
        rest = await reader.invoices.page(org, None, cursor, 10)
        drafts_only = await reader.invoices.page(org, InvoiceStatus.DRAFT, None, 10)
        assert await reader.invoices.count(org, None) == 5
        assert await reader.invoices.count(org, InvoiceStatus.SENT) == 1
        assert await reader.invoices.page(new_org(), None, None, 10) == []
    assert [i.id for i in first + rest] == [i.id for i in newest_first]
    assert [i.id for i in drafts_only] == [i.id for i in newest_first if i.id != drafts[0].id]


async def test_events_page_newest_first_by_type(unit_of_work: UnitOfWorkFactory) -> None:
    org = new_org()
    events = [
        BillingEvent(
            row_id(n),
            org,
            "invoice.finalized" if n % 2 else "subscription.created",
            {"n": n, "amount": Decimal("1.50")},
            at(1) + timedelta(hours=n // 2),
        )
        for n in range(6)
    ]
    async with unit_of_work() as uow:
        await uow.events.add(events)
        await uow.events.add([])
        await uow.commit()
    async with unit_of_work.reader() as reader:
        first = await reader.events.page(org, [], None, 4)
        rest = await reader.events.page(org, (), (first[-1].created_at, first[-1].id), 4)
        finalized_only = await reader.events.page(org, ["invoice.finalized"], None, 10)
    assert [e.id for e in first + rest] == [row_id(n) for n in (5, 4, 3, 2, 1, 0)]
    assert [e.id for e in finalized_only] == [row_id(n) for n in (5, 3, 1)]
    assert first[0].payload == {"n": 5, "amount": "1.50"}


async def test_the_billing_run_queries(unit_of_work: UnitOfWorkFactory) -> None:
    due = subscription(1, new_org(), anchor=at(1, month=2))  # period ended 2026-03-01
    later = subscription(2, new_org())  # period ends 2026-04-01
    gone = subscription(3, new_org(), anchor=at(1, month=1), status=SubscriptionStatus.CANCELED)
    late = finalized(
        invoice(10, due, kind=InvoiceKind.SUBSCRIPTION_START), "INV-2026-000001", MARCH
    )
    draft = replace(invoice(11, due, period_start=at(1, month=2)), period_end=MARCH)
    async with unit_of_work() as uow:
        for sub in (due, later, gone):
            await uow.subscriptions.add(sub, segment(sub.anchor))
        await uow.invoices.add(replace(late, status=InvoiceStatus.DRAFT, number=None))
        await uow.invoices.transition(late, InvoiceStatus.DRAFT)
        await uow.invoices.add(draft)
        await uow.commit()
    assert late.due_at == MARCH + timedelta(days=30)
    async with unit_of_work.reader() as reader:
        subs = reader.subscriptions
        assert [s.id for s in await subs.due(APRIL, 10)] == [due.id, later.id]
        assert [s.id for s in await subs.due(MARCH, 10)] == [due.id]
        assert await subs.due(APRIL, 1) == [due]
        drafts = reader.invoices
        assert [i.id for i in await drafts.drafts_to_finalize(MARCH, 10)] == [draft.id]
        assert await drafts.drafts_to_finalize(MARCH - timedelta(seconds=1), 10) == []
        assert [i.id for i in await drafts.past_due(APRIL, 10)] == [late.id]
        assert await drafts.past_due(late.due_at, 10) == []  # not passed yet
        assert await drafts.oldest_open_due_date(due.id) == late.due_at
        assert await drafts.oldest_open_due_date(later.id) is None
        assert await drafts.subscriptions_overdue_since(APRIL, 10) == [due.id]
        assert await drafts.subscriptions_overdue_since(late.due_at, 10) == []


async def test_outbox_and_audit_are_written_in_the_transaction(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    org = new_org()
    entry = AuditEntry.create(
        now=MARCH,
        actor="operator",
        action="subscription.create",
        entity_type="subscription",
        entity_id=row_id(1),
        organization_id=org,
        after={"tier": Tier.PRO, "fee": D("99.00")},
    )
    async with unit_of_work() as uow:
        await uow.outbox.push_entitlements(EntitlementsUpdate(org, 7, {"limit": D("5")}), MARCH)
        await uow.audit.record(entry)
        await uow.commit()


async def test_a_read_only_unit_of_work_refuses_writes(unit_of_work: UnitOfWorkFactory) -> None:
    async with unit_of_work.reader() as reader:
        with pytest.raises((ReadOnlyStorageError, DBAPIError)):
            await reader.tax_rates.set(new_org(), D("0.1"), MARCH)  # type: ignore[attr-defined]


async def test_overlapping_units_of_work_keep_each_others_writes(
    backend: str, unit_of_work: UnitOfWorkFactory
) -> None:
    one, two = new_org(), new_org()
    if backend == "sqlite":
        pytest.skip("SQLite runs one transaction at a time")
    first, second = unit_of_work(), unit_of_work()
    async with first, second:
        await first.tax_rates.set(one, D("0.2"), MARCH)
        await second.tax_rates.set(two, D("0.3"), MARCH)
        await first.commit()
        await second.commit()
    async with unit_of_work.reader() as reader:
        assert (await reader.tax_rates.get(one), await reader.tax_rates.get(two)) == (
            D("0.2"),
            D("0.3"),
        )


async def test_lock_skips_a_subscription_another_transaction_holds(
    backend: str, unit_of_work: UnitOfWorkFactory
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite runs one transaction at a time: nothing is ever held")
    held, free = subscription(1, new_org()), subscription(2, new_org())
    async with unit_of_work() as uow:
        await uow.subscriptions.add(held, segment())
        await uow.subscriptions.add(free, segment())
        await uow.commit()
    async with asyncio.timeout(10), unit_of_work() as first:
        assert await first.subscriptions.lock(held.id) == held
        async with unit_of_work() as second:
            assert await second.subscriptions.lock(held.id) is None
            assert await second.subscriptions.lock(free.id) == free
            assert [s.id for s in await second.subscriptions.due(APRIL, 10)] == [held.id, free.id]
    async with unit_of_work() as third:
        assert await third.subscriptions.lock(held.id) == held


async def execute(database: Database, statement: str) -> None:
    async with database.transaction() as transaction:
        await transaction.session.execute(text(statement))
        await transaction.commit()


async def test_the_audit_trail_refuses_update_and_delete(database: Database) -> None:
    org = new_org()
    entry = AuditEntry.create(
        now=MARCH,
        actor="operator",
        action="tax_rate.set",
        entity_type="tax_rate",
        entity_id=org,
        organization_id=org,
    )
    async with database.transaction() as transaction:
        await audit.record(transaction.session, tables.audit_log, entry)
        await transaction.commit()
    for statement in (
        f"UPDATE audit_log SET actor = 'someone else' WHERE id = '{entry.id}'",
        f"DELETE FROM audit_log WHERE id = '{entry.id}'",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            await execute(database, statement)
    async with database.read_only_transaction() as transaction:
        entries = await list_entries(
            transaction.session, tables.audit_log, organization_id=org, limit=10
        )
    assert entries == [entry]


async def test_entitlements_go_to_the_generic_outbox(database: Database) -> None:
    org = new_org()
    uow_factory = SqlUnitOfWorkFactory(database)
    async with uow_factory() as uow:
        await uow.outbox.push_entitlements(EntitlementsUpdate(org, 7, {"limit": D("5")}), MARCH)
        await uow.commit()
    async with database.read_only_transaction() as transaction:
        rows = (
            await transaction.session.execute(
                select(tables.outbox).where(tables.outbox.c.key == org)
            )
        ).all()
    assert [(r.topic, r.version, r.payload, r.created_at) for r in rows] == [
        ("metering.entitlements", 7, {"limit": "5"}, MARCH)
    ]


async def test_a_second_price_from_the_same_instant_is_refused_and_writes_nothing(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    first = MeterPrice(UsageType.API_CALL, D("0.00002"))
    async with unit_of_work() as uow:
        assert await uow.price_book.add_price(Tier.ENTERPRISE, first, APRIL)
        # The refusal leaves the transaction usable (ON CONFLICT, not an aborted statement).
        assert not await uow.price_book.add_price(
            Tier.ENTERPRISE, MeterPrice(UsageType.API_CALL, D("9")), APRIL
        )
        await uow.commit()
    async with unit_of_work.reader() as reader:
        history = (await reader.price_book.price_history([Tier.ENTERPRISE]))[Tier.ENTERPRISE]
    from_april = [p.price for p in history if p.effective_from == APRIL]
    assert from_april == [first]


async def test_subscriptions_are_read_by_the_batch(unit_of_work: UnitOfWorkFactory) -> None:
    first, second = subscription(1, new_org()), subscription(2, new_org())
    async with unit_of_work() as uow:
        assert await uow.subscriptions.add(first, segment())
        assert await uow.subscriptions.add(second, segment())
        await uow.commit()
    async with unit_of_work.reader() as reader:
        found = await reader.subscriptions.get_many([first.id, second.id, row_id(99)])
        assert found == {first.id: first, second.id: second}
        assert await reader.subscriptions.get_many([]) == {}


async def _still_waiting(step: Awaitable[object], seconds: float = 0.3) -> bool:
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        task.result()
        return False
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return True


async def test_a_locked_credit_balance_makes_a_second_spender_wait(
    backend: str, unit_of_work: UnitOfWorkFactory
) -> None:
    """Two finalizations of one organisation cannot both spend the same credit."""
    if backend != "postgresql":
        pytest.skip("the fake never waits and SQLite runs one transaction at a time")
    org = new_org()
    async with unit_of_work() as uow:
        await uow.credit.lock_balance(org, "USD")
        await uow.credit.move(movement(1, org, "10.00"))
        await uow.commit()
    async with asyncio.timeout(10), unit_of_work() as first:
        # Locked, not yet written: the lock alone must hold the second spender back.
        assert await first.credit.lock_balance(org, "USD") == usd("10.00")
        async with unit_of_work() as second:
            assert await _still_waiting(second.credit.lock_balance(org, "USD"))
        await first.credit.move(movement(2, org, "-7.00"))
        await first.commit()
    async with unit_of_work() as third:
        assert await third.credit.lock_balance(org, "USD") == usd("3.00")


async def test_a_locked_invoice_makes_a_second_finalizer_wait(
    backend: str, unit_of_work: UnitOfWorkFactory
) -> None:
    if backend != "postgresql":
        pytest.skip("the fake never waits and SQLite runs one transaction at a time")
    owner = subscription(1, new_org())
    draft = invoice(1, owner)
    async with unit_of_work() as uow:
        await uow.subscriptions.add(owner, segment())
        assert await uow.invoices.add(draft)
        await uow.commit()
    async with asyncio.timeout(10), unit_of_work() as first:
        assert await first.invoices.lock(draft.id) is not None
        assert await first.subscriptions.lock_for_organization(owner.organization_id) == owner
        # A waiting statement cut off leaves its transaction unusable: one unit of work each.
        async with unit_of_work() as second:
            assert await _still_waiting(second.invoices.lock(draft.id))
        async with unit_of_work() as third:
            organization = owner.organization_id
            assert await _still_waiting(third.subscriptions.lock_for_organization(organization))
