"""The SQL repositories: one class per port of `application.ports`, on the unit of work's
session, in portable SQLAlchemy Core (PostgreSQL and SQLite alike).

What each guarantees beyond plain reads and writes:

- Uniqueness the port answers with False (a second live subscription, a second period-end
  invoice of a period, a payment or request id seen before) is decided by the database with
  INSERT … ON CONFLICT DO NOTHING on the very index, so the transaction stays usable on
  PostgreSQL and two concurrent writers cannot both win. Other violations (a reused number or
  id) are bugs and raise the database's IntegrityError.
- Guarded writes (`update` by version, `replace_draft`, `transition` by status) are one
  UPDATE … WHERE <guard> RETURNING: False when no row matched.
- Locks are FOR UPDATE (`Invoices.lock`, `lock_for_organization`, the credit balance) and
  FOR UPDATE SKIP LOCKED (`Subscriptions.lock`); SQLite has no row locks, and its `Database`
  runs one transaction at a time instead.
- `Sequences.next` is UPDATE … RETURNING inside the caller's transaction: gap-free, and a
  rolled-back allocation burns nothing. `Credit.move` locks the balance, refuses (ValueError) a
  movement that would make it negative, then writes the balance and the ledger row.
- Decimals read from PostgreSQL's NUMERIC(p, s) come back without the padding zeros of the
  column's scale (money keeps its currency's minor units), as SQLite and the fake return them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from taskforge_common import audit
from taskforge_common.audit import AuditEntry
from taskforge_common.db.engine import ReadOnlyTransaction
from taskforge_common.decimals import canonical
from taskforge_common.jsonsafe import to_json_safe
from taskforge_common.meters import UsageType
from taskforge_common.money import Money, minor_units
from taskforge_common.outbox import add_to_outbox
from taskforge_subscriptions.application.ports import (
    BillingEvent,
    Cursor,
    EntitlementsUpdate,
    PricedFrom,
    StoredRequest,
)
from taskforge_subscriptions.domain.credit import (
    CreditKind,
    CreditMovement,
    CreditMovementKind,
    CreditNote,
)
from taskforge_subscriptions.domain.invoices import (
    OPEN_STATUSES,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Totals,
)
from taskforge_subscriptions.domain.plans import (
    BillingCycle,
    ChargeModel,
    MeterPrice,
    Plan,
    PriceBand,
    Tier,
)
from taskforge_subscriptions.domain.rating import RatedWindow
from taskforge_subscriptions.domain.subscriptions import (
    PlanSegment,
    Subscription,
    SubscriptionStatus,
)
from taskforge_subscriptions.storage import tables as t

ENTITLEMENTS_TOPIC = "metering.entitlements"
CANCELED = SubscriptionStatus.CANCELED.value


# --- Values in and out of rows. -------------------------------------------------------------


def _decimal(value: Decimal) -> Decimal:
    return canonical(value)


def _optional_decimal(value: Decimal | None) -> Decimal | None:
    return None if value is None else canonical(value)


def _money(value: Decimal, currency: str) -> Money:
    """An amount as read, with at least the currency's minor units ("29" → 29.00)."""
    places = minor_units(currency)
    minor = Decimal(1).scaleb(-places)
    quantized = value.quantize(minor)
    return Money(quantized if quantized == value else canonical(value), currency)


def _json_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _limits_json(limits: Mapping[UsageType, Decimal]) -> Any:
    return to_json_safe({usage_type.value: maximum for usage_type, maximum in limits.items()})


def _limits(value: Mapping[str, str]) -> dict[UsageType, Decimal]:
    return {UsageType(usage_type): Decimal(maximum) for usage_type, maximum in value.items()}


def _bands(value: Sequence[Mapping[str, Any]]) -> tuple[PriceBand, ...]:
    return tuple(
        PriceBand(_json_decimal(b["up_to"]), Decimal(b["unit_price"]), Decimal(b["flat_fee"]))
        for b in value
    )


def _windows(value: Sequence[Mapping[str, Any]]) -> tuple[RatedWindow, ...]:
    return tuple(
        RatedWindow(
            usage_type=UsageType(w["usage_type"]),
            start=_instant(w["start"]),
            end=_instant(w["end"]),
            quantity=Decimal(w["quantity"]),
            amount=Decimal(w["amount"]),
            unit_price=_json_decimal(w["unit_price"]),
        )
        for w in value
    )


