"""An in-memory subscriptions store and unit of work for driving the use cases in unit tests.

It keeps the semantics of the SQL repositories (`taskforge_subscriptions.storage`), and
`tests/subscriptions/contract` runs the same cases on it and on both databases:

- It starts as the first migration leaves a database: the default plans and prices (in force
  from 2000-01-01), and the "invoice" and "credit_note" sequences at 0.
- The constraints hold: one live subscription per organisation, one period-end invoice per
  (subscription, period start), unique invoice and credit note numbers, a tax rate in [0, 1], a
  credit balance never below 0. Where the port answers False the fake does too; where the
  database would raise an integrity error the fake raises `UniqueViolation`.
- A unit of work reads what is committed plus its own writes (PostgreSQL's READ COMMITTED), and
  journals its writes; `commit()` replays the journal on the committed state, so overlapping
  units of work keep each other's changes, and one that is not committed leaves nothing.
- The fake never waits on a lock. Where the database would have made a writer wait for another
  transaction and then see its change (two guarded updates of one row, two allocations of one
  sequence), the later commit finds that a replayed write answers differently from what its
  caller was told, and raises `WriteConflict` applying nothing, as a serialization failure does.
- Row locks of subscriptions (`lock`, `lock_for_organization`, `update`) are held until the
  unit of work ends: `lock` answers None for one another open unit holds (SKIP LOCKED).
- Read-only units of work read the committed state and refuse every write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

from taskforge_common.audit import AuditEntry
from taskforge_common.jsonsafe import to_json_safe
from taskforge_common.meters import UsageType
from taskforge_common.money import Money
from taskforge_subscriptions.application.ports import (
    BillingEvent,
    Cursor,
    EntitlementsUpdate,
    PricedFrom,
    StoredRequest,
)
from taskforge_subscriptions.domain.credit import CreditMovement, CreditNote
from taskforge_subscriptions.domain.invoices import (
    OPEN_STATUSES,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
)
from taskforge_subscriptions.domain.plans import DEFAULT_PLANS, MeterPrice, Plan, Tier
from taskforge_subscriptions.domain.subscriptions import (
    PlanSegment,
    Subscription,
    SubscriptionStatus,
)

# The instant the migration's default prices take effect.
DEFAULT_PRICES_FROM = datetime(2000, 1, 1, tzinfo=UTC)
ENTITLEMENTS_TOPIC = "metering.entitlements"


class UniqueViolation(Exception):
    """A write the database refuses with an integrity error (a duplicate key or number)."""


class WriteConflict(Exception):
    """A commit whose writes, replayed on what others committed meanwhile, answer otherwise."""


class ReadOnlyStorageError(Exception):
    """A write through a read-only unit of work, which the databases refuse too."""


@dataclass(frozen=True, slots=True)
class Payment:
    invoice_id: str
    amount: Money
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxRow:
    topic: str
    key: str
    version: int
    payload: Mapping[str, Any]
    created_at: datetime


@dataclass
class State:
    """Every table, as dicts of immutable values (so a copy is a copy of the dicts)."""

    plans: dict[Tier, Plan] = field(default_factory=dict)  # prices live in `prices`
    prices: dict[tuple[Tier, UsageType, datetime], MeterPrice] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    segments: dict[str, tuple[PlanSegment, ...]] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)  # payment_ids in `payments`
    payments: dict[str, Payment] = field(default_factory=dict)
    credit_notes: dict[str, CreditNote] = field(default_factory=dict)
    movements: dict[str, CreditMovement] = field(default_factory=dict)
    balances: dict[tuple[str, str], Money] = field(default_factory=dict)
    tax_rates: dict[str, Decimal] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    requests: dict[tuple[str, str], StoredRequest] = field(default_factory=dict)
    events: dict[str, BillingEvent] = field(default_factory=dict)
    outbox: dict[tuple[str, str, int], OutboxRow] = field(default_factory=dict)
    audit: dict[str, AuditEntry] = field(default_factory=dict)

    def copy(self) -> State:
        return State(**{f.name: dict(getattr(self, f.name)) for f in dataclasses.fields(self)})

    @classmethod
    def seeded(cls) -> State:
        state = cls(sequences={"invoice": 0, "credit_note": 0})
        for tier, plan in DEFAULT_PLANS.items():
            state.plans[tier] = replace(plan, prices={})
            for usage_type, price in plan.prices.items():
                state.prices[(tier, usage_type, DEFAULT_PRICES_FROM)] = price
        return state


def _newest_first(after: Cursor | None, limit: int, rows: list[Any]) -> list[Any]:
    """Rows (with created_at and id) newest first by (created_at, id), older than `after`."""
    rows = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
    if after is not None:
        rows = [r for r in rows if (r.created_at, r.id) < after]
    return rows[:limit]


def _json_object(value: Mapping[str, Any]) -> dict[str, Any]:
    """A payload as a JSON column gives it back (decimals and instants as strings)."""
    safe = to_json_safe(dict(value))
    assert isinstance(safe, dict)
    return safe


# --- The writes: functions of the state, journaled with their arguments and their answer. ----


def _save_plan(state: State, plan: Plan, now: datetime) -> None:
    state.plans[plan.tier] = replace(plan, prices={}, limits=dict(plan.limits))


def _add_price(state: State, tier: Tier, price: MeterPrice, effective_from: datetime) -> bool:
    key = (tier, price.usage_type, effective_from)
    if key in state.prices:
        return False
    state.prices[key] = price
    return True


def _add_subscription(state: State, subscription: Subscription, segment: PlanSegment) -> bool:
    if subscription.id in state.subscriptions:
        raise UniqueViolation(f"subscription {subscription.id}")
    if subscription.is_live and any(
        s.is_live and s.organization_id == subscription.organization_id
        for s in state.subscriptions.values()
    ):
        return False
    state.subscriptions[subscription.id] = subscription
    state.segments[subscription.id] = (segment,)
    return True


def _update_subscription(state: State, subscription: Subscription, expected: int) -> bool:
    stored = state.subscriptions.get(subscription.id)
    if stored is None or stored.version != expected:
        return False
    if subscription.is_live and any(
        s.is_live and s.organization_id == subscription.organization_id and s.id != stored.id
        for s in state.subscriptions.values()
    ):
        raise UniqueViolation(f"a second live subscription of {subscription.organization_id}")
    state.subscriptions[subscription.id] = subscription
    return True


def _change_segment(state: State, subscription_id: str, at: datetime, new: PlanSegment) -> None:
    segments = state.segments.get(subscription_id, ())
    if not segments or segments[-1].end is not None:
        raise ValueError(f"subscription {subscription_id} has no open plan segment")
    state.segments[subscription_id] = (*segments[:-1], replace(segments[-1], end=at), new)


def _check_number(state: State, invoice: Invoice) -> None:
    if invoice.number is not None and any(
        i.number == invoice.number and i.id != invoice.id for i in state.invoices.values()
    ):
        raise UniqueViolation(f"invoice number {invoice.number}")


def _add_invoice(state: State, invoice: Invoice) -> bool:
    if invoice.id in state.invoices:
        raise UniqueViolation(f"invoice {invoice.id}")
    _check_number(state, invoice)
    if invoice.kind is InvoiceKind.PERIOD_END and any(
        i.kind is InvoiceKind.PERIOD_END
        and i.subscription_id == invoice.subscription_id
        and i.period_start == invoice.period_start
        for i in state.invoices.values()
    ):
        return False
    state.invoices[invoice.id] = replace(invoice, payment_ids=())
    return True


def _replace_draft(state: State, invoice: Invoice) -> bool:
    stored = state.invoices.get(invoice.id)
    if stored is None or stored.status is not InvoiceStatus.DRAFT:
        return False
    state.invoices[invoice.id] = replace(stored, lines=invoice.lines, totals=invoice.totals)
    return True


def _transition(state: State, invoice: Invoice, expected: InvoiceStatus) -> bool:
    stored = state.invoices.get(invoice.id)
    if stored is None or stored.status is not expected:
        return False
    _check_number(state, invoice)
    state.invoices[invoice.id] = replace(
        stored,
        status=invoice.status,
        number=invoice.number,
        issued_at=invoice.issued_at,
        due_at=invoice.due_at,
        paid_at=invoice.paid_at,
        totals=invoice.totals,
    )
    return True


def _add_payment(
    state: State, invoice_id: str, payment_id: str, amount: Money, paid_at: datetime
) -> bool:
    invoice = state.invoices.get(invoice_id)
    if invoice is None:
        raise LookupError(f"no invoice {invoice_id}")
    if amount.currency != invoice.currency:
        raise ValueError(f"a {amount.currency} payment of a {invoice.currency} invoice")
    if payment_id in state.payments:
        return False
    state.payments[payment_id] = Payment(invoice_id, amount, paid_at)
    return True


def _lock_balance(state: State, organization_id: str, currency: str) -> Money:
    key = (organization_id, currency)
    return state.balances.setdefault(key, Money.zero(currency))


def _add_note(state: State, note: CreditNote) -> None:
    if note.id in state.credit_notes or any(
        n.number == note.number for n in state.credit_notes.values()
    ):
        raise UniqueViolation(f"credit note {note.id} / {note.number}")
    state.credit_notes[note.id] = note


def _move(state: State, movement: CreditMovement) -> Money:
    currency = movement.amount.currency
    key = (movement.organization_id, currency)
    balance = state.balances.get(key, Money.zero(currency)) + movement.amount
    if balance.amount < 0:
        raise ValueError(f"credit balance would become {balance}")
    if movement.id in state.movements:
        raise UniqueViolation(f"credit movement {movement.id}")
    state.balances[key] = balance
    state.movements[movement.id] = movement
    return balance


def _next(state: State, name: str) -> int:
    if name not in state.sequences:
        raise LookupError(f"no sequence {name!r}")
    state.sequences[name] += 1
    return state.sequences[name]


def _set_tax_rate(state: State, organization_id: str, rate: Decimal, now: datetime) -> None:
    if not 0 <= rate <= 1:
        raise ValueError(f"a tax rate is between 0 and 1, not {rate}")
    state.tax_rates[organization_id] = rate


def _add_request(state: State, request: StoredRequest) -> bool:
    key = (request.scope, request.request_id)
    if key in state.requests:
        return False
    state.requests[key] = replace(request, result=dict(request.result))
    return True


def _add_events(state: State, events: Sequence[BillingEvent]) -> None:
    for event in events:
        if event.id in state.events:
            raise UniqueViolation(f"event {event.id}")
        state.events[event.id] = replace(event, payload=_json_object(event.payload))


def _push_entitlements(state: State, update: EntitlementsUpdate, now: datetime) -> None:
    key = (ENTITLEMENTS_TOPIC, update.organization_id, update.version)
    if key in state.outbox:
        raise UniqueViolation(f"outbox message {key}")
    state.outbox[key] = OutboxRow(*key, _json_object(update.payload), now)


def _record_audit(state: State, entry: AuditEntry) -> None:
    if entry.id in state.audit:
        raise UniqueViolation(f"audit entry {entry.id}")
    state.audit[entry.id] = entry


# --- Units of work. ------------------------------------------------------------------------

_R = TypeVar("_R")
Journal = list[tuple[Callable[..., Any], tuple[Any, ...], Any]]


class _Scope:
    """What the repositories of one unit of work read and write through."""

    def __init__(self, database: InMemoryDatabase, writable: bool) -> None:
        self.database = database
        self.writable = writable
        self.journal: Journal = []
        self.conflicted = False
        self._view: State | None = None
        self._view_of = -1  # the commit count the view was built on

    @property
    def state(self) -> State:
        """Read-only: the committed state. Read-write: the committed state plus this unit's
        writes, rebuilt when another unit has committed since."""
        if not self.writable:
            return self.database.state
        if self._view is None or self._view_of != self.database.commits:
            view = self.database.state.copy()
            if not _replay(self.journal, view):
                self.conflicted = True
            self._view, self._view_of = view, self.database.commits
        return self._view

    def write(self, operation: Callable[..., _R], *args: Any) -> _R:
        if not self.writable:
            raise ReadOnlyStorageError("cannot write through a read-only unit of work")
        result = operation(self.state, *args)
        self.journal.append((operation, args, result))
        return result

    def hold(self, subscription_id: str, *, skip_locked: bool) -> bool:
        """Take the row lock of a subscription; False if another open unit holds it (then
        nothing is taken when `skip_locked`; otherwise the fake, which cannot wait, takes it)."""
        holder = self.database.locks.get(subscription_id)
        if holder is not None and holder is not self:
            return not skip_locked
        self.database.locks[subscription_id] = self
        return True

    def release(self) -> None:
        for key in [k for k, v in self.database.locks.items() if v is self]:
            del self.database.locks[key]


def _replay(journal: Journal, state: State) -> bool:
    """Apply the journal to `state`; False when a write answers otherwise than it did."""
    same = True
    for operation, args, result in journal:
        try:
            same = operation(state, *args) == result and same
        except (ValueError, LookupError, UniqueViolation):
            same = False
    return same


class _Repository:
    def __init__(self, scope: _Scope) -> None:
        self._scope = scope

    @property
    def _state(self) -> State:
        return self._scope.state


class InMemoryPriceBook(_Repository):
    async def plans(self) -> dict[Tier, Plan]:
        latest: dict[Tier, dict[UsageType, tuple[datetime, MeterPrice]]] = {}
        for (tier, usage_type, start), price in self._state.prices.items():
            current = latest.setdefault(tier, {}).get(usage_type)
            if current is None or current[0] < start:
                latest[tier][usage_type] = (start, price)
        return {
            tier: replace(plan, prices={u: p for u, (_, p) in latest.get(tier, {}).items()})
            for tier, plan in self._state.plans.items()
        }

    async def price_history(self, tiers: Collection[Tier]) -> dict[Tier, list[PricedFrom]]:
        history: dict[Tier, list[PricedFrom]] = {tier: [] for tier in tiers}
        rows = sorted(self._state.prices.items(), key=lambda kv: (kv[0][2], kv[0][1]))
        for (tier, _, start), price in rows:
            if tier in history:
                history[tier].append(PricedFrom(start, price))
        return history

    async def save_plan(self, plan: Plan, now: datetime) -> None:
        self._scope.write(_save_plan, plan, now)

    async def add_price(self, tier: Tier, price: MeterPrice, effective_from: datetime) -> bool:
        return self._scope.write(_add_price, tier, price, effective_from)


class InMemorySubscriptions(_Repository):
    async def get(self, subscription_id: str) -> Subscription | None:
        return self._state.subscriptions.get(subscription_id)

    async def get_many(self, subscription_ids: Collection[str]) -> dict[str, Subscription]:
        stored = self._state.subscriptions
        return {i: stored[i] for i in subscription_ids if i in stored}

    async def live_for_organization(self, organization_id: str) -> Subscription | None:
        for subscription in self._state.subscriptions.values():
            if subscription.organization_id == organization_id and subscription.is_live:
                return subscription
        return None

    async def latest_for_organization(self, organization_id: str) -> Subscription | None:
        mine = [
            s for s in self._state.subscriptions.values() if s.organization_id == organization_id
        ]
        if not mine:
            return None
        return max(mine, key=_latest_order)

    async def segments(self, subscription_ids: Collection[str]) -> dict[str, list[PlanSegment]]:
        return {
            i: sorted(self._state.segments[i], key=lambda s: s.start)
            for i in subscription_ids
            if i in self._state.segments
        }

    async def add(self, subscription: Subscription, first_segment: PlanSegment) -> bool:
        return self._scope.write(_add_subscription, subscription, first_segment)

    async def update(self, subscription: Subscription, expected_version: int) -> bool:
        self._scope.hold(subscription.id, skip_locked=False)
        return self._scope.write(_update_subscription, subscription, expected_version)

    async def change_segment(self, subscription_id: str, at: datetime, new: PlanSegment) -> None:
        self._scope.write(_change_segment, subscription_id, at, new)

    async def lock_for_organization(self, organization_id: str) -> Subscription | None:
        subscription = await self.live_for_organization(organization_id)
        if subscription is not None:
            self._scope.hold(subscription.id, skip_locked=False)
        return subscription

    async def due(self, as_of: datetime, limit: int) -> list[Subscription]:
        due = [s for s in self._state.subscriptions.values() if s.is_live]
        due = [s for s in due if s.current_period.end <= as_of]
        due.sort(key=lambda s: (s.current_period.end, s.id))
        return due[:limit]

    async def lock(self, subscription_id: str) -> Subscription | None:
        subscription = self._state.subscriptions.get(subscription_id)
        if subscription is None or not self._scope.hold(subscription_id, skip_locked=True):
            return None
        return subscription


def _latest_order(subscription: Subscription) -> tuple[bool, datetime, datetime, str]:
    """latest_for_organization's choice: the live one, else the last canceled."""
    canceled_at = subscription.canceled_at or subscription.created_at
    return (subscription.is_live, canceled_at, subscription.created_at, subscription.id)


