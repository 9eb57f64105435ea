"""usage records, counters, gauges, entitlements, reservations, outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import taskforge_common.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entitlements",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("billing_cycle", sa.String(length=32), nullable=False),
        sa.Column(
            "period_anchor", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "current_period_start",
            taskforge_common.db.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "current_period_end",
            taskforge_common.db.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column(
            "usage_closed_before",
            taskforge_common.db.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "updated_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_entitlements")),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column(
            "created_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "published_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_events_dedupe_key")),
    )
    op.create_index(
        op.f("ix_outbox_events_published_at_created_at"),
        "outbox_events",
        ["published_at", "created_at"],
        unique=False,
    )
    op.create_table(
        "usage_counters",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("usage_type", sa.String(length=32), nullable=False),
        sa.Column(
            "window_start", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "window_end", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "quantity",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "usage_type", "window_start", name=op.f("pk_usage_counters")
        ),
    )
    op.create_table(
        "usage_gauges",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("usage_type", sa.String(length=32), nullable=False),
        sa.Column(
            "level", taskforge_common.db.types.ExactDecimal(precision=26, scale=6), nullable=False
        ),
        sa.Column("as_of", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "usage_type", name=op.f("pk_usage_gauges")),
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("usage_type", sa.String(length=32), nullable=False),
        sa.Column(
            "quantity",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=False,
        ),
        sa.Column(
            "event_time", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column(
            "recorded_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
        sa.UniqueConstraint(
            "organization_id",
            "idempotency_key",
            name=op.f("uq_usage_records_organization_id_idempotency_key"),
        ),
    )
    op.create_index(
        op.f("ix_usage_records_organization_id_event_time_id"),
        "usage_records",
        ["organization_id", "event_time", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_usage_records_organization_id_usage_type_event_time"),
        "usage_records",
        ["organization_id", "usage_type", "event_time"],
        unique=False,
    )
    op.create_table(
        "usage_reservations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("usage_type", sa.String(length=32), nullable=False),
        sa.Column(
            "quantity",
            taskforge_common.db.types.ExactDecimal(precision=26, scale=6),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "window_start", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "created_at", taskforge_common.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("record_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_reservations")),
        sa.UniqueConstraint(
            "organization_id",
            "idempotency_key",
            name=op.f("uq_usage_reservations_organization_id_idempotency_key"),
        ),
    )
    op.create_index(
        "ix_usage_reservations_live",
        "usage_reservations",
        ["organization_id", "usage_type", "status", "expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_usage_reservations_live", table_name="usage_reservations")
    op.drop_table("usage_reservations")
    op.drop_index(
        op.f("ix_usage_records_organization_id_usage_type_event_time"), table_name="usage_records"
    )
    op.drop_index(
        op.f("ix_usage_records_organization_id_event_time_id"), table_name="usage_records"
    )
    op.drop_table("usage_records")
    op.drop_table("usage_gauges")
    op.drop_table("usage_counters")
    op.drop_index(op.f("ix_outbox_events_published_at_created_at"), table_name="outbox_events")
    op.drop_table("outbox_events")
    op.drop_table("entitlements")
