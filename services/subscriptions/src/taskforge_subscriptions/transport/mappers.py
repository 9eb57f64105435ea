"""Protobuf messages to commands and domain values, and domain values to messages. Every field a
caller sends is checked here against SPEC §11's bounds before a use case sees it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.common.v1 import common_pb2
from taskforge.subscriptions.v1 import (
    audit_pb2,
    credit_note_pb2,
    event_pb2,
    invoice_pb2,
    plan_pb2,
    subscription_pb2,
)
from taskforge_common.audit import AuditEntry
from taskforge_common.decimals import canonical, format_decimal, parse_decimal
from taskforge_common.errors import InvalidArgument
from taskforge_common.meters import UsageType
from taskforge_common.money import Money, minor_units
from taskforge_common.protobuf import USAGE_TYPE, ProtoEnum
from taskforge_common.validation import check_key, parse_uuid
from taskforge_subscriptions.application.ports import BillingEvent
from taskforge_subscriptions.domain.credit import CreditNote
from taskforge_subscriptions.domain.invoices import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from taskforge_subscriptions.domain.plans import (
    BillingCycle,
    ChargeModel,
    MeterPrice,
    Plan,
    PriceBand,
    Tier,
)
from taskforge_subscriptions.domain.subscriptions import Subscription, SubscriptionStatus

TIERS = ProtoEnum(common_pb2.Tier, Tier, "TIER_")
CYCLES = ProtoEnum(common_pb2.BillingCycle, BillingCycle, "BILLING_CYCLE_")
INVOICE_STATUSES = ProtoEnum(invoice_pb2.InvoiceStatus, InvoiceStatus, "INVOICE_STATUS_")
INVOICE_KINDS = ProtoEnum(invoice_pb2.InvoiceKind, InvoiceKind, "INVOICE_KIND_")
LINE_KINDS = ProtoEnum(invoice_pb2.LineItemKind, LineKind, "LINE_ITEM_KIND_")
SUBSCRIPTION_STATUSES = ProtoEnum(
    subscription_pb2.SubscriptionStatus, SubscriptionStatus, "SUBSCRIPTION_STATUS_"
)
CHARGE_MODELS = ProtoEnum(plan_pb2.ChargeModel, ChargeModel, "CHARGE_MODEL_")

# Bounds of the decimals operators and callers send (SPEC §11: at most 40 characters each).
MAX_MONTHLY_PRICE = Decimal(10) ** 9
MAX_LIMIT = Decimal(10) ** 15
LIMIT_PLACES = 6
PRICE_PLACES = 12
MAX_LIMITS = 32
MAX_BANDS = 32


def organization_id(value: str, field: str = "organization_id") -> str:
    return parse_uuid(value, field)


def entity_id(value: str) -> str | None:
    """An audited object's id (a UUID, or a tier name for plans); empty: any."""
    if not value:
        return None
    if len(value) > 64 or not value.isprintable():
        raise InvalidArgument("entity_id is 1–64 printable characters", field="entity_id")
    return value


def request_id(value: str) -> str | None:
    """Empty: the call is not made retry-safe."""
    return check_key(value, "request_id") if value else None


def monthly_price(value: str, field: str) -> Decimal | None:
    if not value:
        return None
    return parse_decimal(value, field, max_places=2, max_value=MAX_MONTHLY_PRICE)


def limits(messages: Sequence[common_pb2.Limit], field: str) -> dict[UsageType, Decimal]:
    """A limit per usage type; an empty `max` means unlimited, so it is left out."""
    if len(messages) > MAX_LIMITS:
        raise InvalidArgument(f"at most {MAX_LIMITS} limits", field=field)
    result: dict[UsageType, Decimal] = {}
    seen: set[UsageType] = set()
    for index, limit in enumerate(messages):
        path = f"{field}[{index}]"
        usage_type = USAGE_TYPE.required(limit.usage_type, f"{path}.usage_type")
        if usage_type in seen:
            raise InvalidArgument(f"a second limit for {usage_type}", field=f"{path}.usage_type")
        seen.add(usage_type)
        if limit.max:
            result[usage_type] = parse_decimal(
                limit.max, f"{path}.max", max_places=LIMIT_PLACES, max_value=MAX_LIMIT
            )
    return result