class InMemoryInvoices(_Repository):
    def _with_payments(self, invoice: Invoice) -> Invoice:
        payments = sorted(
            (p.paid_at, payment_id)
            for payment_id, p in self._state.payments.items()
            if p.invoice_id == invoice.id
        )
        return replace(invoice, payment_ids=tuple(payment_id for _, payment_id in payments))

    async def get(self, invoice_id: str) -> Invoice | None:
        invoice = self._state.invoices.get(invoice_id)
        return None if invoice is None else self._with_payments(invoice)

    def _of(self, organization_id: str, status: InvoiceStatus | None) -> list[Invoice]:
        return [
            i
            for i in self._state.invoices.values()
            if i.organization_id == organization_id and status in (None, i.status)
        ]

    async def page(
        self,
        organization_id: str,
        status: InvoiceStatus | None,
        after: Cursor | None,
        limit: int,
    ) -> list[Invoice]:
        page = _newest_first(after, limit, self._of(organization_id, status))
        return [self._with_payments(i) for i in page]

    async def count(self, organization_id: str, status: InvoiceStatus | None) -> int:
        return len(self._of(organization_id, status))

    async def drafts_to_finalize(self, ended_before: datetime, limit: int) -> list[Invoice]:
        drafts = [
            i
            for i in self._state.invoices.values()
            if i.kind is InvoiceKind.PERIOD_END
            and i.status is InvoiceStatus.DRAFT
            and i.period_end <= ended_before
        ]
        drafts.sort(key=lambda i: (i.period_end, i.id))
        return [self._with_payments(i) for i in drafts[:limit]]

    async def past_due(self, as_of: datetime, limit: int) -> list[Invoice]:
        due = [
            i
            for i in self._state.invoices.values()
            if i.status in (InvoiceStatus.SENT, InvoiceStatus.VIEWED)
            and i.due_at is not None
            and i.due_at < as_of
        ]
        due.sort(key=lambda i: (i.due_at or as_of, i.id))
        return [self._with_payments(i) for i in due[:limit]]

    async def oldest_open_due_date(self, subscription_id: str) -> datetime | None:
        dates = [
            i.due_at
            for i in self._state.invoices.values()
            if i.subscription_id == subscription_id
            and i.status in OPEN_STATUSES
            and i.due_at is not None
        ]
        return min(dates, default=None)

    async def subscriptions_overdue_since(self, due_before: datetime, limit: int) -> list[str]:
        """Earliest overdue first, then by id."""
        subscriptions = self._state.subscriptions
        oldest: dict[str, datetime] = {}
        for i in self._state.invoices.values():
            subscription = subscriptions.get(i.subscription_id)
            if (
                i.status in OPEN_STATUSES
                and i.due_at is not None
                and i.due_at < due_before
                and subscription is not None
                and subscription.status is SubscriptionStatus.ACTIVE
            ):
                oldest[i.subscription_id] = min(i.due_at, oldest.get(i.subscription_id, i.due_at))
        return sorted(oldest, key=lambda s: (oldest[s], s))[:limit]

    async def add(self, invoice: Invoice) -> bool:
        return self._scope.write(_add_invoice, invoice)

    async def lock(self, invoice_id: str) -> Invoice | None:
        return await self.get(invoice_id)

    async def replace_draft(self, invoice: Invoice) -> bool:
        return self._scope.write(_replace_draft, invoice)

    async def transition(self, invoice: Invoice, expected: InvoiceStatus) -> bool:
        return self._scope.write(_transition, invoice, expected)

    async def add_payment(
        self, invoice_id: str, payment_id: str, amount: Money, paid_at: datetime
    ) -> bool:
        return self._scope.write(_add_payment, invoice_id, payment_id, amount, paid_at)


