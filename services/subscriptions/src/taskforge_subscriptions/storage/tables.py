"""The subscriptions schema: SQLAlchemy Core tables, mapped to the domain's frozen dataclasses in
the repositories.

Money is ExactDecimal(26, 6) (rounded amounts, in the row's currency), quantities, unit prices
and limits ExactDecimal(38, 12), tax rates ExactDecimal(12, 8); instants are UTC. Structured
values (limits, price bands, rated windows, payloads) are JSON with decimals and instants as
strings (`taskforge_common.jsonsafe`). The rules the database enforces itself:

- plans, plan_limits, meter_prices: the price book. A price takes effect at `effective_from`;
  earlier ones stay as history (one per tier, meter and instant: the primary key).
- subscriptions: at most one live (not canceled) subscription per organisation, by a partial
  unique index; `current_period_end` is stored for the billing run's due query; `version` for
  optimistic concurrency.
- plan_segments: which tier and price were in force when, `position` in time order.
- invoices (+ invoice_lines, invoice_payments): numbers unique; exactly one period-end invoice
  per (subscription, period start), by a partial unique index (SPEC §4); a payment id applies
  once (its primary key).
- credit_notes (numbers unique), credit_movements (the credit ledger) and credit_balances (the
  running balance per organisation and currency, never below 0).
- tax_rates (in [0, 1]), sequences (gap-free document numbers), requests (idempotent retries by
  (scope, request id)), events (SPEC §8, paged per organisation), the generic outbox and the
  append-only audit trail (whose UPDATE and DELETE the migration's triggers refuse).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from taskforge_common.audit import audit_table
from taskforge_common.db.base import new_metadata
from taskforge_common.db.types import ExactDecimal, UTCDateTime
from taskforge_common.outbox import outbox_table
from taskforge_subscriptions.domain.credit import CreditKind, CreditMovementKind
from taskforge_subscriptions.domain.invoices import InvoiceKind, InvoiceStatus, LineKind
from taskforge_subscriptions.domain.plans import BillingCycle, ChargeModel, Tier
from taskforge_subscriptions.domain.subscriptions import SubscriptionStatus

metadata = new_metadata()

ID = String(36)
ORG = String(36)
ENUM = String(32)
CURRENCY = String(3)


def amount(name: str, *, nullable: bool = False) -> Column[object]:
    """A money amount in the row's currency."""
    return Column(name, ExactDecimal(26, 6), nullable=nullable)


def quantity(name: str, *, nullable: bool = False) -> Column[object]:
    """A quantity, unit price or limit."""
    return Column(name, ExactDecimal(38, 12), nullable=nullable)


def instant(name: str, *, nullable: bool = False) -> Column[object]:
    return Column(name, UTCDateTime(), nullable=nullable)


def one_of(column: str, values: Iterable[Enum]) -> str:
    """`column IN (...)` over an enum's values, for a CHECK constraint."""
    listed = ", ".join(f"'{value.value}'" for value in values)
    return f"{column} IN ({listed})"


def check(condition: str, name: str) -> CheckConstraint:
    return CheckConstraint(condition, name=name)


LIVE_SUBSCRIPTION = text("status <> 'canceled'")
PERIOD_END_INVOICE = text("kind = 'period_end'")

plans = Table(
    "plans",
    metadata,
    Column("tier", ENUM, primary_key=True),
    Column("currency", CURRENCY, nullable=False),
    # None for custom: set per subscription by an operator.
    amount("price_per_month", nullable=True),
    Column("priority_support", Boolean, nullable=False),
    Column("custom_domains", Boolean, nullable=False),
    instant("updated_at"),
    check(one_of("tier", Tier), "tier"),
    check("price_per_month >= 0", "price_not_negative"),
)

# A usage type without a row is unlimited.
plan_limits = Table(
    "plan_limits",
    metadata,
    Column("tier", ENUM, ForeignKey("plans.tier"), primary_key=True),
    Column("usage_type", ENUM, primary_key=True),
    quantity("max"),
    check("max >= 0", "max_not_negative"),
)