def _older_than(table: Table, after: Cursor | None) -> ColumnElement[bool] | None:
    """Rows before `after` in newest-first (created_at, id) order, spelled out rather than as a
    row-value comparison so that the instant is bound through the column's type."""
    if after is None:
        return None
    created_at, row_id = after
    return or_(
        table.c.created_at < created_at,
        and_(table.c.created_at == created_at, table.c.id < row_id),
    )


class _Repository:
    def __init__(self, transaction: ReadOnlyTransaction, dialect: str) -> None:
        self._transaction = transaction
        self._dialect = dialect

    @property
    def _session(self) -> AsyncSession:
        return self._transaction.session

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """INSERT with ON CONFLICT clauses, in the database's dialect."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def _rows(self, query: Select[Any]) -> Sequence[Row[Any]]:
        return (await self._session.execute(query)).all()


# --- Price book. -----------------------------------------------------------------------------


def _price(row: Row[Any]) -> MeterPrice:
    return MeterPrice(
        usage_type=UsageType(row.usage_type),
        unit_price=_decimal(row.unit_price),
        model=ChargeModel(row.model),
        bands=_bands(row.bands),
        included=_decimal(row.included),
    )


class SqlPriceBook(_Repository):
    async def plans(self) -> dict[Tier, Plan]:
        limits: dict[str, dict[UsageType, Decimal]] = {}
        for row in await self._rows(select(t.plan_limits)):
            limits.setdefault(row.tier, {})[UsageType(row.usage_type)] = _decimal(row.max)
        # Ascending by instant: the latest price of each meter is the one left in the dict.
        prices: dict[str, dict[UsageType, MeterPrice]] = {}
        for row in await self._rows(
            select(t.meter_prices).order_by(t.meter_prices.c.effective_from)
        ):
            prices.setdefault(row.tier, {})[UsageType(row.usage_type)] = _price(row)
        return {
            Tier(row.tier): Plan(
                tier=Tier(row.tier),
                currency=row.currency,
                price_per_month=(
                    None
                    if row.price_per_month is None
                    else _money(row.price_per_month, row.currency).amount
                ),
                limits=limits.get(row.tier, {}),
                priority_support=row.priority_support,
                custom_domains=row.custom_domains,
                prices=prices.get(row.tier, {}),
            )
            for row in await self._rows(select(t.plans))
        }

    async def price_history(self, tiers: Collection[Tier]) -> dict[Tier, list[PricedFrom]]:
        history: dict[Tier, list[PricedFrom]] = {tier: [] for tier in tiers}
        query = (
            select(t.meter_prices)
            .where(t.meter_prices.c.tier.in_([tier.value for tier in tiers]))
            .order_by(t.meter_prices.c.effective_from, t.meter_prices.c.usage_type)
        )
        for row in await self._rows(query):
            history[Tier(row.tier)].append(PricedFrom(row.effective_from, _price(row)))
        return history

    async def save_plan(self, plan: Plan, now: datetime) -> None:
        values = {
            "currency": plan.currency,
            "price_per_month": plan.price_per_month,
            "priority_support": plan.priority_support,
            "custom_domains": plan.custom_domains,
            "updated_at": now,
        }
        statement = self._insert(t.plans).values(tier=plan.tier.value, **values)
        await self._session.execute(
            statement.on_conflict_do_update(index_elements=["tier"], set_=values)
        )
        await self._session.execute(delete(t.plan_limits).where(t.plan_limits.c.tier == plan.tier))
        if plan.limits:
            await self._session.execute(
                t.plan_limits.insert(),
                [
                    {"tier": plan.tier.value, "usage_type": u.value, "max": maximum}
                    for u, maximum in plan.limits.items()
                ],
            )

    async def add_price(self, tier: Tier, price: MeterPrice, effective_from: datetime) -> bool:
        statement = (
            self._insert(t.meter_prices)
            .values(
                tier=tier.value,
                usage_type=price.usage_type.value,
                effective_from=effective_from,
                model=price.model.value,
                unit_price=price.unit_price,
                bands=to_json_safe(list(price.bands)),
                included=price.included,
            )
            .on_conflict_do_nothing(index_elements=["tier", "usage_type", "effective_from"])
            .returning(t.meter_prices.c.tier)
        )
        return (await self._session.execute(statement)).scalar_one_or_none() is not None


# --- Subscriptions. --------------------------------------------------------------------------


def _subscription_values(subscription: Subscription) -> dict[str, Any]:
    return {
        "organization_id": subscription.organization_id,
        "tier": subscription.tier.value,
        "status": subscription.status.value,
        "cycle": subscription.cycle.value,
        "auto_renew": subscription.auto_renew,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "price_per_month": subscription.price_per_month,
        "currency": subscription.currency,
        "limits": _limits_json(subscription.limits),
        "anchor": subscription.anchor,
        "period_index": subscription.period_index,
        "current_period_end": subscription.current_period.end,
        "created_at": subscription.created_at,
        "updated_at": subscription.updated_at,
        "canceled_at": subscription.canceled_at,
        "usage_closed_before": subscription.usage_closed_before,
        "version": subscription.version,
    }


def _subscription(row: Row[Any]) -> Subscription:
    return Subscription(
        id=row.id,
        organization_id=row.organization_id,
        tier=Tier(row.tier),
        status=SubscriptionStatus(row.status),
        cycle=BillingCycle(row.cycle),
        auto_renew=row.auto_renew,
        cancel_at_period_end=row.cancel_at_period_end,
        price_per_month=_money(row.price_per_month, row.currency).amount,
        currency=row.currency,
        limits=_limits(row.limits),
        anchor=row.anchor,
        period_index=row.period_index,
        created_at=row.created_at,
        updated_at=row.updated_at,
        canceled_at=row.canceled_at,
        usage_closed_before=row.usage_closed_before,
        version=row.version,
    )


def _segment_values(subscription_id: str, position: int, segment: PlanSegment) -> dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "position": position,
        "starts_at": segment.start,
        "ends_at": segment.end,
        "tier": segment.tier.value,
        "price_per_month": segment.price_per_month,
        "limits": _limits_json(segment.limits),
    }


_LIVE = t.subscriptions.c.status != CANCELED


class SqlSubscriptions(_Repository):
    async def _one(self, query: Select[Any]) -> Subscription | None:
        row = (await self._session.execute(query)).first()
        return None if row is None else _subscription(row)

    async def get(self, subscription_id: str) -> Subscription | None:
        return await self._one(
            select(t.subscriptions).where(t.subscriptions.c.id == subscription_id)
        )

    async def get_many(self, subscription_ids: Collection[str]) -> dict[str, Subscription]:
        if not subscription_ids:
            return {}
        query = select(t.subscriptions).where(t.subscriptions.c.id.in_(list(subscription_ids)))
        found = [_subscription(row) for row in await self._rows(query)]
        return {subscription.id: subscription for subscription in found}

    def _live(self, organization_id: str) -> Select[Any]:
        return select(t.subscriptions).where(
            t.subscriptions.c.organization_id == organization_id, _LIVE
        )

    async def live_for_organization(self, organization_id: str) -> Subscription | None:
        return await self._one(self._live(organization_id))

    async def latest_for_organization(self, organization_id: str) -> Subscription | None:
        s = t.subscriptions.c
        return await self._one(
            select(t.subscriptions)
            .where(s.organization_id == organization_id)
            .order_by(
                case((_LIVE, 1), else_=0).desc(),
                func.coalesce(s.canceled_at, s.created_at).desc(),
                s.created_at.desc(),
                s.id.desc(),
            )
            .limit(1)
        )

    async def segments(self, subscription_ids: Collection[str]) -> dict[str, list[PlanSegment]]:
        query = (
            select(t.plan_segments)
            .where(t.plan_segments.c.subscription_id.in_(list(subscription_ids)))
            .order_by(t.plan_segments.c.subscription_id, t.plan_segments.c.position)
        )
        result: dict[str, list[PlanSegment]] = {}
        for row in await self._rows(query):
            result.setdefault(row.subscription_id, []).append(
                PlanSegment(
                    start=row.starts_at,
                    end=row.ends_at,
                    tier=Tier(row.tier),
                    price_per_month=_decimal(row.price_per_month),
                    limits=_limits(row.limits),
                )
            )
        for segments in result.values():
            segments.sort(key=lambda segment: segment.start)
        return result

    async def due(self, as_of: datetime, limit: int) -> list[Subscription]:
        s = t.subscriptions.c
        rows = await self._rows(
            select(t.subscriptions)
            .where(_LIVE, s.current_period_end <= as_of)
            .order_by(s.current_period_end, s.id)
            .limit(limit)
        )
        return [_subscription(row) for row in rows]

    async def add(self, subscription: Subscription, first_segment: PlanSegment) -> bool:
        statement = (
            self._insert(t.subscriptions)
            .values(id=subscription.id, **_subscription_values(subscription))
            .on_conflict_do_nothing(
                index_elements=["organization_id"], index_where=t.LIVE_SUBSCRIPTION
            )
            .returning(t.subscriptions.c.id)
        )
        if (await self._session.execute(statement)).scalar_one_or_none() is None:
            return False
        await self._session.execute(
            t.plan_segments.insert().values(_segment_values(subscription.id, 0, first_segment))
        )
        return True

    async def update(self, subscription: Subscription, expected_version: int) -> bool:
        s = t.subscriptions.c
        statement = (
            update(t.subscriptions)
            .where(s.id == subscription.id, s.version == expected_version)
            .values(_subscription_values(subscription))
            .returning(s.id)
        )
        return (await self._session.execute(statement)).scalar_one_or_none() is not None

    async def change_segment(self, subscription_id: str, at: datetime, new: PlanSegment) -> None:
        p = t.plan_segments.c
        closed = (
            await self._session.execute(
                update(t.plan_segments)
                .where(p.subscription_id == subscription_id, p.ends_at.is_(None))
                .values(ends_at=at)
                .returning(p.position)
            )
        ).scalar_one_or_none()
        if closed is None:
            raise ValueError(f"subscription {subscription_id} has no open plan segment")
        # The open segment is always the last one: the new one follows it.
        await self._session.execute(
            t.plan_segments.insert().values(_segment_values(subscription_id, closed + 1, new))
        )

    async def lock_for_organization(self, organization_id: str) -> Subscription | None:
        return await self._one(self._live(organization_id).with_for_update())

    async def lock(self, subscription_id: str) -> Subscription | None:
        return await self._one(
            select(t.subscriptions)
            .where(t.subscriptions.c.id == subscription_id)
            .with_for_update(skip_locked=True)
        )


# --- Invoices. -------------------------------------------------------------------------------


def _totals_values(totals: Totals) -> dict[str, Any]:
    return {
        "subtotal": totals.subtotal.amount,
        "tax_rate": totals.tax_rate,
        "tax": totals.tax.amount,
        "total": totals.total.amount,
        "credit_applied": totals.credit_applied.amount,
        "amount_due": totals.amount_due.amount,
    }


def _line_values(invoice_id: str, position: int, line: InvoiceLine) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "position": position,
        "kind": line.kind.value,
        "description": line.description,
        "usage_type": None if line.usage_type is None else line.usage_type.value,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "amount": line.amount.amount,
        "period_start": line.period_start,
        "period_end": line.period_end,
        "windows": to_json_safe(list(line.windows)),
    }


def _line(row: Row[Any], currency: str) -> InvoiceLine:
    return InvoiceLine(
        kind=LineKind(row.kind),
        description=row.description,
        amount=_money(row.amount, currency),
        quantity=_decimal(row.quantity),
        unit_price=_optional_decimal(row.unit_price),
        period_start=row.period_start,
        period_end=row.period_end,
        usage_type=None if row.usage_type is None else UsageType(row.usage_type),
        windows=_windows(row.windows),
    )


def _invoice(row: Row[Any], lines: tuple[InvoiceLine, ...], payments: list[str]) -> Invoice:
    currency = row.currency
    return Invoice(
        id=row.id,
        organization_id=row.organization_id,
        subscription_id=row.subscription_id,
        kind=InvoiceKind(row.kind),
        status=InvoiceStatus(row.status),
        currency=currency,
        period_start=row.period_start,
        period_end=row.period_end,
        lines=lines,
        totals=Totals(
            subtotal=_money(row.subtotal, currency),
            tax_rate=_decimal(row.tax_rate),
            tax=_money(row.tax, currency),
            total=_money(row.total, currency),
            credit_applied=_money(row.credit_applied, currency),
            amount_due=_money(row.amount_due, currency),
        ),
        created_at=row.created_at,
        number=row.number,
        issued_at=row.issued_at,
        due_at=row.due_at,
        paid_at=row.paid_at,
        payment_ids=tuple(payments),
    )


_OPEN = [status.value for status in OPEN_STATUSES]


class SqlInvoices(_Repository):
    async def _load(self, query: Select[Any]) -> list[Invoice]:
        """The invoices `query` selects, in its order, with their lines and payments."""
        rows = await self._rows(query)
        if not rows:
            return []
        ids = [row.id for row in rows]
        currencies = {row.id: row.currency for row in rows}
        lines: dict[str, list[InvoiceLine]] = {i: [] for i in ids}
        line_query = (
            select(t.invoice_lines)
            .where(t.invoice_lines.c.invoice_id.in_(ids))
            .order_by(t.invoice_lines.c.invoice_id, t.invoice_lines.c.position)
        )
        for line in await self._rows(line_query):
            lines[line.invoice_id].append(_line(line, currencies[line.invoice_id]))
        payments: dict[str, list[str]] = {i: [] for i in ids}
        payment_query = (
            select(t.invoice_payments.c.invoice_id, t.invoice_payments.c.payment_id)
            .where(t.invoice_payments.c.invoice_id.in_(ids))
            .order_by(t.invoice_payments.c.paid_at, t.invoice_payments.c.payment_id)
        )
        for payment in await self._rows(payment_query):
            payments[payment.invoice_id].append(payment.payment_id)
        return [_invoice(row, tuple(lines[row.id]), payments[row.id]) for row in rows]

    async def _one(self, query: Select[Any]) -> Invoice | None:
        found = await self._load(query)
        return found[0] if found else None

    async def get(self, invoice_id: str) -> Invoice | None:
        return await self._one(select(t.invoices).where(t.invoices.c.id == invoice_id))

    def _of(self, organization_id: str, status: InvoiceStatus | None) -> list[ColumnElement[bool]]:
        conditions = [t.invoices.c.organization_id == organization_id]
        if status is not None:
            conditions.append(t.invoices.c.status == status.value)
        return conditions

    async def page(
        self,
        organization_id: str,
        status: InvoiceStatus | None,
        after: Cursor | None,
        limit: int,
    ) -> list[Invoice]:
        i = t.invoices.c
        query = select(t.invoices).where(*self._of(organization_id, status))
        older = _older_than(t.invoices, after)
        if older is not None:
            query = query.where(older)
        return await self._load(query.order_by(i.created_at.desc(), i.id.desc()).limit(limit))

    async def count(self, organization_id: str, status: InvoiceStatus | None) -> int:
        query = select(func.count()).select_from(t.invoices)
        return (
            await self._session.execute(query.where(*self._of(organization_id, status)))
        ).scalar_one()

    async def drafts_to_finalize(self, ended_before: datetime, limit: int) -> list[Invoice]:
        i = t.invoices.c
        return await self._load(
            select(t.invoices)
            .where(
                i.kind == InvoiceKind.PERIOD_END.value,
                i.status == InvoiceStatus.DRAFT.value,
                i.period_end <= ended_before,
            )
            .order_by(i.period_end, i.id)
            .limit(limit)
        )

    async def past_due(self, as_of: datetime, limit: int) -> list[Invoice]:
        i = t.invoices.c
        unpaid = [InvoiceStatus.SENT.value, InvoiceStatus.VIEWED.value]
        return await self._load(
            select(t.invoices)
            .where(i.status.in_(unpaid), i.due_at < as_of)
            .order_by(i.due_at, i.id)
            .limit(limit)
        )

    async def oldest_open_due_date(self, subscription_id: str) -> datetime | None:
        i = t.invoices.c
        query = select(func.min(i.due_at)).where(
            i.subscription_id == subscription_id, i.status.in_(_OPEN)
        )
        value: datetime | None = (await self._session.execute(query)).scalar_one()
        return value

    async def subscriptions_overdue_since(self, due_before: datetime, limit: int) -> list[str]:
        """Earliest overdue first, then by id."""
        i, s = t.invoices.c, t.subscriptions.c
        oldest = func.min(i.due_at)
        query = (
            select(i.subscription_id)
            .join(t.subscriptions, s.id == i.subscription_id)
            .where(
                s.status == SubscriptionStatus.ACTIVE.value,
                i.status.in_(_OPEN),
                i.due_at < due_before,
            )
            .group_by(i.subscription_id)
            .order_by(oldest, i.subscription_id)
            .limit(limit)
        )
        return list((await self._session.execute(query)).scalars())

    async def add(self, invoice: Invoice) -> bool:
        statement = (
            self._insert(t.invoices)
            .values(
                id=invoice.id,
                organization_id=invoice.organization_id,
                subscription_id=invoice.subscription_id,
                kind=invoice.kind.value,
                status=invoice.status.value,
                currency=invoice.currency,
                period_start=invoice.period_start,
                period_end=invoice.period_end,
                created_at=invoice.created_at,
                number=invoice.number,
                issued_at=invoice.issued_at,
                due_at=invoice.due_at,
                paid_at=invoice.paid_at,
                **_totals_values(invoice.totals),
            )
            .on_conflict_do_nothing(
                index_elements=["subscription_id", "period_start"],
                index_where=t.PERIOD_END_INVOICE,
            )
            .returning(t.invoices.c.id)
        )
        if (await self._session.execute(statement)).scalar_one_or_none() is None:
            return False
        await self._add_lines(invoice)
        return True

    async def _add_lines(self, invoice: Invoice) -> None:
        if invoice.lines:
            await self._session.execute(
                t.invoice_lines.insert(),
                [_line_values(invoice.id, n, line) for n, line in enumerate(invoice.lines)],
            )

    async def lock(self, invoice_id: str) -> Invoice | None:
        return await self._one(
            select(t.invoices).where(t.invoices.c.id == invoice_id).with_for_update()
        )

    async def _guarded(self, invoice_id: str, expected: InvoiceStatus, **values: Any) -> bool:
        i = t.invoices.c
        statement = (
            update(t.invoices)
            .where(i.id == invoice_id, i.status == expected.value)
            .values(**values)
            .returning(i.id)
        )
        return (await self._session.execute(statement)).scalar_one_or_none() is not None

    async def replace_draft(self, invoice: Invoice) -> bool:
        if not await self._guarded(
            invoice.id, InvoiceStatus.DRAFT, **_totals_values(invoice.totals)
        ):
            return False
        await self._session.execute(
            delete(t.invoice_lines).where(t.invoice_lines.c.invoice_id == invoice.id)
        )
        await self._add_lines(invoice)
        return True

    async def transition(self, invoice: Invoice, expected: InvoiceStatus) -> bool:
        return await self._guarded(
            invoice.id,
            expected,
            status=invoice.status.value,
            number=invoice.number,
            issued_at=invoice.issued_at,
            due_at=invoice.due_at,
            paid_at=invoice.paid_at,
            **_totals_values(invoice.totals),
        )

    async def add_payment(
        self, invoice_id: str, payment_id: str, amount: Money, paid_at: datetime
    ) -> bool:
        currency = (
            await self._session.execute(
                select(t.invoices.c.currency).where(t.invoices.c.id == invoice_id)
            )
        ).scalar_one_or_none()
        if currency is None:
            raise LookupError(f"no invoice {invoice_id}")
        if amount.currency != currency:
            raise ValueError(f"a {amount.currency} payment of a {currency} invoice")
        statement = (
            self._insert(t.invoice_payments)
            .values(
                payment_id=payment_id, invoice_id=invoice_id, amount=amount.amount, paid_at=paid_at
            )
            .on_conflict_do_nothing(index_elements=["payment_id"])
            .returning(t.invoice_payments.c.payment_id)
        )
        return (await self._session.execute(statement)).scalar_one_or_none() is not None


# --- Credit. ---------------------------------------------------------------------------------


def _note(row: Row[Any]) -> CreditNote:
    currency = row.currency
    return CreditNote(
        id=row.id,
        number=row.number,
        organization_id=row.organization_id,
        kind=CreditKind(row.kind),
        reason=row.reason,
        subtotal=_money(row.subtotal, currency),
        tax_rate=_decimal(row.tax_rate),
        tax=_money(row.tax, currency),
        total=_money(row.total, currency),
        created_at=row.created_at,
        subscription_id=row.subscription_id,
        invoice_id=row.invoice_id,
    )


def _movement(row: Row[Any]) -> CreditMovement:
    return CreditMovement(
        id=row.id,
        organization_id=row.organization_id,
        kind=CreditMovementKind(row.kind),
        amount=_money(row.amount, row.currency),
        created_at=row.created_at,
        credit_note_id=row.credit_note_id,
        invoice_id=row.invoice_id,
    )


class SqlCredit(_Repository):
    def _balance_query(self, organization_id: str, currency: str) -> Select[Any]:
        b = t.credit_balances.c
        return select(b.balance).where(b.organization_id == organization_id, b.currency == currency)

    async def balance(self, organization_id: str, currency: str) -> Money:
        found = (
            await self._session.execute(self._balance_query(organization_id, currency))
        ).scalar_one_or_none()
        return Money.zero(currency) if found is None else _money(found, currency)

    async def note(self, credit_note_id: str) -> CreditNote | None:
        rows = await self._rows(select(t.credit_notes).where(t.credit_notes.c.id == credit_note_id))
        return _note(rows[0]) if rows else None

    async def notes(
        self, organization_id: str, after: Cursor | None, limit: int
    ) -> list[CreditNote]:
        n = t.credit_notes.c
        query = select(t.credit_notes).where(n.organization_id == organization_id)
        older = _older_than(t.credit_notes, after)
        if older is not None:
            query = query.where(older)
        rows = await self._rows(query.order_by(n.created_at.desc(), n.id.desc()).limit(limit))
        return [_note(row) for row in rows]

    async def count_notes(self, organization_id: str) -> int:
        query = select(func.count()).where(t.credit_notes.c.organization_id == organization_id)
        return (await self._session.execute(query)).scalar_one()

    async def movements(self, organization_id: str) -> list[CreditMovement]:
        m = t.credit_movements.c
        rows = await self._rows(
            select(t.credit_movements)
            .where(m.organization_id == organization_id)
            .order_by(m.created_at, m.id)
        )
        return [_movement(row) for row in rows]

    async def lock_balance(self, organization_id: str, currency: str) -> Money:
        await self._session.execute(
            self._insert(t.credit_balances)
            .values(organization_id=organization_id, currency=currency, balance=Decimal(0))
            .on_conflict_do_nothing(index_elements=["organization_id", "currency"])
        )
        locked = (
            await self._session.execute(
                self._balance_query(organization_id, currency).with_for_update()
            )
        ).scalar_one()
        return _money(locked, currency)

    async def add_note(self, note: CreditNote) -> None:
        await self._session.execute(
            t.credit_notes.insert().values(
                id=note.id,
                number=note.number,
                organization_id=note.organization_id,
                kind=note.kind.value,
                reason=note.reason,
                currency=note.total.currency,
                subtotal=note.subtotal.amount,
                tax_rate=note.tax_rate,
                tax=note.tax.amount,
                total=note.total.amount,
                created_at=note.created_at,
                subscription_id=note.subscription_id,
                invoice_id=note.invoice_id,
            )
        )

    async def move(self, movement: CreditMovement) -> Money:
        currency = movement.amount.currency
        # The caller locked the row with lock_balance in this transaction (the port says so):
        # reading it again takes one statement, locking it again two.
        found = (
            await self._session.execute(self._balance_query(movement.organization_id, currency))
        ).scalar_one_or_none()
        if found is None:
            raise LookupError("lock_balance before moving credit")
        balance = _money(found, currency) + movement.amount
        if balance.amount < 0:
            raise ValueError(f"credit balance would become {balance}")
        b = t.credit_balances.c
        await self._session.execute(
            update(t.credit_balances)
            .where(b.organization_id == movement.organization_id, b.currency == currency)
            .values(balance=balance.amount)
        )
        await self._session.execute(
            t.credit_movements.insert().values(
                id=movement.id,
                organization_id=movement.organization_id,
                kind=movement.kind.value,
                currency=currency,
                amount=movement.amount.amount,
                created_at=movement.created_at,
                credit_note_id=movement.credit_note_id,
                invoice_id=movement.invoice_id,
            )
        )
        return balance


# --- The rest. -------------------------------------------------------------------------------


class SqlSequences(_Repository):
    async def next(self, name: str) -> int:
        s = t.sequences.c
        value = (
            await self._session.execute(
                update(t.sequences)
                .where(s.name == name)
                .values(last_value=s.last_value + 1)
                .returning(s.last_value)
            )
        ).scalar_one_or_none()
        if value is None:
            raise LookupError(f"no sequence {name!r}")
        return int(value)


class SqlTaxRates(_Repository):
    async def get(self, organization_id: str) -> Decimal | None:
        rate = (
            await self._session.execute(
                select(t.tax_rates.c.rate).where(t.tax_rates.c.organization_id == organization_id)
            )
        ).scalar_one_or_none()
        return _optional_decimal(rate)

    async def set(self, organization_id: str, rate: Decimal, now: datetime) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"a tax rate is between 0 and 1, not {rate}")
        statement = self._insert(t.tax_rates).values(
            organization_id=organization_id, rate=rate, updated_at=now
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["organization_id"], set_={"rate": rate, "updated_at": now}
            )
        )


class SqlRequests(_Repository):
    async def find(self, scope: str, request_id: str) -> StoredRequest | None:
        r = t.requests.c
        row = (
            await self._session.execute(
                select(t.requests).where(r.scope == scope, r.request_id == request_id)
            )
        ).first()
        if row is None:
            return None
        return StoredRequest(row.scope, row.request_id, row.fingerprint, row.result, row.created_at)

    async def add(self, request: StoredRequest) -> bool:
        statement = (
            self._insert(t.requests)
            .values(
                scope=request.scope,
                request_id=request.request_id,
                fingerprint=request.fingerprint,
                result=dict(request.result),
                created_at=request.created_at,
            )
            .on_conflict_do_nothing(index_elements=["scope", "request_id"])
            .returning(t.requests.c.scope)
        )
        return (await self._session.execute(statement)).scalar_one_or_none() is not None


class SqlEvents(_Repository):
    async def page(
        self,
        organization_id: str,
        types: Collection[str],
        after: Cursor | None,
        limit: int,
    ) -> list[BillingEvent]:
        """Every type when `types` is empty."""
        e = t.events.c
        query = select(t.events).where(e.organization_id == organization_id)
        if types:
            query = query.where(e.type.in_(list(types)))
        older = _older_than(t.events, after)
        if older is not None:
            query = query.where(older)
        rows = await self._rows(query.order_by(e.created_at.desc(), e.id.desc()).limit(limit))
        return [
            BillingEvent(row.id, row.organization_id, row.type, row.payload, row.created_at)
            for row in rows
        ]

    async def add(self, events: Sequence[BillingEvent]) -> None:
        if events:
            await self._session.execute(t.events.insert(), [_event_values(e) for e in events])


def _event_values(event: BillingEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "organization_id": event.organization_id,
        "type": event.type,
        "payload": to_json_safe(dict(event.payload)),
        "created_at": event.created_at,
    }


class SqlOutbox(_Repository):
    async def push_entitlements(self, update: EntitlementsUpdate, now: datetime) -> None:
        await add_to_outbox(
            self._session,
            t.outbox,
            topic=ENTITLEMENTS_TOPIC,
            key=update.organization_id,
            version=update.version,
            payload=update.payload,
            now=now,
        )


class SqlAuditTrail(_Repository):
    async def page(
        self,
        organization_id: str | None,
        entity_id: str | None,
        after: Cursor | None,
        limit: int,
    ) -> list[AuditEntry]:
        return await audit.list_entries(
            self._session,
            t.audit_log,
            organization_id=organization_id,
            entity_id=entity_id,
            after=after,
            limit=limit,
        )

    async def record(self, entry: AuditEntry) -> None:
        await audit.record(self._session, t.audit_log, entry)