class InMemoryCredit(_Repository):
    async def balance(self, organization_id: str, currency: str) -> Money:
        return self._state.balances.get((organization_id, currency), Money.zero(currency))

    async def note(self, credit_note_id: str) -> CreditNote | None:
        return self._state.credit_notes.get(credit_note_id)

    async def notes(
        self, organization_id: str, after: Cursor | None, limit: int
    ) -> list[CreditNote]:
        mine = [
            n for n in self._state.credit_notes.values() if n.organization_id == organization_id
        ]
        return _newest_first(after, limit, mine)

    async def count_notes(self, organization_id: str) -> int:
        notes = self._state.credit_notes.values()
        return sum(1 for n in notes if n.organization_id == organization_id)

    async def movements(self, organization_id: str) -> list[CreditMovement]:
        mine = [m for m in self._state.movements.values() if m.organization_id == organization_id]
        return sorted(mine, key=lambda m: (m.created_at, m.id))

    async def lock_balance(self, organization_id: str, currency: str) -> Money:
        return self._scope.write(_lock_balance, organization_id, currency)

    async def add_note(self, note: CreditNote) -> None:
        self._scope.write(_add_note, note)

    async def move(self, movement: CreditMovement) -> Money:
        return self._scope.write(_move, movement)


class InMemorySequences(_Repository):
    async def next(self, name: str) -> int:
        return self._scope.write(_next, name)


