"""CreateSubscription, ChangeTier and CancelSubscription (SPEC §1, §4–§6)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from taskforge_common.caller import Caller
from taskforge_common.clock import Clock
from taskforge_common.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PreconditionFailed,
    Reason,
)
from taskforge_common.ids import new_id
from taskforge_common.jsonsafe import to_json_safe
from taskforge_common.meters import UsageType
from taskforge_subscriptions.application.changes import ChangeLog
from taskforge_subscriptions.application.commands import (
    CancelSubscription,
    ChangeTier,
    CreateSubscription,
)
from taskforge_subscriptions.application.invoicing import (
    draft_invoice,
    finalize,
    issue_credit_note,
    tax_rate_of,
)
from taskforge_subscriptions.application.ports import (
    StoredRequest,
    UnitOfWork,
    UnitOfWorkFactory,
)
from taskforge_subscriptions.application.usage import UsageRequest, UsageSource, rate_requests
from taskforge_subscriptions.domain.billing import fee_line, proration_line, tier_change, unused_fee
from taskforge_subscriptions.domain.credit import CreditKind, CreditNote
from taskforge_subscriptions.domain.invoices import Invoice, InvoiceKind
from taskforge_subscriptions.domain.plans import Plan, Tier
from taskforge_subscriptions.domain.proration import ChangeDirection
from taskforge_subscriptions.domain.subscriptions import (
    PlanSegment,
    Subscription,
    SubscriptionStatus,
    check_subscription_transition,
)


@dataclass(frozen=True, slots=True)
class TierChanged:
    subscription: Subscription
    proration_invoice: Invoice | None
    credit_note: CreditNote | None


def fingerprint(command: object) -> str:
    """A digest of a command's payload: the same request id with another payload is refused."""
    payload = to_json_safe(command)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _plan_terms(
    plans: Mapping[Tier, Plan],
    tier: Tier,
    custom_price: Decimal | None,
    custom_limits: Mapping[UsageType, Decimal],
    caller: Caller,
) -> tuple[Decimal, Mapping[UsageType, Decimal]]:
    """The fee per month and limits a subscription on `tier` gets."""
    if tier is Tier.CUSTOM:
        caller.ensure_admin("a custom tier")
        if custom_price is None:
            raise InvalidArgument(
                "custom_price_per_month is required for the custom tier",
                field="custom_price_per_month",
            )
        return custom_price, dict(custom_limits)
    if custom_price is not None or custom_limits:
        raise InvalidArgument(
            "custom_price_per_month and custom_limits are for the custom tier only",
            field="custom_price_per_month" if custom_price is not None else "custom_limits",
        )
    plan = plans.get(tier)
    if plan is None or plan.price_per_month is None:
        raise NotFound(f"no {tier} plan is on offer")
    return plan.price_per_month, dict(plan.limits)