def tax_rate(value: str) -> Decimal:
    return parse_decimal(value, "tax_rate", max_places=4, max_value=Decimal(1))


def decimal_amount(value: str, field: str = "amount") -> Decimal:
    """A payment's amount, in the invoice's currency (so at most 3 decimal places, the most any
    supported currency has; the use case checks it against the amount due exactly)."""
    return parse_decimal(value, field, max_places=3, max_value=MAX_MONTHLY_PRICE * 1000)


def _price(value: str, field: str) -> Decimal:
    return parse_decimal(value, field, max_places=PRICE_PLACES, max_value=MAX_MONTHLY_PRICE)


def meter_price(message: plan_pb2.PlanPrice, field: str) -> MeterPrice:
    usage_type = USAGE_TYPE.required(message.usage_type, f"{field}.usage_type")
    model = CHARGE_MODELS.optional(message.model, f"{field}.model") or ChargeModel.PER_UNIT
    if len(message.bands) > MAX_BANDS:
        raise InvalidArgument(f"at most {MAX_BANDS} bands", field=f"{field}.bands")
    bands = tuple(
        PriceBand(
            up_to=(
                parse_decimal(
                    band.up_to, f"{field}.bands[{i}].up_to", max_places=6, max_value=MAX_LIMIT
                )
                if band.up_to
                else None
            ),
            unit_price=_price(band.unit_price or "0", f"{field}.bands[{i}].unit_price"),
            flat_fee=_price(band.flat_fee or "0", f"{field}.bands[{i}].flat_fee"),
        )
        for i, band in enumerate(message.bands)
    )
    try:
        return MeterPrice(
            usage_type,
            unit_price=_price(message.unit_price or "0", f"{field}.unit_price"),
            model=model,
            bands=bands,
            included=parse_decimal(
                message.included or "0", f"{field}.included", max_places=6, max_value=MAX_LIMIT
            ),
        )
    except ValueError as error:
        raise InvalidArgument(f"{field}: {error}", field=field) from None


def plan_from(message: plan_pb2.Plan, field: str = "plan") -> Plan:
    tier = TIERS.required(message.tier, f"{field}.tier")
    currency = message.currency_code or "USD"
    try:
        minor_units(currency)
    except ValueError:
        raise InvalidArgument(
            f"{field}.currency_code {currency!r} is not a supported currency",
            field=f"{field}.currency_code",
        ) from None
    return Plan(
        tier=tier,
        currency=currency,
        price_per_month=monthly_price(message.price_per_month, f"{field}.price_per_month"),
        limits=limits(message.limits, f"{field}.limits"),
        priority_support=message.priority_support,
        custom_domains=message.custom_domains,
    )


# Domain → messages -------------------------------------------------------------------------


def text(number: Decimal | None) -> str:
    """A decimal on the wire: plain, without trailing fractional zeros ("" for None)."""
    return "" if number is None else format_decimal(canonical(number))


def money_text(value: Money) -> str:
    return str(value.rounded())


def timestamp(instant: datetime | None) -> Timestamp | None:
    if instant is None:
        return None
    value = Timestamp()
    value.FromDatetime(instant)
    return value


def limit_messages(values: Mapping[UsageType, Decimal]) -> list[common_pb2.Limit]:
    return [
        common_pb2.Limit(
            usage_type=USAGE_TYPE.number(usage_type),
            max=text(maximum),
        )
        for usage_type, maximum in values.items()
    ]


def subscription_message(value: Subscription) -> subscription_pb2.Subscription:
    period = value.current_period
    return subscription_pb2.Subscription(
        id=value.id,
        organization_id=value.organization_id,
        tier=TIERS.number(value.tier),
        status=SUBSCRIPTION_STATUSES.number(value.status),
        billing_cycle=CYCLES.number(value.cycle),
        auto_renew=value.auto_renew,
        cancel_at_period_end=value.cancel_at_period_end,
        price_per_month=str(Money(value.price_per_month, value.currency).rounded()),
        currency_code=value.currency,
        limits=limit_messages(value.limits),
        period_anchor=timestamp(value.anchor),
        current_period_start=timestamp(period.start),
        current_period_end=timestamp(period.end),
        created_at=timestamp(value.created_at),
        updated_at=timestamp(value.updated_at),
    )


