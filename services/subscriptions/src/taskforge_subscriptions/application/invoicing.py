"""Issuing documents inside a unit of work: invoices (drafted, finalized) and credit notes.

Finalization is where a number is spent, so everything is checked first: the invariants of
SPEC §4 on the finalized invoice and the credit it draws. A violation refuses the
finalization, logs the numbers and leaves the draft for an operator.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from taskforge_common.errors import PreconditionFailed, Reason
from taskforge_common.ids import new_id
from taskforge_common.money import Money
from taskforge_subscriptions.application.changes import ChangeLog
from taskforge_subscriptions.application.ports import ReadUnitOfWork, UnitOfWork
from taskforge_subscriptions.domain.billing import fee_line
from taskforge_subscriptions.domain.credit import (
    CreditKind,
    CreditMovement,
    CreditMovementKind,
    CreditNote,
    credit_amounts,
)
from taskforge_subscriptions.domain.invoices import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    compute_totals,
    document_number,
    invoice_violations,
)
from taskforge_subscriptions.domain.subscriptions import Subscription

logger = logging.getLogger(__name__)

INVOICE_SEQUENCE = "invoice"
CREDIT_NOTE_SEQUENCE = "credit_note"


def draft_invoice(
    *,
    organization_id: str,
    subscription_id: str,
    kind: InvoiceKind,
    currency: str,
    period_start: datetime,
    period_end: datetime,
    lines: Sequence[InvoiceLine],
    tax_rate: Decimal,
    now: datetime,
) -> Invoice:
    """A draft: lines and totals, no number, no credit applied yet."""
    return Invoice(
        id=new_id(now),
        organization_id=organization_id,
        subscription_id=subscription_id,
        kind=kind,
        status=InvoiceStatus.DRAFT,
        currency=currency,
        period_start=period_start,
        period_end=period_end,
        lines=tuple(lines),
        totals=compute_totals((line.amount for line in lines), tax_rate, Money.zero(currency)),
        created_at=now,
    )


async def tax_rate_of(uow: ReadUnitOfWork, organization_id: str, default: Decimal) -> Decimal:
    """The rate of the organisation's new invoices: its own (SetTaxRate), else the default
    (SPEC §4: 0.10 unless configured)."""
    rate = await uow.tax_rates.get(organization_id)
    return default if rate is None else rate


def period_end_draft(
    subscription: Subscription,
    usage_lines: Sequence[InvoiceLine],
    tax_rate: Decimal,
    now: datetime,
) -> Invoice:
    """The draft of the current period's end: the period's usage in arrears and, when the
    subscription renews, the next cycle's fee in advance (SPEC §4)."""
    period = subscription.current_period
    lines = list(usage_lines)
    if subscription.renews:
        following = replace(subscription, period_index=subscription.period_index + 1)
        lines.append(
            fee_line(
                subscription.tier,
                subscription.cycle,
                subscription.price_per_month,
                following.current_period,
                subscription.currency,
            )
        )
    return draft_invoice(
        organization_id=subscription.organization_id,
        subscription_id=subscription.id,
        kind=InvoiceKind.PERIOD_END,
        currency=subscription.currency,
        period_start=period.start,
        period_end=period.end,
        lines=lines,
        tax_rate=tax_rate,
        now=now,
    )


class InvariantViolation(Exception):
    """A draft whose numbers do not add up; it stays a draft for an operator to look at."""


async def finalize(
    uow: UnitOfWork,
    changes: ChangeLog,
    draft: Invoice,
    now: datetime,
    *,
    before_numbering: Callable[[], Awaitable[None]] | None = None,
) -> Invoice:
    """Number the draft, apply the credit it takes and mark it sent (or paid when credit
    covers it), all in the caller's transaction. Raises InvariantViolation, spending nothing,
    when the numbers do not add up, and PreconditionFailed (rolling back, so no number is
    burned) if another writer finalized it first. `before_numbering` runs the caller's own
    writes of this finalization before the number is taken."""
    credit_before = await uow.credit.lock_balance(draft.organization_id, draft.currency)
    final = draft.finalized("pending", now, credit_before)
    credit_after = credit_before - final.totals.credit_applied
    problems = invoice_violations(final, credit_before, credit_after)
    if problems:
        logger.error(
            "finalization refused: invariants do not hold",
            extra={
                "invoice_id": draft.id,
                "subtotal": str(final.totals.subtotal),
                "tax": str(final.totals.tax),
                "total": str(final.totals.total),
                "credit_before": str(credit_before),
                "credit_applied": str(final.totals.credit_applied),
                "problems": problems,
            },
        )
        raise InvariantViolation("; ".join(problems))
    applied = final.totals.credit_applied
    if applied.amount:
        await uow.credit.move(
            CreditMovement(
                new_id(now),
                draft.organization_id,
                CreditMovementKind.APPLIED,
                -applied,
                now,
                invoice_id=draft.id,
            )
        )
    if before_numbering is not None:
        await before_numbering()
    # The number is the invoice's identity on paper: taken last, once all else holds, inside
    # this transaction, so a refused or rolled-back finalization burns none. The counter's row
    # stays locked from here to the commit, which serialises finalizations: as little as
    # possible comes after it.
    sequence = await uow.sequences.next(INVOICE_SEQUENCE)
    final = draft.finalized(document_number("INV", now.year, sequence), now, credit_before)
    if not await uow.invoices.transition(final, InvoiceStatus.DRAFT):
        raise PreconditionFailed(
            "the invoice was finalized meanwhile", reason=Reason.CONCURRENT_UPDATE
        )
    await changes.invoice_changed("invoice.finalized", draft, final, "invoice.finalized")
    if final.status is InvoiceStatus.PAID:
        await changes.event("invoice.paid", final.organization_id, {"invoice_id": final.id})
    return final


async def issue_credit_note(
    uow: UnitOfWork,
    changes: ChangeLog,
    *,
    organization_id: str,
    subscription_id: str | None,
    kind: CreditKind,
    reason: str,
    subtotal: Money,
    tax_rate: Decimal,
    now: datetime,
    invoice_id: str | None = None,
) -> CreditNote:
    """A numbered credit note whose total goes into the organisation's credit balance."""
    tax, total = credit_amounts(subtotal, tax_rate)
    await uow.credit.lock_balance(organization_id, subtotal.currency)
    sequence = await uow.sequences.next(CREDIT_NOTE_SEQUENCE)
    note = CreditNote(
        id=new_id(now),
        number=document_number("CN", now.year, sequence),
        organization_id=organization_id,
        kind=kind,
        reason=reason,
        subtotal=subtotal,
        tax_rate=tax_rate,
        tax=tax,
        total=total,
        created_at=now,
        subscription_id=subscription_id,
        invoice_id=invoice_id,
    )
    await uow.credit.add_note(note)
    await uow.credit.move(
        CreditMovement(
            new_id(now),
            organization_id,
            CreditMovementKind.ISSUED,
            total,
            now,
            credit_note_id=note.id,
        )
    )
    await changes.credit_note_issued(note)
    return note
