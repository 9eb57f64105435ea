"""What the use cases need from storage: one repository per aggregate on the unit of work
(`uow.subscriptions`, `uow.invoices`, …), each small enough to fake in a few lines.

Repositories never commit; the unit of work does. Read-only units of work expose only the
reading half of each repository, so a write through a reader is a type error.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self

from taskforge_common.audit import AuditEntry
from taskforge_common.money import Money
from taskforge_subscriptions.domain.credit import CreditMovement, CreditNote
from taskforge_subscriptions.domain.invoices import Invoice, InvoiceStatus
from taskforge_subscriptions.domain.plans import MeterPrice, Plan, Tier
from taskforge_subscriptions.domain.subscriptions import PlanSegment, Subscription

# A page position: (created_at, id) of the last row of the previous page, newest first.
Cursor = tuple[datetime, str]


@dataclass(frozen=True, slots=True)
class PricedFrom:
    """A meter price and the instant from which it is in force for its tier."""

    effective_from: datetime
    price: MeterPrice


@dataclass(frozen=True, slots=True)
class BillingEvent:
    """An event of SPEC §8, stored in the same transaction as the change it reports."""

    id: str
    organization_id: str
    type: str
    payload: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A state-changing request already carried out: its payload's fingerprint and the ids of
    what it produced, so a retry with the same request id answers the same result."""

    scope: str
    request_id: str
    fingerprint: str
    result: Mapping[str, str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EntitlementsUpdate:
    """What metering must know of an organisation after a change, with a version that only
    grows (metering ignores older versions), relayed through the outbox."""

    organization_id: str
    version: int
    payload: Mapping[str, Any]


class PriceBookReader(Protocol):
    async def plans(self) -> dict[Tier, Plan]:
        """Every plan with its limits and the meter prices in force now (latest prices)."""
        ...

    async def price_history(self, tiers: Collection[Tier]) -> dict[Tier, list[PricedFrom]]:
        """Every price of these tiers with the instant it took effect, oldest first."""
        ...


class PriceBook(PriceBookReader, Protocol):
    async def save_plan(self, plan: Plan, now: datetime) -> None:
        """Fee, limits and features of a tier (prices are added with `add_price`)."""
        ...

    async def add_price(self, tier: Tier, price: MeterPrice, effective_from: datetime) -> bool:
        """A new price for a meter from `effective_from` on; earlier prices stay as history so
        past usage is always rated by the price then in force. False, writing nothing, when
        the meter already has a price from that very instant."""
        ...


class SubscriptionsReader(Protocol):
    async def get(self, subscription_id: str) -> Subscription | None: ...

    async def get_many(self, subscription_ids: Collection[str]) -> dict[str, Subscription]:
        """The ones that exist, by id: a batch's in one read."""
        ...

    async def live_for_organization(self, organization_id: str) -> Subscription | None:
        """The one subscription of the organisation that is not canceled, if any."""
        ...

    async def latest_for_organization(self, organization_id: str) -> Subscription | None:
        """The live one, else the most recently canceled one."""
        ...

    async def segments(self, subscription_ids: Collection[str]) -> dict[str, list[PlanSegment]]:
        """Each subscription's plan segments in time order."""
        ...

    async def due(self, as_of: datetime, limit: int) -> list[Subscription]:
        """Live subscriptions whose current period ended by `as_of`, earliest end first (then
        by id): what a billing run closes next. Not locked: the run locks each one with
        `lock` in its own transaction before changing it."""
        ...


class Subscriptions(SubscriptionsReader, Protocol):
    async def add(self, subscription: Subscription, first_segment: PlanSegment) -> bool:
        """False, writing nothing, when the organisation already has a live subscription (the
        database's partial unique index decides, so two concurrent creations cannot both win)."""
        ...

    async def update(self, subscription: Subscription, expected_version: int) -> bool:
        """Write `subscription` only if the stored row still has `expected_version` (optimistic
        concurrency: two operators changing one subscription cannot both win)."""
        ...

    async def change_segment(self, subscription_id: str, at: datetime, new: PlanSegment) -> None:
        """Close the open segment at `at` and open `new` from there."""
        ...

    async def lock_for_organization(self, organization_id: str) -> Subscription | None:
        """The live subscription, locked for this transaction (SELECT … FOR UPDATE)."""
        ...

    async def lock(self, subscription_id: str) -> Subscription | None:
        """The subscription locked for this transaction, None if another run holds it
        (FOR UPDATE SKIP LOCKED on PostgreSQL)."""
        ...


class InvoicesReader(Protocol):
    async def get(self, invoice_id: str) -> Invoice | None: ...

    async def page(
        self,
        organization_id: str,
        status: InvoiceStatus | None,
        after: Cursor | None,
        limit: int,
    ) -> list[Invoice]:
        """Newest first by (created_at, id)."""
        ...

    async def count(self, organization_id: str, status: InvoiceStatus | None) -> int: ...

    async def drafts_to_finalize(self, ended_before: datetime, limit: int) -> list[Invoice]:
        """Period-end drafts whose period ended before `ended_before` (now − grace)."""
        ...

    async def past_due(self, as_of: datetime, limit: int) -> list[Invoice]:
        """Finalized unpaid invoices (sent, viewed) whose due date has passed."""
        ...

    async def oldest_open_due_date(self, subscription_id: str) -> datetime | None:
        """The earliest due date among the subscription's unpaid finalized invoices."""
        ...

    async def subscriptions_overdue_since(self, due_before: datetime, limit: int) -> list[str]:
        """Ids of active (not past-due, not canceled) subscriptions with an unpaid finalized
        invoice due before `due_before`: those to suspend (SPEC §7)."""
        ...


class Invoices(InvoicesReader, Protocol):
    async def add(self, invoice: Invoice) -> bool:
        """Insert with its lines; False, writing nothing, when a period-end invoice already
        exists for that (subscription, period start): the uniqueness constraint decides."""
        ...

    async def lock(self, invoice_id: str) -> Invoice | None:
        """The invoice locked for this transaction (SELECT … FOR UPDATE)."""
        ...

    async def replace_draft(self, invoice: Invoice) -> bool:
        """New lines and totals for a draft; False when it is no longer a draft."""
        ...

    async def transition(self, invoice: Invoice, expected: InvoiceStatus) -> bool:
        """Write the invoice's new status and the fields that come with it (number, dates,
        totals) with `UPDATE … WHERE status = expected`; False when another writer moved it."""
        ...

    async def add_payment(
        self, invoice_id: str, payment_id: str, amount: Money, paid_at: datetime
    ) -> bool:
        """Record a payment; False when this payment id was applied already."""
        ...


class CreditReader(Protocol):
    async def balance(self, organization_id: str, currency: str) -> Money: ...

    async def note(self, credit_note_id: str) -> CreditNote | None: ...

    async def notes(
        self, organization_id: str, after: Cursor | None, limit: int
    ) -> list[CreditNote]: ...

    async def count_notes(self, organization_id: str) -> int: ...

    async def movements(self, organization_id: str) -> list[CreditMovement]:
        """Every movement, oldest first: the balance is their sum."""
        ...


class Credit(CreditReader, Protocol):
    async def lock_balance(self, organization_id: str, currency: str) -> Money:
        """The balance, locked for this transaction (created at 0 when there is none)."""
        ...

    async def add_note(self, note: CreditNote) -> None: ...

    async def move(self, movement: CreditMovement) -> Money:
        """Apply a movement to the balance this transaction locked with `lock_balance`, and
        record it; the new balance. Refuses (raises ValueError) a movement that would make the
        balance negative."""
        ...


class Sequences(Protocol):
    async def next(self, name: str) -> int:
        """The next number of a gap-free sequence ("invoice", "credit_note"), allocated inside
        this transaction (UPDATE … RETURNING): a rolled-back finalization burns no number."""
        ...


class TaxRatesReader(Protocol):
    async def get(self, organization_id: str) -> Decimal | None: ...


class TaxRates(TaxRatesReader, Protocol):
    async def set(self, organization_id: str, rate: Decimal, now: datetime) -> None: ...


class RequestsReader(Protocol):
    async def find(self, scope: str, request_id: str) -> StoredRequest | None: ...


class Requests(RequestsReader, Protocol):
    async def add(self, request: StoredRequest) -> bool:
        """False when the (scope, request id) is taken (a concurrent retry won)."""
        ...


class EventsReader(Protocol):
    async def page(
        self,
        organization_id: str,
        types: Collection[str],
        after: Cursor | None,
        limit: int,
    ) -> list[BillingEvent]:
        """Newest first by (created_at, id)."""
        ...


class Events(EventsReader, Protocol):
    async def add(self, events: Sequence[BillingEvent]) -> None: ...


class Outbox(Protocol):
    async def push_entitlements(self, update: EntitlementsUpdate, now: datetime) -> None:
        """Queue the update for the relay to metering, in this transaction."""
        ...


class AuditTrailReader(Protocol):
    async def page(
        self,
        organization_id: str | None,
        entity_id: str | None,
        after: Cursor | None,
        limit: int,
    ) -> list[AuditEntry]:
        """Newest first by (occurred_at, id), of one organisation and/or entity if given."""
        ...


class AuditTrail(AuditTrailReader, Protocol):
    async def record(self, entry: AuditEntry) -> None: ...


class ReadUnitOfWork(Protocol):
    """Reads inside `async with`; storage refuses writes and the repositories offer none."""

    @property
    def price_book(self) -> PriceBookReader: ...
    @property
    def subscriptions(self) -> SubscriptionsReader: ...
    @property
    def invoices(self) -> InvoicesReader: ...
    @property
    def credit(self) -> CreditReader: ...
    @property
    def tax_rates(self) -> TaxRatesReader: ...
    @property
    def requests(self) -> RequestsReader: ...
    @property
    def events(self) -> EventsReader: ...
    @property
    def audit(self) -> AuditTrailReader: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class UnitOfWork(ReadUnitOfWork, Protocol):
    """One transaction over every repository; rolled back unless `commit()` was awaited."""

    @property
    def price_book(self) -> PriceBook: ...
    @property
    def subscriptions(self) -> Subscriptions: ...
    @property
    def invoices(self) -> Invoices: ...
    @property
    def credit(self) -> Credit: ...
    @property
    def tax_rates(self) -> TaxRates: ...
    @property
    def requests(self) -> Requests: ...
    @property
    def events(self) -> Events: ...
    @property
    def sequences(self) -> Sequences: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def audit(self) -> AuditTrail: ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...

    def reader(self) -> ReadUnitOfWork: ...