meter_prices = Table(
    "meter_prices",
    metadata,
    Column("tier", ENUM, ForeignKey("plans.tier"), primary_key=True),
    Column("usage_type", ENUM, primary_key=True),
    Column("effective_from", UTCDateTime(), primary_key=True),
    Column("model", ENUM, nullable=False),
    quantity("unit_price"),
    # [{"up_to": "1000" | null, "unit_price": "0.001", "flat_fee": "0"}, …]
    Column("bands", JSON, nullable=False),
    quantity("included"),
    check(one_of("model", ChargeModel), "model"),
    check("unit_price >= 0 AND included >= 0", "not_negative"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ORG, nullable=False),
    Column("tier", ENUM, nullable=False),
    Column("status", ENUM, nullable=False),
    Column("cycle", ENUM, nullable=False),
    Column("auto_renew", Boolean, nullable=False),
    Column("cancel_at_period_end", Boolean, nullable=False),
    amount("price_per_month"),
    Column("currency", CURRENCY, nullable=False),
    # {usage_type: "max"}
    Column("limits", JSON, nullable=False),
    instant("anchor"),
    Column("period_index", Integer, nullable=False),
    # The end of period `period_index`, derived from the anchor: what the due query reads.
    instant("current_period_end"),
    instant("created_at"),
    instant("updated_at"),
    instant("canceled_at", nullable=True),
    instant("usage_closed_before", nullable=True),
    Column("version", BigInteger, nullable=False),
    check(one_of("tier", Tier), "tier"),
    check(one_of("status", SubscriptionStatus), "status"),
    check(one_of("cycle", BillingCycle), "cycle"),
    check("price_per_month >= 0", "price_not_negative"),
    check("period_index >= 0 AND version >= 1", "counters"),
)
# One organisation has at most one non-canceled subscription (SPEC §1).
Index(
    "uq_subscriptions_live_organization",
    subscriptions.c.organization_id,
    unique=True,
    postgresql_where=LIVE_SUBSCRIPTION,
    sqlite_where=LIVE_SUBSCRIPTION,
)
Index(
    "ix_subscriptions_due",
    subscriptions.c.current_period_end,
    subscriptions.c.id,
    postgresql_where=LIVE_SUBSCRIPTION,
    sqlite_where=LIVE_SUBSCRIPTION,
)
Index(None, subscriptions.c.organization_id, subscriptions.c.created_at)

plan_segments = Table(
    "plan_segments",
    metadata,
    Column("subscription_id", ID, ForeignKey("subscriptions.id"), primary_key=True),
    # 0, 1, 2… in time order (two changes at one instant leave an empty segment between).
    Column("position", Integer, primary_key=True),
    instant("starts_at"),
    instant("ends_at", nullable=True),  # None: still on it
    Column("tier", ENUM, nullable=False),
    amount("price_per_month"),
    Column("limits", JSON, nullable=False),
    check(one_of("tier", Tier), "tier"),
    check("price_per_month >= 0", "price_not_negative"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ORG, nullable=False),
    Column("subscription_id", ID, ForeignKey("subscriptions.id"), nullable=False),
    Column("kind", ENUM, nullable=False),
    Column("status", ENUM, nullable=False),
    Column("currency", CURRENCY, nullable=False),
    instant("period_start"),
    instant("period_end"),
    amount("subtotal"),
    Column("tax_rate", ExactDecimal(12, 8), nullable=False),
    amount("tax"),
    amount("total"),
    amount("credit_applied"),
    amount("amount_due"),
    instant("created_at"),
    Column("number", String(32), nullable=True, unique=True),
    instant("issued_at", nullable=True),
    instant("due_at", nullable=True),
    instant("paid_at", nullable=True),
    check(one_of("kind", InvoiceKind), "kind"),
    check(one_of("status", InvoiceStatus), "status"),
    check(
        "subtotal >= 0 AND tax >= 0 AND total >= 0 AND credit_applied >= 0 AND amount_due >= 0",
        "amounts_not_negative",
    ),
    check("tax_rate >= 0 AND tax_rate <= 1", "tax_rate"),
    check("status = 'draft' OR number IS NOT NULL", "final_numbered"),
)
# Exactly one period-end invoice per (subscription, period) (SPEC §4).
Index(
    "uq_invoices_period_end",
    invoices.c.subscription_id,
    invoices.c.period_start,
    unique=True,
    postgresql_where=PERIOD_END_INVOICE,
    sqlite_where=PERIOD_END_INVOICE,
)
Index(None, invoices.c.organization_id, invoices.c.created_at, invoices.c.id)
Index(None, invoices.c.status, invoices.c.period_end)
Index(None, invoices.c.status, invoices.c.due_at)

