"""Operator and payment actions on invoices and tax: ApplyPayment, VoidInvoice, SetTaxRate."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from taskforge_common.caller import Caller
from taskforge_common.clock import Clock
from taskforge_common.errors import InvalidArgument, NotFound, PreconditionFailed, Reason
from taskforge_common.ids import new_id
from taskforge_common.money import Money
from taskforge_subscriptions.application.changes import ChangeLog
from taskforge_subscriptions.application.ports import UnitOfWork, UnitOfWorkFactory
from taskforge_subscriptions.domain.credit import CreditMovement, CreditMovementKind
from taskforge_subscriptions.domain.invoices import (
    OPEN_STATUSES,
    Invoice,
    InvoiceStatus,
    check_invoice_transition,
)
from taskforge_subscriptions.domain.subscriptions import SubscriptionStatus, suspension_cutoff

MAX_TAX_RATE = Decimal(1)


async def _locked_invoice(uow: UnitOfWork, invoice_id: str, caller: Caller) -> Invoice:
    invoice = await uow.invoices.lock(invoice_id)
    # Another organisation's invoice is answered as if it did not exist (SPEC §10).
    if invoice is None or not caller.may_access(invoice.organization_id):
        raise NotFound("no such invoice")
    return invoice


class InvoiceActions:
    def __init__(
        self, unit_of_work: UnitOfWorkFactory, clock: Clock, suspension_grace: timedelta
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._suspension_grace = suspension_grace

    async def apply_payment(
        self,
        invoice_id: str,
        payment_id: str,
        amount: Money | Decimal,
        paid_at: datetime | None,
        caller: Caller,
    ) -> Invoice:
        """Mark the invoice paid by one payment of its amount due, exactly once: applying the
        same payment again answers the invoice as it is. Paying lifts a past-due standing once
        no other invoice is overdue beyond the suspension grace (SPEC §7)."""
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            invoice = await _locked_invoice(uow, invoice_id, caller)
            paid = amount if isinstance(amount, Money) else Money(amount, invoice.currency)
            if payment_id in invoice.payment_ids:
                return invoice
            if invoice.status not in OPEN_STATUSES:
                check_invoice_transition(invoice.status, InvoiceStatus.PAID)
            if paid != invoice.totals.amount_due:
                raise PreconditionFailed(
                    f"the payment of {paid} does not match the amount due"
                    f" {invoice.totals.amount_due}",
                    reason=Reason.PAYMENT_MISMATCH,
                    field="amount",
                )
            at = paid_at or now
            if not await uow.invoices.add_payment(invoice.id, payment_id, paid, at):
                return invoice  # a concurrent call applied this payment
            settled = replace(
                invoice,
                status=InvoiceStatus.PAID,
                paid_at=at,
                payment_ids=(*invoice.payment_ids, payment_id),
            )
            if not await uow.invoices.transition(settled, invoice.status):
                raise PreconditionFailed(
                    "the invoice changed meanwhile; retry", reason=Reason.CONCURRENT_UPDATE
                )
            changes = ChangeLog(uow, caller, now)
            await changes.invoice_changed("invoice.paid", invoice, settled, "invoice.paid")
            await self._lift_suspension(uow, changes, settled, now)
            await uow.commit()
        return settled

    async def _lift_suspension(
        self, uow: UnitOfWork, changes: ChangeLog, paid: Invoice, now: datetime
    ) -> None:
        subscription = await uow.subscriptions.lock(paid.subscription_id)
        if subscription is None or subscription.status is not SubscriptionStatus.PAST_DUE:
            return
        oldest = await uow.invoices.oldest_open_due_date(subscription.id)
        if oldest is not None and oldest < suspension_cutoff(now, self._suspension_grace):
            return  # another invoice is still overdue beyond the grace
        active = subscription.revised(now, status=SubscriptionStatus.ACTIVE)
        if await uow.subscriptions.update(active, subscription.version):
            await changes.subscription_changed(
                "subscription.reactivated", subscription, active, "subscription.updated"
            )

    async def void(self, invoice_id: str, reason: str, caller: Caller) -> Invoice:
        """Void a finalized unpaid invoice; credit it had taken goes back to the balance."""
        caller.ensure_admin("voiding an invoice")
        if len(reason) > 500:
            raise InvalidArgument("reason is longer than 500 characters", field="reason")
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            invoice = await _locked_invoice(uow, invoice_id, caller)
            check_invoice_transition(invoice.status, InvoiceStatus.VOID)
            voided = replace(invoice, status=InvoiceStatus.VOID)
            if not await uow.invoices.transition(voided, invoice.status):
                raise PreconditionFailed(
                    "the invoice changed meanwhile; retry", reason=Reason.CONCURRENT_UPDATE
                )
            applied = invoice.totals.credit_applied
            if applied.amount:
                await uow.credit.lock_balance(invoice.organization_id, invoice.currency)
                await uow.credit.move(
                    CreditMovement(
                        new_id(now),
                        invoice.organization_id,
                        CreditMovementKind.RESTORED,
                        applied,
                        now,
                        invoice_id=invoice.id,
                    )
                )
            changes = ChangeLog(uow, caller, now)
            await changes.invoice_changed("invoice.voided", invoice, voided, "invoice.voided")
            await changes.audit(
                "invoice.void_reason",
                "invoice",
                invoice.id,
                invoice.organization_id,
                None,
                {"reason": reason},
            )
            await uow.commit()
        return voided

    async def set_tax_rate(self, organization_id: str, rate: Decimal, caller: Caller) -> Decimal:
        """The rate of the organisation's new invoices (0 for exempt); invoices already
        drafted or finalized keep theirs."""
        caller.ensure_admin("setting a tax rate")
        caller.ensure_access(organization_id)
        if not 0 <= rate <= MAX_TAX_RATE:
            raise InvalidArgument("tax_rate must be from 0 to 1", field="tax_rate")
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            before = await uow.tax_rates.get(organization_id)
            await uow.tax_rates.set(organization_id, rate, now)
            await ChangeLog(uow, caller, now).audit(
                "tax_rate.set",
                "organization",
                organization_id,
                organization_id,
                None if before is None else {"tax_rate": before},
                {"tax_rate": rate},
            )
            await uow.commit()
        return rate