def _line(value: InvoiceLine, index: int, invoice_id: str) -> invoice_pb2.InvoiceLineItem:
    return invoice_pb2.InvoiceLineItem(
        id=f"{invoice_id}:{index}",
        kind=LINE_KINDS.number(value.kind),
        description=value.description,
        usage_type=(
            USAGE_TYPE.number(value.usage_type)
            if value.usage_type is not None
            else common_pb2.USAGE_TYPE_UNSPECIFIED
        ),
        quantity=text(value.quantity),
        unit_price=text(value.unit_price),
        amount=money_text(value.amount),
        period_start=timestamp(value.period_start),
        period_end=timestamp(value.period_end),
        rated_from=[
            invoice_pb2.RatedUsage(
                start_time=timestamp(window.start),
                end_time=timestamp(window.end),
                quantity=text(window.quantity),
                amount=text(window.amount),
                unit_price=text(window.unit_price),
            )
            for window in value.windows
        ],
    )


def invoice_message(value: Invoice) -> invoice_pb2.Invoice:
    totals = value.totals
    return invoice_pb2.Invoice(
        id=value.id,
        organization_id=value.organization_id,
        subscription_id=value.subscription_id,
        invoice_number=value.number or "",
        kind=INVOICE_KINDS.number(value.kind),
        status=INVOICE_STATUSES.number(value.status),
        issue_date=timestamp(value.issued_at),
        due_date=timestamp(value.due_at),
        period_start=timestamp(value.period_start),
        period_end=timestamp(value.period_end),
        currency_code=value.currency,
        line_items=[_line(line, i, value.id) for i, line in enumerate(value.lines)],
        subtotal=money_text(totals.subtotal),
        tax_rate=text(totals.tax_rate),
        tax_amount=money_text(totals.tax),
        total_amount=money_text(totals.total),
        credit_applied=money_text(totals.credit_applied),
        amount_due=money_text(totals.amount_due),
        paid_at=timestamp(value.paid_at),
    )


def credit_note_message(value: CreditNote) -> credit_note_pb2.CreditNote:
    return credit_note_pb2.CreditNote(
        id=value.id,
        credit_note_number=value.number,
        organization_id=value.organization_id,
        invoice_id=value.invoice_id or "",
        reason=value.reason,
        subtotal=money_text(value.subtotal),
        tax_amount=money_text(value.tax),
        total_amount=money_text(value.total),
        created_at=timestamp(value.created_at),
    )


def _price_message(value: MeterPrice) -> plan_pb2.PlanPrice:
    return plan_pb2.PlanPrice(
        usage_type=USAGE_TYPE.number(value.usage_type),
        unit_price=text(value.unit_price),
        model=CHARGE_MODELS.number(value.model),
        bands=[
            plan_pb2.PriceBand(
                up_to=text(band.up_to),
                unit_price=text(band.unit_price),
                flat_fee=text(band.flat_fee),
            )
            for band in value.bands
        ],
        included=text(value.included),
    )


def plan_message(value: Plan) -> plan_pb2.Plan:
    return plan_pb2.Plan(
        tier=TIERS.number(value.tier),
        price_per_month=(
            ""
            if value.price_per_month is None
            else money_text(Money(value.price_per_month, value.currency))
        ),
        currency_code=value.currency,
        limits=limit_messages(value.limits),
        priority_support=value.priority_support,
        custom_domains=value.custom_domains,
        prices=[_price_message(price) for price in value.prices.values()],
    )


def _json_text(value: object) -> str:
    """A JSON value as text on the wire; empty for None (no snapshot)."""
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def audit_entry_message(value: AuditEntry) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        id=value.id,
        occurred_at=timestamp(value.occurred_at),
        actor=value.actor,
        organization_id=value.organization_id or "",
        action=value.action,
        entity_type=value.entity_type,
        entity_id=value.entity_id,
        before=_json_text(value.before),
        after=_json_text(value.after),
        request_id=value.request_id or "",
    )


def event_message(value: BillingEvent) -> event_pb2.Event:
    return event_pb2.Event(
        id=value.id,
        type=value.type,
        created_at=timestamp(value.created_at),
        organization_id=value.organization_id,
        payload=_json_text(value.payload),
    )