# The ledger debits an invoice was built from, in order.
invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("invoice_id", ID, ForeignKey("invoices.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("kind", ENUM, nullable=False),
    Column("description", Text, nullable=False),
    Column("usage_type", ENUM, nullable=True),
    quantity("quantity"),
    quantity("unit_price", nullable=True),
    amount("amount"),
    instant("period_start"),
    instant("period_end"),
    # [{"usage_type", "start", "end", "quantity", "amount", "unit_price"}] as strings.
    Column("windows", JSON, nullable=False),
    check(one_of("kind", LineKind), "kind"),
    check("amount >= 0", "amount_not_negative"),
)

invoice_payments = Table(
    "invoice_payments",
    metadata,
    Column("payment_id", String(255), primary_key=True),
    Column("invoice_id", ID, ForeignKey("invoices.id"), nullable=False),
    amount("amount"),
    instant("paid_at"),
    Index(None, "invoice_id", "paid_at"),
    check("amount >= 0", "amount_not_negative"),
)

credit_notes = Table(
    "credit_notes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("organization_id", ORG, nullable=False),
    Column("kind", ENUM, nullable=False),
    Column("reason", Text, nullable=False),
    Column("currency", CURRENCY, nullable=False),
    amount("subtotal"),
    Column("tax_rate", ExactDecimal(12, 8), nullable=False),
    amount("tax"),
    amount("total"),
    instant("created_at"),
    Column("subscription_id", ID, ForeignKey("subscriptions.id"), nullable=True),
    Column("invoice_id", ID, ForeignKey("invoices.id"), nullable=True),
    Index(None, "organization_id", "created_at", "id"),
    check(one_of("kind", CreditKind), "kind"),
    check("subtotal >= 0 AND tax >= 0 AND total >= 0", "amounts_not_negative"),
    check("tax_rate >= 0 AND tax_rate <= 1", "tax_rate"),
)

# Every change of a credit balance: + issued or restored, − applied. The balance is their sum.
credit_movements = Table(
    "credit_movements",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ORG, nullable=False),
    Column("kind", ENUM, nullable=False),
    Column("currency", CURRENCY, nullable=False),
    amount("amount"),
    instant("created_at"),
    Column("credit_note_id", ID, ForeignKey("credit_notes.id"), nullable=True),
    Column("invoice_id", ID, ForeignKey("invoices.id"), nullable=True),
    Index(None, "organization_id", "created_at", "id"),
    check(one_of("kind", CreditMovementKind), "kind"),
)

credit_balances = Table(
    "credit_balances",
    metadata,
    Column("organization_id", ORG, primary_key=True),
    Column("currency", CURRENCY, primary_key=True),
    amount("balance"),
    check("balance >= 0", "balance_not_negative"),
)

tax_rates = Table(
    "tax_rates",
    metadata,
    Column("organization_id", ORG, primary_key=True),
    Column("rate", ExactDecimal(12, 8), nullable=False),
    instant("updated_at"),
    check("rate >= 0 AND rate <= 1", "rate"),
)

# Gap-free numbering: the migration seeds 'invoice' and 'credit_note' at 0.
sequences = Table(
    "sequences",
    metadata,
    Column("name", ENUM, primary_key=True),
    Column("last_value", BigInteger, nullable=False),
    check("last_value >= 0", "last_value_not_negative"),
)

requests = Table(
    "requests",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("request_id", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("result", JSON, nullable=False),
    instant("created_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ORG, nullable=False),
    Column("type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    instant("created_at"),
    Index(None, "organization_id", "created_at", "id"),
)

outbox = outbox_table(metadata)
audit_log = audit_table(metadata)
