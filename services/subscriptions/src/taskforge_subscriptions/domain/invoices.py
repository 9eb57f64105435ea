"""Invoices (SPEC §4): their states and allowed transitions, their lines, the one totals function
and the invariants checked before anything is finalized."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from taskforge_common.errors import PreconditionFailed, Reason
from taskforge_common.meters import UsageType
from taskforge_common.money import Money
from taskforge_subscriptions.domain.rating import RatedWindow

# SPEC §4: due 30 days after finalization; proration invoices in 7.
DUE_AFTER = timedelta(days=30)
PRORATION_DUE_AFTER = timedelta(days=7)


class InvoiceKind(StrEnum):
    SUBSCRIPTION_START = "subscription_start"
    PERIOD_END = "period_end"
    PRORATION = "proration"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    VIEWED = "viewed"
    PAID = "paid"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"
    VOID = "void"
    REFUNDED = "refunded"


# SPEC §4's lifecycle. A finalized invoice is never edited: corrections are credit notes.
INVOICE_TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.SENT, InvoiceStatus.CANCELLED}),
    InvoiceStatus.SENT: frozenset(
        {InvoiceStatus.VIEWED, InvoiceStatus.PAID, InvoiceStatus.OVERDUE, InvoiceStatus.VOID}
    ),
    InvoiceStatus.VIEWED: frozenset(
        {InvoiceStatus.PAID, InvoiceStatus.OVERDUE, InvoiceStatus.VOID}
    ),
    InvoiceStatus.OVERDUE: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.PAID: frozenset({InvoiceStatus.REFUNDED}),
    InvoiceStatus.CANCELLED: frozenset(),
    InvoiceStatus.VOID: frozenset(),
    InvoiceStatus.REFUNDED: frozenset(),
}
# Finalized and awaiting payment.
OPEN_STATUSES = frozenset({InvoiceStatus.SENT, InvoiceStatus.VIEWED, InvoiceStatus.OVERDUE})


def check_invoice_transition(current: InvoiceStatus, target: InvoiceStatus) -> None:
    if target not in INVOICE_TRANSITIONS[current]:
        raise PreconditionFailed(
            f"an invoice that is {current} cannot become {target}",
            reason=Reason.INVALID_STATE_TRANSITION,
        )


class LineKind(StrEnum):
    FEE = "fee"
    USAGE = "usage"
    PRORATION = "proration"


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line: `amount` is rounded to the currency; usage lines keep the windows they were
    rated from, so every cent of a line can be explained."""

    kind: LineKind
    description: str
    amount: Money
    quantity: Decimal
    unit_price: Decimal | None
    period_start: datetime
    period_end: datetime
    usage_type: UsageType | None = None
    windows: tuple[RatedWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class Totals:
    """SPEC §4's arithmetic over an invoice's lines, as one value."""

    subtotal: Money
    tax_rate: Decimal
    tax: Money
    total: Money
    credit_applied: Money
    amount_due: Money


def compute_totals(
    line_amounts: Iterable[Money], tax_rate: Decimal, credit_available: Money
) -> Totals:
    """subtotal = Σ lines; tax = round(subtotal × rate) half up; total = subtotal + tax; then as
    much credit as the total takes: amount_due = total − credit applied, never below 0. Pure:
    allocates nothing and touches no balance, so preview, finalization, PDF and tests agree."""
    currency = credit_available.currency
    subtotal = Money.zero(currency)
    for amount in line_amounts:
        subtotal += amount
    tax = (subtotal * tax_rate).rounded()
    total = subtotal + tax
    applied = min(max(credit_available, Money.zero(currency)), max(total, Money.zero(currency)))
    return Totals(subtotal, tax_rate, tax, total, applied, total - applied)


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    organization_id: str
    subscription_id: str
    kind: InvoiceKind
    status: InvoiceStatus
    currency: str
    period_start: datetime
    period_end: datetime
    lines: tuple[InvoiceLine, ...]
    totals: Totals
    created_at: datetime
    number: str | None = None
    issued_at: datetime | None = None
    due_at: datetime | None = None
    paid_at: datetime | None = None
    # Payments applied (their ids), so applying one twice changes nothing.
    payment_ids: tuple[str, ...] = field(default=())

    @property
    def is_final(self) -> bool:
        return self.status is not InvoiceStatus.DRAFT

    def finalized(self, number: str, at: datetime, credit_available: Money) -> Invoice:
        """Numbered, issued, due, with the credit it takes applied: the draft made final."""
        check_invoice_transition(self.status, InvoiceStatus.SENT)
        totals = compute_totals(
            (line.amount for line in self.lines), self.totals.tax_rate, credit_available
        )
        due_after = PRORATION_DUE_AFTER if self.kind is InvoiceKind.PRORATION else DUE_AFTER
        status = InvoiceStatus.SENT
        paid_at = None
        if totals.amount_due.amount == 0:  # covered by credit (or nothing to pay)
            status, paid_at = InvoiceStatus.PAID, at
        return replace(
            self,
            status=status,
            number=number,
            issued_at=at,
            due_at=at + due_after,
            paid_at=paid_at,
            totals=totals,
        )


def invoice_violations(invoice: Invoice, credit_before: Money, credit_after: Money) -> list[str]:
    """SPEC §4's invariants, checked before an invoice is finalized; empty when all hold.

    subtotal = Σ lines; total = subtotal + tax; amount_due = total − credit applied ≥ 0; the
    credit balance is never negative and conserved: what was there is either applied here or
    still there."""
    totals = invoice.totals
    problems = []
    currencies = {line.amount.currency for line in invoice.lines} | {totals.total.currency}
    if currencies != {invoice.currency}:
        problems.append(f"currencies {sorted(currencies)} on a {invoice.currency} invoice")
        return problems
    lines_sum = sum((line.amount.amount for line in invoice.lines), Decimal(0))
    if lines_sum != totals.subtotal.amount:
        problems.append(f"subtotal {totals.subtotal} ≠ Σ lines {lines_sum}")
    if any(line.amount.amount < 0 for line in invoice.lines):
        problems.append("a line is negative: credits are credit notes, not lines")
    if any(line.amount != line.amount.rounded() for line in invoice.lines):
        problems.append("a line is not rounded to the currency")
    expected_tax = (totals.subtotal * totals.tax_rate).rounded()
    if totals.tax != expected_tax:
        problems.append(f"tax {totals.tax} ≠ round(subtotal × {totals.tax_rate}) {expected_tax}")
    if totals.total != totals.subtotal + totals.tax:
        problems.append(f"total {totals.total} ≠ subtotal + tax")
    if totals.amount_due != totals.total - totals.credit_applied:
        problems.append(f"amount due {totals.amount_due} ≠ total − credit applied")
    if totals.amount_due.amount < 0 or totals.credit_applied.amount < 0:
        problems.append("amount due or credit applied below 0")
    if credit_before.amount < 0 or credit_after.amount < 0:
        problems.append(f"credit balance negative ({credit_before} → {credit_after})")
    if credit_before != credit_after + totals.credit_applied:
        problems.append(
            f"credit not conserved: {credit_before} before ≠ {credit_after} after"
            f" + {totals.credit_applied} applied"
        )
    return problems


def document_number(prefix: str, year: int, sequence: int) -> str:
    """INV-2026-000042 / CN-2026-000007 (SPEC §4): one gap-free sequence per prefix."""
    return f"{prefix}-{year:04d}-{sequence:06d}"
