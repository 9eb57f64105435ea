"""plans and prices, subscriptions and plan segments, invoices with lines and payments, credit
notes, movements and balances, tax rates, sequences, requests, events, outbox, audit trail

Seeds the default price book (SPEC §1, §2) from `DEFAULT_PLANS`, in force from 2000-01-01, and
the invoice and credit note sequences at 0; makes the audit trail append-only.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import taskforge_common.db.types
from taskforge_common.audit import append_only_ddl
from taskforge_common.jsonsafe import to_json_safe
from taskforge_subscriptions.domain.plans import DEFAULT_PLANS

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRICES_FROM = datetime(2000, 1, 1, tzinfo=UTC)
SEEDED_AT = datetime(2026, 12, 1, tzinfo=UTC)
AMOUNT = taskforge_common.db.types.ExactDecimal(precision=26, scale=6)
QUANTITY = taskforge_common.db.types.ExactDecimal(precision=38, scale=12)
INSTANT = taskforge_common.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "occurred_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=100), nullable=False),
        sa.Column("entity_id", sa.String(length=255), nullable=False),
        sa.Column("before", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("after", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_entity", "audit_log", ["entity_id", "occurred_at", "id"], unique=False
    )
    op.create_index(
        "ix_audit_log_organization",
        "audit_log",
        ["organization_id", "occurred_at", "id"],
        unique=False,
    )
    op.create_table(
        "credit_balances",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "balance", taskforge_common.db.types.ExactDecimal(precision=26, scale=6), nullable=False
        ),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_credit_balances_balance_not_negative")),
        sa.PrimaryKeyConstraint("organization_id", "currency", name=op.f("pk_credit_balances")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(
        op.f("ix_events_organization_id_created_at_id"),
        "events",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "available_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "delivered_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("parked_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "lease_until", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("topic", "key", "version", name="uq_outbox_topic_key_version"),
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["available_at"],
        unique=False,
        postgresql_where=sa.text("delivered_at IS NULL AND parked_at IS NULL"),
        sqlite_where=sa.text("delivered_at IS NULL AND parked_at IS NULL"),
    )
    op.create_table(
        "plans",
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "price_per_month",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=True,
        ),
        sa.Column("priority_support", sa.Boolean(), nullable=False),
        sa.Column("custom_domains", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint(
            "tier IN ('starter', 'pro', 'enterprise', 'custom')", name=op.f("ck_plans_tier")
        ),
        sa.CheckConstraint("price_per_month >= 0", name=op.f("ck_plans_price_not_negative")),
        sa.PrimaryKeyConstraint("tier", name=op.f("pk_plans")),
    )
    op.create_table(
        "requests",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("scope", "request_id", name=op.f("pk_requests")),
    )
    op.create_table(
        "sequences",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("last_value >= 0", name=op.f("ck_sequences_last_value_not_negative")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sequences")),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("cycle", sa.String(length=32), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column(
            "price_per_month",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=False,
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("anchor", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_index", sa.Integer(), nullable=False),
        sa.Column(
            "current_period_end",
            taskforge_common.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "created_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "canceled_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "usage_closed_before",
            taskforge_common.db.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "cycle IN ('monthly', 'quarterly', 'annually')", name=op.f("ck_subscriptions_cycle")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'past_due', 'canceled')", name=op.f("ck_subscriptions_status")
        ),
        sa.CheckConstraint(
            "tier IN ('starter', 'pro', 'enterprise', 'custom')", name=op.f("ck_subscriptions_tier")
        ),
        sa.CheckConstraint(
            "period_index >= 0 AND version >= 1", name=op.f("ck_subscriptions_counters")
        ),
        sa.CheckConstraint(
            "price_per_month >= 0", name=op.f("ck_subscriptions_price_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index(
        "ix_subscriptions_due",
        "subscriptions",
        ["current_period_end", "id"],
        unique=False,
        postgresql_where=sa.text("status <> 'canceled'"),
        sqlite_where=sa.text("status <> 'canceled'"),
    )
    op.create_index(
        op.f("ix_subscriptions_organization_id_created_at"),
        "subscriptions",
        ["organization_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "uq_subscriptions_live_organization",
        "subscriptions",
        ["organization_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'canceled'"),
        sqlite_where=sa.text("status <> 'canceled'"),
    )
    op.create_table(
        "tax_rates",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column(
            "rate", taskforge_common.db.types.ExactDecimal(precision=12, scale=8), nullable=False
        ),
        sa.Column(
            "updated_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint("rate >= 0 AND rate <= 1", name=op.f("ck_tax_rates_rate")),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_tax_rates")),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "period_start", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "period_end", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "subtotal",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=False,
        ),
        sa.Column(
            "tax_rate",
            taskforge_common.db.types.ExactDecimal(precision=12, scale=8),
            nullable=False,
        ),
        sa.Column(
            "tax", taskforge_common.db.types.ExactDecimal(precision=26, scale=6), nullable=False
        ),
        sa.Column(
            "total", taskforge_common.db.types.ExactDecimal(precision=26, scale=6), nullable=False
        ),
        sa.Column(
            "credit_applied",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=False,
        ),
        sa.Column(
            "amount_due",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=False,
        ),
        sa.Column(
            "created_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("issued_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paid_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('subscription_start', 'period_end', 'proration')",
            name=op.f("ck_invoices_kind"),
        ),
        sa.CheckConstraint(
            "status = 'draft' OR number IS NOT NULL", name=op.f("ck_invoices_final_numbered")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'sent', 'viewed', 'paid', 'overdue', 'cancelled', 'void',"
            " 'refunded')",
            name=op.f("ck_invoices_status"),
        ),
        sa.CheckConstraint(
            "subtotal >= 0 AND tax >= 0 AND total >= 0 AND credit_applied >= 0 AND amount_due >= 0",
            name=op.f("ck_invoices_amounts_not_negative"),
        ),
        sa.CheckConstraint("tax_rate >= 0 AND tax_rate <= 1", name=op.f("ck_invoices_tax_rate")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_invoices_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
    )
    op.create_index(
        op.f("ix_invoices_organization_id_created_at_id"),
        "invoices",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_invoices_status_due_at"), "invoices", ["status", "due_at"], unique=False
    )
    op.create_index(
        op.f("ix_invoices_status_period_end"), "invoices", ["status", "period_end"], unique=False
    )
    op.create_index(
        "uq_invoices_period_end",
        "invoices",
        ["subscription_id", "period_start"],
        unique=True,
        postgresql_where=sa.text("kind = 'period_end'"),
        sqlite_where=sa.text("kind = 'period_end'"),
    )
    op.create_table(
        "meter_prices",
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("usage_type", sa.String(length=32), nullable=False),
        sa.Column(
            "effective_from", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column(
            "unit_price",
            taskforge_common.db.types.ExactDecimal(precision=38, scale=12),
            nullable=False,
        ),
        sa.Column("bands", sa.JSON(), nullable=False),
        sa.Column(
            "included",
            taskforge_common.db.types.ExactDecimal(precision=38, scale=12),
            nullable=False,
        ),
        sa.CheckConstraint(
            "model IN ('per_unit', 'graduated', 'volume')", name=op.f("ck_meter_prices_model")
        ),
        sa.CheckConstraint(
            "unit_price >= 0 AND included >= 0", name=op.f("ck_meter_prices_not_negative")
        ),
        sa.ForeignKeyConstraint(["tier"], ["plans.tier"], name=op.f("fk_meter_prices_tier_plans")),
        sa.PrimaryKeyConstraint(
            "tier", "usage_type", "effective_from", name=op.f("pk_meter_prices")
        ),
    )
    op.create_table(
        "plan_limits",
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("usage_type", sa.String(length=32), nullable=False),
        sa.Column(
            "max", taskforge_common.db.types.ExactDecimal(precision=38, scale=12), nullable=False
        ),
        sa.CheckConstraint("max >= 0", name=op.f("ck_plan_limits_max_not_negative")),
        sa.ForeignKeyConstraint(["tier"], ["plans.tier"], name=op.f("fk_plan_limits_tier_plans")),
        sa.PrimaryKeyConstraint("tier", "usage_type", name=op.f("pk_plan_limits")),
    )
    op.create_table(
        "plan_segments",
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "starts_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("ends_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column(
            "price_per_month",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=False,
        ),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "tier IN ('starter', 'pro', 'enterprise', 'custom')", name=op.f("ck_plan_segments_tier")
        ),
        sa.CheckConstraint(
            "price_per_month >= 0", name=op.f("ck_plan_segments_price_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_plan_segments_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("subscription_id", "position", name=op.f("pk_plan_segments")),
    )
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "subtotal",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=False,
        ),
        sa.Column(
            "tax_rate",
            taskforge_common.db.types.ExactDecimal(precision=12, scale=8),
            nullable=False,
        ),
        sa.Column(
            "tax", taskforge_common.db.types.ExactDecimal(precision=26, scale=6), nullable=False
        ),
        sa.Column(
            "total", taskforge_common.db.types.ExactDecimal(precision=26, scale=6), nullable=False
        ),
        sa.Column(
            "created_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("subscription_id", sa.String(length=36), nullable=True),
        sa.Column("invoice_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "kind IN ('downgrade', 'cancellation', 'refund')", name=op.f("ck_credit_notes_kind")
        ),
        sa.CheckConstraint(
            "subtotal >= 0 AND tax >= 0 AND total >= 0",
            name=op.f("ck_credit_notes_amounts_not_negative"),
        ),
        sa.CheckConstraint(
            "tax_rate >= 0 AND tax_rate <= 1", name=op.f("ck_credit_notes_tax_rate")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_credit_notes_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_credit_notes_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notes")),
        sa.UniqueConstraint("number", name=op.f("uq_credit_notes_number")),
    )
    op.create_index(
        op.f("ix_credit_notes_organization_id_created_at_id"),
        "credit_notes",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "invoice_lines",
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("usage_type", sa.String(length=32), nullable=True),
        sa.Column(
            "quantity",
            taskforge_common.db.types.ExactDecimal(precision=38, scale=12),
            nullable=False,
        ),
        sa.Column(
            "unit_price",
            taskforge_common.db.types.ExactDecimal(precision=38, scale=12),
            nullable=True,
        ),
        sa.Column(
            "amount", taskforge_common.db.types.ExactDecimal(precision=26, scale=6), nullable=False
        ),
        sa.Column(
            "period_start", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "period_end", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("windows", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('fee', 'usage', 'proration')", name=op.f("ck_invoice_lines_kind")
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_invoice_lines_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("invoice_id", "position", name=op.f("pk_invoice_lines")),
    )
    op.create_table(
        "invoice_payments",
        sa.Column("payment_id", sa.String(length=255), nullable=False),
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column(
            "amount", taskforge_common.db.types.ExactDecimal(precision=26, scale=6), nullable=False
        ),
        sa.Column("paid_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_invoice_payments_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_payments_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_invoice_payments")),
    )
    op.create_index(
        op.f("ix_invoice_payments_invoice_id_paid_at"),
        "invoice_payments",
        ["invoice_id", "paid_at"],
        unique=False,
    )
    op.create_table(
        "credit_movements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "amount", taskforge_common.db.types.ExactDecimal(precision=26, scale=6), nullable=False
        ),
        sa.Column(
            "created_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("credit_note_id", sa.String(length=36), nullable=True),
        sa.Column("invoice_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "kind IN ('issued', 'applied', 'restored')", name=op.f("ck_credit_movements_kind")
        ),
        sa.ForeignKeyConstraint(
            ["credit_note_id"],
            ["credit_notes.id"],
            name=op.f("fk_credit_movements_credit_note_id_credit_notes"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_credit_movements_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_movements")),
    )
    op.create_index(
        op.f("ix_credit_movements_organization_id_created_at_id"),
        "credit_movements",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    for statement in append_only_ddl("audit_log", op.get_bind().dialect.name):
        op.execute(statement)
    seed_price_book()
    op.bulk_insert(
        sa.table("sequences", sa.column("name", sa.String), sa.column("last_value", sa.BigInteger)),
        [{"name": "invoice", "last_value": 0}, {"name": "credit_note", "last_value": 0}],
    )


def seed_price_book() -> None:
    plans = sa.table(
        "plans",
        sa.column("tier", sa.String),
        sa.column("currency", sa.String),
        sa.column("price_per_month", AMOUNT),
        sa.column("priority_support", sa.Boolean),
        sa.column("custom_domains", sa.Boolean),
        sa.column("updated_at", INSTANT),
    )
    limits = sa.table(
        "plan_limits",
        sa.column("tier", sa.String),
        sa.column("usage_type", sa.String),
        sa.column("max", QUANTITY),
    )
    prices = sa.table(
        "meter_prices",
        sa.column("tier", sa.String),
        sa.column("usage_type", sa.String),
        sa.column("effective_from", INSTANT),
        sa.column("model", sa.String),
        sa.column("unit_price", QUANTITY),
        sa.column("bands", sa.JSON),
        sa.column("included", QUANTITY),
    )
    plan_rows, limit_rows, price_rows = [], [], []
    for tier, plan in DEFAULT_PLANS.items():
        plan_rows.append(
            {
                "tier": tier.value,
                "currency": plan.currency,
                "price_per_month": plan.price_per_month,
                "priority_support": plan.priority_support,
                "custom_domains": plan.custom_domains,
                "updated_at": SEEDED_AT,
            }
        )
        for usage_type, maximum in plan.limits.items():
            limit_rows.append({"tier": tier.value, "usage_type": usage_type.value, "max": maximum})
        for usage_type, price in plan.prices.items():
            price_rows.append(
                {
                    "tier": tier.value,
                    "usage_type": usage_type.value,
                    "effective_from": PRICES_FROM,
                    "model": price.model.value,
                    "unit_price": price.unit_price,
                    "bands": to_json_safe(list(price.bands)),
                    "included": price.included,
                }
            )
    op.bulk_insert(plans, plan_rows)
    op.bulk_insert(limits, limit_rows)
    op.bulk_insert(prices, price_rows)


def downgrade() -> None:
    op.drop_index(
        op.f("ix_credit_movements_organization_id_created_at_id"), table_name="credit_movements"
    )
    op.drop_table("credit_movements")
    op.drop_index(op.f("ix_invoice_payments_invoice_id_paid_at"), table_name="invoice_payments")
    op.drop_table("invoice_payments")
    op.drop_table("invoice_lines")
    op.drop_index(op.f("ix_credit_notes_organization_id_created_at_id"), table_name="credit_notes")
    op.drop_table("credit_notes")
    op.drop_table("plan_segments")
    op.drop_table("plan_limits")
    op.drop_table("meter_prices")
    op.drop_index(
        "uq_invoices_period_end",
        table_name="invoices",
        postgresql_where=sa.text("kind = 'period_end'"),
        sqlite_where=sa.text("kind = 'period_end'"),
    )
    op.drop_index(op.f("ix_invoices_status_period_end"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_status_due_at"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_organization_id_created_at_id"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_table("tax_rates")
    op.drop_index(
        "uq_subscriptions_live_organization",
        table_name="subscriptions",
        postgresql_where=sa.text("status <> 'canceled'"),
        sqlite_where=sa.text("status <> 'canceled'"),
    )
    op.drop_index(op.f("ix_subscriptions_organization_id_created_at"), table_name="subscriptions")
    op.drop_index(
        "ix_subscriptions_due",
        table_name="subscriptions",
        postgresql_where=sa.text("status <> 'canceled'"),
        sqlite_where=sa.text("status <> 'canceled'"),
    )
    op.drop_table("subscriptions")
    op.drop_table("sequences")
    op.drop_table("requests")
    op.drop_table("plans")
    op.drop_index(
        "ix_outbox_due",
        table_name="outbox",
        postgresql_where=sa.text("delivered_at IS NULL AND parked_at IS NULL"),
        sqlite_where=sa.text("delivered_at IS NULL AND parked_at IS NULL"),
    )
    op.drop_table("outbox")
    op.drop_index(op.f("ix_events_organization_id_created_at_id"), table_name="events")
    op.drop_table("events")
    op.drop_table("credit_balances")
    op.drop_index("ix_audit_log_organization", table_name="audit_log")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_table("audit_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_refuse_change()")
