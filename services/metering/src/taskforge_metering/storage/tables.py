"""The metering schema. Quantities are ExactDecimal (NUMERIC(26, 6)); instants are UTC.

Core tables rather than ORM classes: ingest works in bulk statements, and rows map to the frozen
domain dataclasses in the repositories.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, String, Table, UniqueConstraint

from taskforge_common.db.base import new_metadata
from taskforge_common.db.types import ExactDecimal, UTCDateTime

metadata = new_metadata()


def quantity_column(name: str) -> Column[object]:
    return Column(name, ExactDecimal(26, 6), nullable=False)


usage_records = Table(
    "usage_records",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("organization_id", String(36), nullable=False),
    Column("usage_type", String(32), nullable=False),
    quantity_column("quantity"),
    Column("event_time", UTCDateTime, nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    # sha256 of the payload as sent: a reused key with another payload is a conflict.
    Column("fingerprint", String(64), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "idempotency_key"),
    Index(None, "organization_id", "usage_type", "event_time"),
    Index(None, "organization_id", "event_time", "id"),
)

# Running totals of counters per monthly limit window: what CheckLimits reads on the hot path.
usage_counters = Table(
    "usage_counters",
    metadata,
    Column("organization_id", String(36), primary_key=True),
    Column("usage_type", String(32), primary_key=True),
    Column("window_start", UTCDateTime, primary_key=True),
    Column("window_end", UTCDateTime, nullable=False),
    quantity_column("quantity"),
)

# The latest level of each gauge, by event time (a late, older report does not overwrite it).
usage_gauges = Table(
    "usage_gauges",
    metadata,
    Column("organization_id", String(36), primary_key=True),
    Column("usage_type", String(32), primary_key=True),
    quantity_column("level"),
    Column("as_of", UTCDateTime, nullable=False),
)

entitlements = Table(
    "entitlements",
    metadata,
    Column("organization_id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("tier", String(32), nullable=False),
    Column("billing_cycle", String(32), nullable=False),
    Column("period_anchor", UTCDateTime),
    Column("current_period_start", UTCDateTime),
    Column("current_period_end", UTCDateTime),
    # {usage_type: "max"}; a usage type without an entry is unlimited.
    Column("limits", JSON, nullable=False),
    Column("usage_closed_before", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

reservations = Table(
    "usage_reservations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("organization_id", String(36), nullable=False),
    Column("usage_type", String(32), nullable=False),
    quantity_column("quantity"),
    Column("idempotency_key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # active, committed, released
    Column("window_start", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("record_id", String(36)),
    UniqueConstraint("organization_id", "idempotency_key"),
    Index("ix_usage_reservations_live", "organization_id", "usage_type", "status", "expires_at"),
)

# Events to publish, written in the same transaction as the change that caused them.
outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("organization_id", String(36), nullable=False),
    Column("payload", JSON, nullable=False),
    # Makes "once per limit, threshold and window" a database guarantee.
    Column("dedupe_key", String(255), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),
    Index(None, "published_at", "created_at"),
)