class SubscriptionUseCases:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        usage: UsageSource,
        clock: Clock,
        default_tax_rate: Decimal,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._usage = usage
        self._clock = clock
        self._default_tax_rate = default_tax_rate

    async def _replay(
        self,
        uow: UnitOfWork,
        scope: str,
        request_id: str | None,
        digest: str,
    ) -> Mapping[str, str] | None:
        """The stored result of a request already carried out, if this is a retry of it."""
        if request_id is None:
            return None
        stored = await uow.requests.find(scope, request_id)
        if stored is None:
            return None
        if stored.fingerprint != digest:
            raise AlreadyExists(
                "request_id was already used for a different request",
                reason=Reason.IDEMPOTENCY_KEY_REUSED,
                field="request_id",
            )
        return stored.result

    async def _remember(
        self,
        uow: UnitOfWork,
        scope: str,
        request_id: str | None,
        digest: str,
        result: Mapping[str, str],
        now: datetime,
    ) -> None:
        if request_id is not None and not await uow.requests.add(
            StoredRequest(scope, request_id, digest, result, now)
        ):
            raise AlreadyExists(
                "a request with this request_id is being carried out; retry",
                reason=Reason.IDEMPOTENCY_KEY_REUSED,
                field="request_id",
            )

    async def create(
        self, command: CreateSubscription, caller: Caller
    ) -> tuple[Subscription, Invoice]:
        caller.ensure_access(command.organization_id)
        if command.start_time is not None:
            caller.ensure_admin("start_time")
        now = self._clock.now()
        start = command.start_time or now
        scope = f"create_subscription:{command.organization_id}"
        digest = fingerprint(command)
        async with self._unit_of_work() as uow:
            done = await self._replay(uow, scope, command.request_id, digest)
            if done is not None:
                return await self._created(uow, done)
            plans = await uow.price_book.plans()
            price, limits = _plan_terms(
                plans, command.tier, command.custom_price_per_month, command.custom_limits, caller
            )
            currency = plans[command.tier].currency
            subscription = Subscription(
                id=new_id(now),
                organization_id=command.organization_id,
                tier=command.tier,
                status=SubscriptionStatus.ACTIVE,
                cycle=command.cycle,
                auto_renew=command.auto_renew,
                cancel_at_period_end=False,
                price_per_month=price,
                currency=currency,
                limits=limits,
                anchor=start,
                period_index=0,
                created_at=now,
                updated_at=now,
            )
            segment = PlanSegment(start, None, command.tier, price, limits)
            if not await uow.subscriptions.add(subscription, segment):
                raise AlreadyExists(
                    "the organization already has a subscription that is not canceled",
                    reason=Reason.SUBSCRIPTION_EXISTS,
                )
            changes = ChangeLog(uow, caller, now, command.request_id)
            period = subscription.current_period
            draft = draft_invoice(
                organization_id=subscription.organization_id,
                subscription_id=subscription.id,
                kind=InvoiceKind.SUBSCRIPTION_START,
                currency=currency,
                period_start=period.start,
                period_end=period.end,
                lines=[fee_line(command.tier, command.cycle, price, period, currency)],
                tax_rate=await tax_rate_of(uow, command.organization_id, self._default_tax_rate),
                now=now,
            )
            await uow.invoices.add(draft)
            invoice = await finalize(uow, changes, draft, now)
            await changes.subscription_changed(
                "subscription.created", None, subscription, "subscription.created"
            )
            await self._remember(
                uow,
                scope,
                command.request_id,
                digest,
                {"subscription_id": subscription.id, "invoice_id": invoice.id},
                now,
            )
            await uow.commit()
        return subscription, invoice

    async def _created(
        self, uow: UnitOfWork, result: Mapping[str, str]
    ) -> tuple[Subscription, Invoice]:
        subscription = await uow.subscriptions.get(result["subscription_id"])
        invoice = await uow.invoices.get(result["invoice_id"])
        # A stored result's objects are never deleted.
        assert subscription is not None
        assert invoice is not None
        return subscription, invoice

    async def change_tier(self, command: ChangeTier, caller: Caller) -> TierChanged:
        caller.ensure_access(command.organization_id)
        if command.effective_time is not None:
            caller.ensure_admin("effective_time")
        now = self._clock.now()
        at = command.effective_time or now
        scope = f"change_tier:{command.organization_id}"
        digest = fingerprint(command)
        async with self._unit_of_work() as uow:
            done = await self._replay(uow, scope, command.request_id, digest)
            if done is not None:
                return await self._tier_changed(uow, done)
            current = await self._locked(uow, command.organization_id)
            period = current.current_period
            _check_inside(period.start, period.end, at, "effective_time")
            plans = await uow.price_book.plans()
            price, limits = _plan_terms(
                plans, command.tier, command.custom_price_per_month, command.custom_limits, caller
            )
            if command.tier is current.tier and command.tier is not Tier.CUSTOM:
                raise PreconditionFailed(
                    f"the subscription is on the {command.tier} tier already",
                    reason=Reason.INVALID_STATE_TRANSITION,
                )
            changed = current.revised(now, tier=command.tier, price_per_month=price, limits=limits)
            change = tier_change(
                current.tier,
                current.cycle_fee,
                changed.tier,
                changed.cycle_fee,
                period,
                at,
                current.currency,
            )
            await self._save(uow, changed, current.version)
            await uow.subscriptions.change_segment(
                current.id, at, PlanSegment(at, None, changed.tier, price, limits)
            )
            changes = ChangeLog(uow, caller, now, command.request_id)
            tax_rate = await tax_rate_of(uow, current.organization_id, self._default_tax_rate)
            invoice = note = None
            if change.direction is ChangeDirection.UPGRADE and change.amount.amount:
                draft = draft_invoice(
                    organization_id=current.organization_id,
                    subscription_id=current.id,
                    kind=InvoiceKind.PRORATION,
                    currency=current.currency,
                    # The billing period it belongs to (proto); its line covers [at, end).
                    period_start=period.start,
                    period_end=period.end,
                    lines=[proration_line(change, period, at)],
                    tax_rate=tax_rate,
                    now=now,
                )
                await uow.invoices.add(draft)
                invoice = await finalize(uow, changes, draft, now)
            elif change.direction is ChangeDirection.DOWNGRADE and change.amount.amount:
                note = await issue_credit_note(
                    uow,
                    changes,
                    organization_id=current.organization_id,
                    subscription_id=current.id,
                    kind=CreditKind.DOWNGRADE,
                    reason=change.description,
                    subtotal=change.amount,
                    tax_rate=tax_rate,
                    now=now,
                )
            await changes.subscription_changed(
                "subscription.tier_changed", current, changed, "subscription.updated"
            )
            result = {"subscription_id": changed.id}
            if invoice is not None:
                result["invoice_id"] = invoice.id
            if note is not None:
                result["credit_note_id"] = note.id
            await self._remember(uow, scope, command.request_id, digest, result, now)
            await uow.commit()
        return TierChanged(changed, invoice, note)

    async def _tier_changed(self, uow: UnitOfWork, result: Mapping[str, str]) -> TierChanged:
        subscription = await uow.subscriptions.get(result["subscription_id"])
        assert subscription is not None
        invoice = None
        if "invoice_id" in result:
            invoice = await uow.invoices.get(result["invoice_id"])
        note = None
        if "credit_note_id" in result:
            note = await uow.credit.note(result["credit_note_id"])
        return TierChanged(subscription, invoice, note)

    async def cancel(self, command: CancelSubscription, caller: Caller) -> Subscription:
        caller.ensure_access(command.organization_id)
        if not command.at_period_end:
            caller.ensure_admin("an immediate cancellation")
        if command.effective_time is not None:
            caller.ensure_admin("effective_time")
            if command.at_period_end:
                raise InvalidArgument(
                    "effective_time applies to immediate cancellations only",
                    field="effective_time",
                )
        if command.at_period_end:
            return await self._cancel_at_period_end(command, caller)
        return await self._cancel_now(command, caller)

    async def _cancel_at_period_end(
        self, command: CancelSubscription, caller: Caller
    ) -> Subscription:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            current = await self._locked(uow, command.organization_id)
            if current.cancel_at_period_end:
                return current  # asked twice: nothing more to do
            changed = current.revised(now, cancel_at_period_end=True)
            await self._save(uow, changed, current.version)
            await ChangeLog(uow, caller, now, command.request_id).subscription_changed(
                "subscription.cancel_scheduled", current, changed, "subscription.updated"
            )
            await uow.commit()
        return changed

    async def _cancel_now(self, command: CancelSubscription, caller: Caller) -> Subscription:
        """Usage to now is invoiced (a period-end draft ending now, finalized after the
        grace like any other) and the unused share of the fee is credited (SPEC §6)."""
        now = self._clock.now()
        at = command.effective_time or now
        async with self._unit_of_work.reader() as reader:
            seen = await reader.subscriptions.live_for_organization(command.organization_id)
            if seen is None:
                raise NotFound("the organization has no subscription that is not canceled")
            segments = (await reader.subscriptions.segments([seen.id]))[seen.id]
            history = await reader.price_book.price_history({s.tier for s in segments})
        period = seen.current_period
        _check_inside(period.start, period.end, at, "effective_time")
        # Usage is read before the transaction: no lock is held across a call to metering.
        [lines] = await rate_requests(
            self._usage,
            [
                UsageRequest(
                    seen.organization_id, seen.anchor, period.start, at, segments, seen.currency
                )
            ],
            history,
        )
        async with self._unit_of_work() as uow:
            current = await self._locked(uow, command.organization_id)
            if current.version != seen.version:
                raise PreconditionFailed(
                    "the subscription changed meanwhile; retry",
                    reason=Reason.CONCURRENT_UPDATE,
                )
            check_subscription_transition(current.status, SubscriptionStatus.CANCELED)
            changed = current.revised(now, status=SubscriptionStatus.CANCELED, canceled_at=at)
            await self._save(uow, changed, current.version)
            changes = ChangeLog(uow, caller, now, command.request_id)
            tax_rate = await tax_rate_of(uow, current.organization_id, self._default_tax_rate)
            await uow.invoices.add(
                draft_invoice(
                    organization_id=current.organization_id,
                    subscription_id=current.id,
                    kind=InvoiceKind.PERIOD_END,
                    currency=current.currency,
                    period_start=period.start,
                    period_end=at,
                    lines=lines,
                    tax_rate=tax_rate,
                    now=now,
                )
            )
            unused = unused_fee(current.cycle_fee, period, at, current.currency)
            if unused.amount:
                await issue_credit_note(
                    uow,
                    changes,
                    organization_id=current.organization_id,
                    subscription_id=current.id,
                    kind=CreditKind.CANCELLATION,
                    reason=f"Cancellation of the {current.tier} plan (unused fee, prorated)",
                    subtotal=unused,
                    tax_rate=tax_rate,
                    now=now,
                )
            await changes.subscription_changed(
                "subscription.canceled", current, changed, "subscription.canceled"
            )
            await uow.commit()
        return changed

    async def _locked(self, uow: UnitOfWork, organization_id: str) -> Subscription:
        subscription = await uow.subscriptions.lock_for_organization(organization_id)
        if subscription is None:
            raise NotFound("the organization has no subscription that is not canceled")
        return subscription

    async def _save(self, uow: UnitOfWork, changed: Subscription, expected_version: int) -> None:
        if not await uow.subscriptions.update(changed, expected_version):
            raise PreconditionFailed(
                "the subscription changed meanwhile; retry", reason=Reason.CONCURRENT_UPDATE
            )


def _check_inside(start: datetime, end: datetime, at: datetime, field: str) -> None:
    if at < start:
        raise InvalidArgument(
            f"{field} is before the current billing period ({start.isoformat()})", field=field
        )
    if at >= end:
        raise PreconditionFailed(
            f"the current billing period ended at {end.isoformat()}: run the billing cycle first",
            reason=Reason.INVALID_STATE_TRANSITION,
        )