class InMemoryTaxRates(_Repository):
    async def get(self, organization_id: str) -> Decimal | None:
        return self._state.tax_rates.get(organization_id)

    async def set(self, organization_id: str, rate: Decimal, now: datetime) -> None:
        self._scope.write(_set_tax_rate, organization_id, rate, now)


class InMemoryRequests(_Repository):
    async def find(self, scope: str, request_id: str) -> StoredRequest | None:
        return self._state.requests.get((scope, request_id))

    async def add(self, request: StoredRequest) -> bool:
        return self._scope.write(_add_request, request)


class InMemoryEvents(_Repository):
    async def page(
        self,
        organization_id: str,
        types: Collection[str],
        after: Cursor | None,
        limit: int,
    ) -> list[BillingEvent]:
        """Every type when `types` is empty."""
        mine = [
            e
            for e in self._state.events.values()
            if e.organization_id == organization_id and (not types or e.type in types)
        ]
        return _newest_first(after, limit, mine)

    async def add(self, events: Sequence[BillingEvent]) -> None:
        self._scope.write(_add_events, list(events))


class InMemoryOutbox(_Repository):
    async def push_entitlements(self, update: EntitlementsUpdate, now: datetime) -> None:
        self._scope.write(_push_entitlements, update, now)


class InMemoryAuditTrail(_Repository):
    async def page(
        self,
        organization_id: str | None,
        entity_id: str | None,
        after: Cursor | None,
        limit: int,
    ) -> list[AuditEntry]:
        entries = sorted(
            (
                e
                for e in self._state.audit.values()
                if (organization_id is None or e.organization_id == organization_id)
                and (entity_id is None or e.entity_id == entity_id)
            ),
            key=lambda e: (e.occurred_at, e.id),
            reverse=True,
        )
        if after is not None:
            entries = [e for e in entries if (e.occurred_at, e.id) < after]
        return entries[:limit]

    async def record(self, entry: AuditEntry) -> None:
        self._scope.write(_record_audit, entry)


