"""The append-only audit trail (SPEC §10): who changed what, when, from what to what.

Entries are written in the transaction of the change they record, so a change and its entry are
committed or rolled back together. The database refuses to update or delete an entry: each
service's migration creates its table and then runs `append_only_ddl` for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, MetaData, Row, String, Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from taskforge_common.clock import ensure_utc
from taskforge_common.db.types import UTCDateTime
from taskforge_common.ids import new_id
from taskforge_common.jsonsafe import JsonValue, to_json_safe

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def audit_table(metadata: MetaData, name: str = "audit_log") -> Table:
    """The audit table of one service, on `metadata` (its migrations create it)."""
    table = Table(
        name,
        metadata,
        Column("id", String(36), primary_key=True),
        Column("occurred_at", UTCDateTime, nullable=False),
        Column("actor", String(255), nullable=False),
        Column("organization_id", String(36), nullable=True),
        Column("action", String(100), nullable=False),
        Column("entity_type", String(100), nullable=False),
        Column("entity_id", String(255), nullable=False),
        # SQL NULL, not JSON null, when there is no before (a creation) or after (a deletion).
        Column("before", JSON(none_as_null=True), nullable=True),
        Column("after", JSON(none_as_null=True), nullable=True),
        Column("request_id", String(255), nullable=True),
    )
    Index(f"ix_{name}_organization", table.c.organization_id, table.c.occurred_at, table.c.id)
    Index(f"ix_{name}_entity", table.c.entity_id, table.c.occurred_at, table.c.id)
    return table


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded state change. `actor` is the token's subject; `before` and `after` are
    JSON-safe snapshots (None for a creation or a deletion)."""

    id: str
    occurred_at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    organization_id: str | None = None
    before: JsonValue = None
    after: JsonValue = None
    request_id: str | None = None

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: str,
        organization_id: str | None = None,
        before: object = None,
        after: object = None,
        request_id: str | None = None,
    ) -> AuditEntry:
        """A new entry with a fresh id; `before` and `after` go through `to_json_safe`, so
        dataclasses, decimals and instants may be passed as they are."""
        return cls(
            id=new_id(now),
            occurred_at=ensure_utc(now),
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            organization_id=organization_id,
            before=to_json_safe(before),
            after=to_json_safe(after),
            request_id=request_id,
        )


async def record(session: AsyncSession | AsyncConnection, table: Table, entry: AuditEntry) -> None:
    """Write `entry` in the caller's transaction."""
    await session.execute(
        table.insert().values(
            id=entry.id,
            occurred_at=entry.occurred_at,
            actor=entry.actor,
            organization_id=entry.organization_id,
            action=entry.action,
            entity_type=entry.entity_type,
            entity_id=entry.entity_id,
            before=entry.before,
            after=entry.after,
            request_id=entry.request_id,
        )
    )


async def list_entries(
    session: AsyncSession | AsyncConnection,
    table: Table,
    *,
    organization_id: str | None = None,
    entity_id: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int,
) -> list[AuditEntry]:
    """Entries newest first by (occurred_at, id), optionally of one organisation and/or entity.
    `after` is the (occurred_at, id) of the last entry of the previous page: the page holds the
    entries older than it."""
    if limit < 1:
        raise ValueError("limit is at least 1")
    query = select(table).order_by(table.c.occurred_at.desc(), table.c.id.desc()).limit(limit)
    if organization_id is not None:
        query = query.where(table.c.organization_id == organization_id)
    if entity_id is not None:
        query = query.where(table.c.entity_id == entity_id)
    if after is not None:
        occurred_at, entry_id = after
        # Spelled out rather than as a row-value comparison, so that the instant is bound
        # through the column's type on both databases.
        query = query.where(
            or_(
                table.c.occurred_at < occurred_at,
                and_(table.c.occurred_at == occurred_at, table.c.id < entry_id),
            )
        )
    return [_entry(row) for row in (await session.execute(query)).all()]


def append_only_ddl(table_name: str, dialect: str) -> list[str]:
    """Statements that make the database refuse every UPDATE and DELETE on `table_name` (and
    TRUNCATE on PostgreSQL), for a migration to run after creating the table."""
    if not _IDENTIFIER.fullmatch(table_name):
        raise ValueError(f"{table_name!r} is not a plain lower-case table name")
    refusal = f"{table_name} is append-only"
    if dialect == "postgresql":
        function = f"{table_name}_refuse_change"
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            # No % placeholder: drivers with a pyformat paramstyle would take it for one.
            f"BEGIN RAISE EXCEPTION USING MESSAGE = '{refusal}: ' || TG_OP || ' refused'; "
            "END $$",
            f"CREATE TRIGGER {table_name}_append_only BEFORE UPDATE OR DELETE ON {table_name} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {table_name}_no_truncate BEFORE TRUNCATE ON {table_name} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table_name}_no_{operation.lower()} BEFORE {operation} "
            f"ON {table_name} BEGIN SELECT RAISE(ABORT, '{refusal}: {operation} refused'); END"
            for operation in ("UPDATE", "DELETE")
        ]
    raise ValueError(f"unsupported database {dialect!r}: use postgresql or sqlite")


def _entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        organization_id=row.organization_id,
        before=row.before,
        after=row.after,
        request_id=row.request_id,
    )
