"""The reading RPCs: plans, subscription, invoices, credit, events, the preview of the upcoming
invoice and the dashboard's billing summary. Nothing here writes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

from taskforge_common.audit import AuditEntry
from taskforge_common.caller import Caller
from taskforge_common.clock import Clock
from taskforge_common.errors import InvalidArgument, NotFound
from taskforge_common.money import Money
from taskforge_common.page_tokens import PageTokens
from taskforge_subscriptions.application.invoicing import period_end_draft, tax_rate_of
from taskforge_subscriptions.application.ports import (
    BillingEvent,
    Cursor,
    PricedFrom,
    ReadUnitOfWork,
    UnitOfWorkFactory,
)
from taskforge_subscriptions.application.usage import (
    UsageRequest,
    UsageSource,
    UsageStanding,
    rate_requests,
)
from taskforge_subscriptions.domain.credit import CreditNote
from taskforge_subscriptions.domain.invoices import (
    Invoice,
    InvoiceStatus,
    compute_totals,
)
from taskforge_subscriptions.domain.plans import DEFAULT_CURRENCY, Plan, Tier
from taskforge_subscriptions.domain.subscriptions import PlanSegment, Subscription

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_EVENT_TYPES = 20

_Item = TypeVar("_Item")


@dataclass(frozen=True, slots=True)
class Page(Generic[_Item]):
    items: list[_Item]
    total_count: int
    next_page_token: str


@dataclass(frozen=True, slots=True)
class BillingSummary:
    subscription: Subscription
    usage: UsageStanding
    upcoming: Invoice
    next_billing_date: datetime
    credit_balance: Money


def page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be from 0 to {MAX_PAGE_SIZE}", field="page_size")
    return requested or DEFAULT_PAGE_SIZE


class BillingQueries:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        usage: UsageSource,
        clock: Clock,
        page_tokens: PageTokens,
        default_tax_rate: Decimal,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._usage = usage
        self._clock = clock
        self._tokens = page_tokens
        self._default_tax_rate = default_tax_rate

    def _cursor(self, token: str, query: str) -> Cursor | None:
        return self._tokens.decode(token, query) if token else None

    def _next_token(self, last: Cursor | None, query: str) -> str:
        return "" if last is None else self._tokens.encode(last[0], last[1], query)

    async def plans(self) -> list[Plan]:
        async with self._unit_of_work.reader() as uow:
            return list((await uow.price_book.plans()).values())

    async def subscription(self, organization_id: str, caller: Caller) -> Subscription:
        caller.ensure_access(organization_id)
        async with self._unit_of_work.reader() as uow:
            return await _latest(uow, organization_id)

    async def invoices(
        self,
        organization_id: str,
        status: InvoiceStatus | None,
        requested_size: int,
        token: str,
        caller: Caller,
    ) -> Page[Invoice]:
        caller.ensure_access(organization_id)
        size = page_size(requested_size)
        query = f"invoices:{organization_id}:{status or ''}"
        after = self._cursor(token, query)
        async with self._unit_of_work.reader() as uow:
            found = await uow.invoices.page(organization_id, status, after, size + 1)
            total = await uow.invoices.count(organization_id, status)
        page = found[:size]
        last = (page[-1].created_at, page[-1].id) if len(found) > size else None
        return Page(page, total, self._next_token(last, query))

    async def invoice(self, invoice_id: str, caller: Caller) -> Invoice:
        async with self._unit_of_work.reader() as uow:
            invoice = await uow.invoices.get(invoice_id)
        if invoice is None or not caller.may_access(invoice.organization_id):
            raise NotFound("no such invoice")
        return invoice

    async def credit_balance(self, organization_id: str, caller: Caller) -> Money:
        caller.ensure_access(organization_id)
        async with self._unit_of_work.reader() as uow:
            return await _balance(uow, organization_id)

    async def credit_notes(
        self, organization_id: str, requested_size: int, token: str, caller: Caller
    ) -> Page[CreditNote]:
        caller.ensure_access(organization_id)
        size = page_size(requested_size)
        query = f"credit_notes:{organization_id}"
        after = self._cursor(token, query)
        async with self._unit_of_work.reader() as uow:
            found = await uow.credit.notes(organization_id, after, size + 1)
            total = await uow.credit.count_notes(organization_id)
        page = found[:size]
        last = (page[-1].created_at, page[-1].id) if len(found) > size else None
        return Page(page, total, self._next_token(last, query))

    async def events(
        self,
        organization_id: str,
        types: Collection[str],
        requested_size: int,
        token: str,
        caller: Caller,
    ) -> Page[BillingEvent]:
        caller.ensure_access(organization_id)
        size = page_size(requested_size)
        if len(types) > MAX_EVENT_TYPES:
            raise InvalidArgument(f"at most {MAX_EVENT_TYPES} types", field="types")
        for index, name in enumerate(types):
            if not 0 < len(name) <= 64 or not name.isprintable():
                raise InvalidArgument(
                    "an event type is 1–64 printable characters", field=f"types[{index}]"
                )
        query = f"events:{organization_id}:{','.join(sorted(set(types)))}"
        after = self._cursor(token, query)
        async with self._unit_of_work.reader() as uow:
            found = await uow.events.page(organization_id, sorted(set(types)), after, size + 1)
        page = found[:size]
        last = (page[-1].created_at, page[-1].id) if len(found) > size else None
        return Page(page, -1, self._next_token(last, query))

    async def audit_entries(
        self,
        organization_id: str | None,
        entity_id: str | None,
        requested_size: int,
        token: str,
        caller: Caller,
    ) -> Page[AuditEntry]:
        """The audit trail for operators (SPEC §10), newest first."""
        caller.ensure_admin("reading the audit trail")
        if caller.organization_id is not None:
            # A bound token reads its own organisation's trail, never another's or everyone's.
            caller.ensure_access(organization_id or caller.organization_id)
            organization_id = caller.organization_id
        size = page_size(requested_size)
        query = f"audit:{organization_id or ''}:{entity_id or ''}"
        after = self._cursor(token, query)
        async with self._unit_of_work.reader() as uow:
            found = await uow.audit.page(organization_id, entity_id, after, size + 1)
        page = found[:size]
        last = (page[-1].occurred_at, page[-1].id) if len(found) > size else None
        return Page(page, -1, self._next_token(last, query))

    async def preview(self, organization_id: str, caller: Caller) -> Invoice:
        """The period-end invoice as it would be if the period ended now: usage so far, the
        next fee when the subscription renews, tax, and the credit it would take."""
        caller.ensure_access(organization_id)
        async with self._unit_of_work.reader() as uow:
            basis = await self._preview_basis(uow, organization_id)
        return await self._preview(basis)

    async def _preview_basis(self, uow: ReadUnitOfWork, organization_id: str) -> _PreviewBasis:
        subscription = await uow.subscriptions.live_for_organization(organization_id)
        if subscription is None:
            raise NotFound("the organization has no subscription that is not canceled")
        segments = (await uow.subscriptions.segments([subscription.id]))[subscription.id]
        return _PreviewBasis(
            subscription,
            segments,
            await uow.price_book.price_history({s.tier for s in segments}),
            await tax_rate_of(uow, organization_id, self._default_tax_rate),
            await uow.credit.balance(organization_id, subscription.currency),
        )

    async def _preview(self, basis: _PreviewBasis) -> Invoice:
        # Metering is called after the read is over: no connection (nor SQLite's one lock) is
        # held across the call.
        subscription = basis.subscription
        now = self._clock.now()
        period = subscription.current_period
        until = min(max(now, period.start), period.end)
        [lines] = await rate_requests(
            self._usage,
            [
                UsageRequest(
                    subscription.organization_id,
                    subscription.anchor,
                    period.start,
                    until,
                    basis.segments,
                    subscription.currency,
                )
            ],
            basis.history,
        )
        draft = period_end_draft(subscription, lines, basis.tax_rate, now)
        totals = compute_totals((line.amount for line in draft.lines), basis.tax_rate, basis.credit)
        return replace(draft, totals=totals)

    async def billing_summary(self, organization_id: str, caller: Caller) -> BillingSummary:
        caller.ensure_access(organization_id)
        async with self._unit_of_work.reader() as uow:
            basis = await self._preview_basis(uow, organization_id)
        upcoming = await self._preview(basis)
        standing = await self._usage.standing(organization_id)
        return BillingSummary(
            basis.subscription,
            standing,
            upcoming,
            basis.subscription.current_period.end,
            basis.credit,
        )


@dataclass(frozen=True, slots=True)
class _PreviewBasis:
    """What a preview reads from storage before it asks metering for the usage."""

    subscription: Subscription
    segments: list[PlanSegment]
    history: dict[Tier, list[PricedFrom]]
    tax_rate: Decimal
    credit: Money


async def _latest(uow: ReadUnitOfWork, organization_id: str) -> Subscription:
    subscription = await uow.subscriptions.latest_for_organization(organization_id)
    if subscription is None:
        raise NotFound("the organization has no subscription")
    return subscription


async def _balance(uow: ReadUnitOfWork, organization_id: str) -> Money:
    live = await uow.subscriptions.latest_for_organization(organization_id)
    currency = live.currency if live is not None else DEFAULT_CURRENCY
    return await uow.credit.balance(organization_id, currency)