class InMemoryReadUnitOfWork:
    """A read-only unit of work: reads of the committed state; every write is refused."""

    _writable = False

    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database
        self._current: _Scope | None = None

    @property
    def _open(self) -> _Scope:
        assert self._current is not None, "repository used outside `async with`"
        return self._current

    @property
    def price_book(self) -> InMemoryPriceBook:
        return InMemoryPriceBook(self._open)

    @property
    def subscriptions(self) -> InMemorySubscriptions:
        return InMemorySubscriptions(self._open)

    @property
    def invoices(self) -> InMemoryInvoices:
        return InMemoryInvoices(self._open)

    @property
    def credit(self) -> InMemoryCredit:
        return InMemoryCredit(self._open)

    @property
    def tax_rates(self) -> InMemoryTaxRates:
        return InMemoryTaxRates(self._open)

    @property
    def requests(self) -> InMemoryRequests:
        return InMemoryRequests(self._open)

    @property
    def events(self) -> InMemoryEvents:
        return InMemoryEvents(self._open)

    @property
    def audit(self) -> InMemoryAuditTrail:
        return InMemoryAuditTrail(self._open)

    async def __aenter__(self) -> Self:
        self._current = _Scope(self._database, self._writable)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        scope, self._current = self._current, None
        if scope is not None:
            scope.release()  # anything not committed is dropped


class InMemoryUnitOfWork(InMemoryReadUnitOfWork):
    _writable = True

    @property
    def sequences(self) -> InMemorySequences:
        return InMemorySequences(self._open)

    @property
    def outbox(self) -> InMemoryOutbox:
        return InMemoryOutbox(self._open)

    async def commit(self) -> None:
        """Replay this unit's writes on the state as committed now, all or nothing. The fake
        never awaits in between, so no other unit of work runs during a commit."""
        scope = self._open
        live = self._database.state.copy()
        if scope.conflicted or not _replay(scope.journal, live):
            raise WriteConflict("a concurrent unit of work changed what this one wrote")
        self._database.state = live
        self._database.commits += 1
        scope.journal = []


class InMemoryDatabase:
    """The shared state and the factory the use cases take: read-write units of work by
    calling it, read-only ones with `reader()`."""

    def __init__(self) -> None:
        self.state = State.seeded()
        self.commits = 0
        self.locks: dict[str, _Scope] = {}

    def __call__(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self)

    def reader(self) -> InMemoryReadUnitOfWork:
        return InMemoryReadUnitOfWork(self)
