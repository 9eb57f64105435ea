"""The totals function, the invariants checked before finalization, and the state machines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from taskforge_common.errors import PreconditionFailed
from taskforge_common.money import Money
from taskforge_subscriptions.domain.credit import credit_amounts
from taskforge_subscriptions.domain.invoices import (
    INVOICE_TRANSITIONS,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    check_invoice_transition,
    compute_totals,
    document_number,
    invoice_violations,
)
from taskforge_subscriptions.domain.subscriptions import (
    SUBSCRIPTION_TRANSITIONS,
    SubscriptionStatus,
    check_subscription_transition,
)

D = Decimal
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def usd(text: str) -> Money:
    return Money(D(text), "USD")


def test_spec_totals_with_a_half_cent_of_tax() -> None:
    # 10.05 × 0.10 = 1.005 → 1.01 half up (1.00 with banker's rounding).
    totals = compute_totals([usd("10.00"), usd("0.05")], D("0.10"), usd("0"))
    assert (totals.subtotal, totals.tax, totals.total, totals.amount_due) == (
        usd("10.05"),
        usd("1.01"),
        usd("11.06"),
        usd("11.06"),
    )


def test_credit_larger_than_the_invoice_leaves_nothing_due_and_the_rest_unused() -> None:
    totals = compute_totals([usd("29.00")], D("0.10"), usd("50.00"))
    assert (totals.credit_applied, totals.amount_due) == (usd("31.90"), usd("0.00"))


def test_credit_note_amounts_mirror_the_upgrade_charge() -> None:
    assert credit_amounts(usd("35.00"), D("0.10")) == (usd("3.50"), usd("38.50"))


def invoice(lines: list[Money], credit: str = "0") -> Invoice:
    return Invoice(
        id="i",
        organization_id="o",
        subscription_id="s",
        kind=InvoiceKind.PERIOD_END,
        status=InvoiceStatus.DRAFT,
        currency="USD",
        period_start=NOW,
        period_end=NOW,
        lines=tuple(InvoiceLine(LineKind.FEE, "fee", a, D(1), a.amount, NOW, NOW) for a in lines),
        totals=compute_totals(lines, D("0.10"), usd(credit)),
        created_at=NOW,
    )


def test_invariants_hold_for_computed_totals_and_catch_tampering() -> None:
    good = invoice([usd("29.00"), usd("3.36")], credit="5.00")
    applied = good.totals.credit_applied
    assert invoice_violations(good, usd("5.00"), usd("5.00") - applied) == []
    tampered = replace(good, totals=replace(good.totals, total=usd("1.00")))
    assert any("total" in p for p in invoice_violations(tampered, usd("5.00"), usd("0")))
    # Credit that vanishes (applied 5, balance drops by 10) is not conserved.
    assert any("conserved" in p for p in invoice_violations(good, usd("10.00"), usd("0")))
    unrounded = replace(good, lines=(replace(good.lines[0], amount=usd("29.001")),))
    assert invoice_violations(unrounded, usd("5.00"), usd("0.00"))


def test_finalizing_numbers_dates_and_applies_credit() -> None:
    final = invoice([usd("29.00")]).finalized("INV-2026-000001", NOW, usd("40.00"))
    assert (final.status, final.number, final.totals.credit_applied, final.totals.amount_due) == (
        InvoiceStatus.PAID,
        "INV-2026-000001",
        usd("31.90"),
        usd("0.00"),
    )
    due = invoice([usd("29.00")]).finalized("INV-2026-000002", NOW, usd("0"))
    assert due.status is InvoiceStatus.SENT
    assert due.due_at == NOW + timedelta(days=30)
    with pytest.raises(PreconditionFailed):
        due.finalized("INV-2026-000003", NOW, usd("0"))


def test_document_numbers() -> None:
    assert document_number("INV", 2026, 42) == "INV-2026-000042"


@pytest.mark.parametrize("current", list(InvoiceStatus))
@pytest.mark.parametrize("target", list(InvoiceStatus))
def test_invoice_transitions(current: InvoiceStatus, target: InvoiceStatus) -> None:
    if target in INVOICE_TRANSITIONS[current]:
        check_invoice_transition(current, target)
    else:
        with pytest.raises(PreconditionFailed):
            check_invoice_transition(current, target)


def test_a_finalized_invoice_never_returns_to_draft() -> None:
    assert all(InvoiceStatus.DRAFT not in targets for targets in INVOICE_TRANSITIONS.values())


@pytest.mark.parametrize("current", list(SubscriptionStatus))
@pytest.mark.parametrize("target", list(SubscriptionStatus))
def test_subscription_transitions(current: SubscriptionStatus, target: SubscriptionStatus) -> None:
    if target in SUBSCRIPTION_TRANSITIONS[current]:
        check_subscription_transition(current, target)
    else:
        with pytest.raises(PreconditionFailed):
            check_subscription_transition(current, target)
