"""The rules the schema enforces, the same on the fake and on both databases: one live
subscription per organisation, one period-end invoice per period, guarded transitions,
optimistic versions, gap-free sequences, a credit balance never below 0, request ids."""

from __future__ import annotations

from dataclasses import replace

import pytest

from taskforge_subscriptions.application.ports import StoredRequest, UnitOfWorkFactory
from taskforge_subscriptions.domain.invoices import InvoiceKind, InvoiceStatus
from taskforge_subscriptions.domain.subscriptions import SubscriptionStatus
from tests.subscriptions.contract.builders import (
    APRIL,
    MARCH,
    at,
    credit_note,
    finalized,
    invoice,
    movement,
    new_org,
    segment,
    subscription,
    usd,
)


async def test_a_second_live_subscription_is_refused_and_allowed_after_cancel(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    org = new_org()
    first = subscription(1, org)
    async with unit_of_work() as uow:
        assert await uow.subscriptions.add(first, segment())
        # The refusal leaves the transaction usable (ON CONFLICT, not an aborted statement).
        assert not await uow.subscriptions.add(subscription(2, org), segment())
        await uow.commit()
    async with unit_of_work() as uow:
        assert not await uow.subscriptions.add(subscription(2, org), segment())
        canceled = replace(first, status=SubscriptionStatus.CANCELED, canceled_at=at(5), version=2)
        assert await uow.subscriptions.update(canceled, expected_version=1)
        assert await uow.subscriptions.add(subscription(3, org, created_at=at(6)), segment(at(6)))
        await uow.commit()
    async with unit_of_work.reader() as reader:
        live = await reader.subscriptions.live_for_organization(org)
        latest = await reader.subscriptions.latest_for_organization(org)
        assert live is not None
        assert live.id == subscription(3, org).id
        assert latest == live
        assert await reader.subscriptions.get(subscription(2, org).id) is None


async def test_latest_is_the_last_canceled_when_none_is_live(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    org = new_org()
    older = subscription(1, org, status=SubscriptionStatus.CANCELED)
    newer = subscription(2, org, status=SubscriptionStatus.CANCELED, created_at=at(10))
    async with unit_of_work() as uow:
        assert await uow.subscriptions.add(older, segment())
        assert await uow.subscriptions.add(newer, segment())
        await uow.commit()
    async with unit_of_work.reader() as reader:
        assert await reader.subscriptions.live_for_organization(org) is None
        assert await reader.subscriptions.latest_for_organization(org) == newer


async def test_one_period_end_invoice_per_subscription_and_period(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    sub = subscription(1, new_org())
    async with unit_of_work() as uow:
        await uow.subscriptions.add(sub, segment())
        assert await uow.invoices.add(invoice(10, sub))
        assert not await uow.invoices.add(invoice(11, sub))
        # Other kinds of invoice of the same period, and the next period, are not limited.
        assert await uow.invoices.add(invoice(12, sub, kind=InvoiceKind.PRORATION))
        assert await uow.invoices.add(invoice(13, sub, period_start=APRIL))
        await uow.commit()
    async with unit_of_work() as uow:
        assert not await uow.invoices.add(invoice(14, sub))
        await uow.commit()
    async with unit_of_work.reader() as reader:
        assert await reader.invoices.get(invoice(11, sub).id) is None
        assert await reader.invoices.get(invoice(14, sub).id) is None
        assert await reader.invoices.count(sub.organization_id, None) == 3


async def test_a_draft_is_finalized_once(unit_of_work: UnitOfWorkFactory) -> None:
    sub = subscription(1, new_org())
    draft = invoice(10, sub)
    async with unit_of_work() as uow:
        await uow.subscriptions.add(sub, segment())
        await uow.invoices.add(draft)
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.invoices.transition(
            finalized(draft, "INV-2026-000001"), InvoiceStatus.DRAFT
        )
        assert not await uow.invoices.transition(
            finalized(draft, "INV-2026-000002"), InvoiceStatus.DRAFT
        )
        assert not await uow.invoices.replace_draft(replace(draft, lines=draft.lines[:1]))
        await uow.commit()
    async with unit_of_work.reader() as reader:
        stored = await reader.invoices.get(draft.id)
        assert stored == finalized(draft, "INV-2026-000001")


async def test_replace_draft_rewrites_lines_and_totals(unit_of_work: UnitOfWorkFactory) -> None:
    sub = subscription(1, new_org())
    draft = invoice(10, sub)
    async with unit_of_work() as uow:
        await uow.subscriptions.add(sub, segment())
        await uow.invoices.add(draft)
        rerated = invoice(10, sub, lines=draft.lines[1:])
        assert await uow.invoices.replace_draft(rerated)
        await uow.commit()
    async with unit_of_work.reader() as reader:
        assert await reader.invoices.get(draft.id) == rerated


async def test_a_stale_version_writes_nothing(unit_of_work: UnitOfWorkFactory) -> None:
    sub = subscription(1, new_org())
    async with unit_of_work() as uow:
        await uow.subscriptions.add(sub, segment())
        await uow.commit()
    first = replace(sub, auto_renew=False, version=2)
    second = replace(sub, cancel_at_period_end=True, version=2)
    async with unit_of_work() as uow:
        assert await uow.subscriptions.update(first, expected_version=1)
        await uow.commit()
    async with unit_of_work() as uow:
        assert not await uow.subscriptions.update(second, expected_version=1)
        await uow.commit()
    async with unit_of_work.reader() as reader:
        assert await reader.subscriptions.get(sub.id) == first


async def test_sequences_are_gap_free_and_a_rollback_burns_nothing(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        assert [await uow.sequences.next("invoice") for _ in range(3)] == [1, 2, 3]
        assert await uow.sequences.next("credit_note") == 1
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.sequences.next("invoice") == 4
        # Not committed: rolled back.
    async with unit_of_work() as uow:
        assert await uow.sequences.next("invoice") == 4
        with pytest.raises(LookupError):
            await uow.sequences.next("no such sequence")


async def test_credit_is_never_negative(unit_of_work: UnitOfWorkFactory) -> None:
    org = new_org()
    note = credit_note(1, org, "CN-2026-000001")
    async with unit_of_work() as uow:
        assert await uow.credit.lock_balance(org, "USD") == usd("0")
        await uow.credit.add_note(note)
        assert await uow.credit.move(movement(2, org, "38.50", note=note)) == usd("38.50")
        assert await uow.credit.move(movement(3, org, "-30.00")) == usd("8.50")
        with pytest.raises(ValueError, match="would become"):
            await uow.credit.move(movement(4, org, "-8.51"))
        assert await uow.credit.move(movement(5, org, "-8.50")) == usd("0.00")
        await uow.commit()
    async with unit_of_work.reader() as reader:
        assert await reader.credit.balance(org, "USD") == usd("0")
        assert await reader.credit.balance(org, "EUR") == usd("0").zero("EUR")
        moves = await reader.credit.movements(org)
        assert [m.id for m in moves] == [movement(n, org, "1").id for n in (2, 3, 5)]
        assert sum((m.amount for m in moves), usd("0")) == usd("0")
        assert moves[0] == movement(2, org, "38.50", note=note)
        assert await reader.credit.notes(org, None, 10) == [note]
        assert await reader.credit.count_notes(org) == 1


async def test_a_request_id_is_taken_once(unit_of_work: UnitOfWorkFactory) -> None:
    request = StoredRequest("create_subscription", "req-1", "f" * 64, {"id": "a"}, MARCH)
    async with unit_of_work() as uow:
        assert await uow.requests.add(request)
        assert not await uow.requests.add(replace(request, fingerprint="0" * 64))
        assert await uow.requests.add(replace(request, scope="change_tier"))
        await uow.commit()
    async with unit_of_work.reader() as reader:
        assert await reader.requests.find("create_subscription", "req-1") == request
        assert await reader.requests.find("create_subscription", "req-2") is None


async def test_payments_apply_once(unit_of_work: UnitOfWorkFactory) -> None:
    sub = subscription(1, new_org())
    draft = invoice(10, sub)
    async with unit_of_work() as uow:
        await uow.subscriptions.add(sub, segment())
        await uow.invoices.add(draft)
        assert await uow.invoices.add_payment(draft.id, "pay-2", usd("10.00"), at(3, month=4))
        assert await uow.invoices.add_payment(draft.id, "pay-1", usd("5.00"), at(2, month=4))
        assert not await uow.invoices.add_payment(draft.id, "pay-1", usd("5.00"), at(4, month=4))
        with pytest.raises(LookupError):
            await uow.invoices.add_payment("no such invoice", "pay-3", usd("1"), APRIL)
        await uow.commit()
    async with unit_of_work.reader() as reader:
        stored = await reader.invoices.get(draft.id)
        assert stored is not None
        assert stored.payment_ids == ("pay-1", "pay-2")


async def test_tax_rates_are_between_0_and_1(unit_of_work: UnitOfWorkFactory) -> None:
    org = new_org()
    async with unit_of_work() as uow:
        assert await uow.tax_rates.get(org) is None
        await uow.tax_rates.set(org, usd("0.2").amount, MARCH)
        await uow.tax_rates.set(org, usd("0").amount, APRIL)
        with pytest.raises(ValueError, match="between"):
            await uow.tax_rates.set(org, usd("1.01").amount, APRIL)
        await uow.commit()
    async with unit_of_work.reader() as reader:
        assert await reader.tax_rates.get(org) == 0
