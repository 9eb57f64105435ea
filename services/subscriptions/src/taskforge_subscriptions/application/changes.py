"""What every state change writes besides the change itself, in the same transaction: its events
(SPEC §8), its audit entry (SPEC §10: who, what, when, before and after) and, when a
subscription changed, the entitlements metering must enforce (relayed through the outbox)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from taskforge_common.audit import AuditEntry
from taskforge_common.caller import Caller
from taskforge_common.ids import new_id
from taskforge_common.jsonsafe import to_json_safe
from taskforge_subscriptions.application.ports import BillingEvent, EntitlementsUpdate, UnitOfWork
from taskforge_subscriptions.domain.credit import CreditNote
from taskforge_subscriptions.domain.invoices import Invoice
from taskforge_subscriptions.domain.subscriptions import Subscription, SubscriptionStatus

# Subscription standing → metering's EntitlementStatus.
_ENTITLEMENT_STATUS = {
    SubscriptionStatus.ACTIVE: "active",
    SubscriptionStatus.PAST_DUE: "past_due",
    SubscriptionStatus.CANCELED: "none",
}


def entitlements_of(subscription: Subscription) -> EntitlementsUpdate:
    """The metering service's copy of what the subscription allows now."""
    period = subscription.current_period
    payload: dict[str, Any] = {
        "status": _ENTITLEMENT_STATUS[subscription.status],
        "tier": subscription.tier,
        "billing_cycle": subscription.cycle,
        "period_anchor": subscription.anchor,
        "current_period_start": period.start,
        "current_period_end": period.end,
        "limits": dict(subscription.limits),
        "usage_closed_before": subscription.usage_closed_before,
    }
    safe = to_json_safe(payload)
    assert isinstance(safe, dict)
    return EntitlementsUpdate(subscription.organization_id, subscription.entitlements_version, safe)


def invoice_summary(invoice: Invoice) -> dict[str, Any]:
    """An invoice as events and the audit trail show it: its identity and its numbers."""
    totals = invoice.totals
    return {
        "invoice_id": invoice.id,
        "subscription_id": invoice.subscription_id,
        "number": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "currency": invoice.currency,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "subtotal": totals.subtotal.amount,
        "tax_amount": totals.tax.amount,
        "total_amount": totals.total.amount,
        "credit_applied": totals.credit_applied.amount,
        "amount_due": totals.amount_due.amount,
        "due_date": invoice.due_at,
    }


def credit_note_summary(note: CreditNote) -> dict[str, Any]:
    return {
        "credit_note_id": note.id,
        "number": note.number,
        "kind": note.kind,
        "reason": note.reason,
        "invoice_id": note.invoice_id,
        "currency": note.total.currency,
        "subtotal": note.subtotal.amount,
        "tax_amount": note.tax.amount,
        "total_amount": note.total.amount,
    }


def subscription_summary(subscription: Subscription) -> dict[str, Any]:
    fields = dataclasses.asdict(subscription)
    fields["limits"] = dict(subscription.limits)
    return fields


def _json_object(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    safe = to_json_safe(dict(value))
    assert isinstance(safe, dict)
    return safe


class ChangeLog:
    """Writes the events, audit entries and entitlement pushes of one unit of work."""

    def __init__(
        self, uow: UnitOfWork, caller: Caller, now: datetime, request_id: str | None = None
    ) -> None:
        self._uow = uow
        self._caller = caller
        self._now = now
        self._request_id = request_id

    async def event(self, type_: str, organization_id: str, payload: Mapping[str, Any]) -> None:
        data = _json_object(payload)
        assert data is not None
        event = BillingEvent(new_id(self._now), organization_id, type_, data, self._now)
        await self._uow.events.add([event])

    async def audit(
        self,
        action: str,
        entity_type: str,
        entity_id: str,
        organization_id: str | None,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        await self._uow.audit.record(
            AuditEntry(
                id=new_id(self._now),
                occurred_at=self._now,
                actor=self._caller.subject,
                organization_id=organization_id,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                before=_json_object(before),
                after=_json_object(after),
                request_id=self._request_id,
            )
        )

    async def subscription_changed(
        self, action: str, before: Subscription | None, after: Subscription, event_type: str
    ) -> None:
        """Audit, event and entitlements push of a subscription change."""
        summary = subscription_summary(after)
        await self.audit(
            action,
            "subscription",
            after.id,
            after.organization_id,
            None if before is None else subscription_summary(before),
            summary,
        )
        await self.event(event_type, after.organization_id, summary)
        await self._uow.outbox.push_entitlements(entitlements_of(after), self._now)

    async def invoice_changed(
        self, action: str, before: Invoice | None, after: Invoice, event_type: str | None
    ) -> None:
        summary = invoice_summary(after)
        await self.audit(
            action,
            "invoice",
            after.id,
            after.organization_id,
            None if before is None else invoice_summary(before),
            summary,
        )
        if event_type is not None:
            await self.event(event_type, after.organization_id, summary)

    async def credit_note_issued(self, note: CreditNote) -> None:
        summary = credit_note_summary(note)
        await self.audit(
            "credit_note.created", "credit_note", note.id, note.organization_id, None, summary
        )
        await self.event("credit_note.created", note.organization_id, summary)
