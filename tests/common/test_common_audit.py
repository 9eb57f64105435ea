"""The audit trail on PostgreSQL and SQLite: entries round-trip with their JSON snapshots, page
newest first, and the database itself refuses to change or delete one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from taskforge_common.audit import (
    AuditEntry,
    append_only_ddl,
    audit_table,
    list_entries,
    record,
)
from taskforge_common.db.base import new_metadata
from taskforge_common.db.engine import Database
from taskforge_common.money import Money
from tests.databases import fresh_postgres_database

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORG_A = "0190f1a2-0000-7000-8000-00000000000a"
ORG_B = "0190f1a2-0000-7000-8000-00000000000b"
metadata = new_metadata()
AUDIT = audit_table(metadata)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A new database with the audit table, made append-only as a migration would."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "postgresql":
            url = await stack.enter_async_context(fresh_postgres_database("tf_test_audit"))
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
        database = Database(url, pool_size=2)
        stack.push_async_callback(database.dispose)
        async with database.transaction() as transaction:
            await transaction.session.run_sync(
                lambda session: metadata.create_all(session.connection())
            )
            for statement in append_only_ddl(AUDIT.name, database.dialect):
                await transaction.session.execute(text(statement))
            await transaction.commit()
        yield database


@dataclass(frozen=True)
class Subscription:
    tier: str
    price: Money


def tier_change(at: datetime, organization_id: str, entity_id: str) -> AuditEntry:
    return AuditEntry.create(
        now=at,
        actor="user:ann",
        action="subscription.tier_changed",
        entity_type="subscription",
        entity_id=entity_id,
        organization_id=organization_id,
        before=Subscription("starter", Money(Decimal("29.00"), "USD")),
        after={"tier": "pro", "price": Decimal("99.00"), "credit": Decimal("12.345")},
        request_id="req-1",
    )


async def write(database: Database, *entries: AuditEntry, commit: bool = True) -> None:
    async with database.transaction() as transaction:
        for entry in entries:
            await record(transaction.session, AUDIT, entry)
        if commit:
            await transaction.commit()


async def listed(database: Database, **filters: object) -> list[AuditEntry]:
    async with database.read_only_transaction() as transaction:
        return await list_entries(transaction.session, AUDIT, **filters)  # type: ignore[arg-type]


async def test_an_entry_round_trips_with_its_snapshots(database: Database) -> None:
    entry = tier_change(START, ORG_A, "sub-1")
    created = AuditEntry.create(
        now=START + timedelta(seconds=1),
        actor="service:subscriptions",
        action="subscription.created",
        entity_type="subscription",
        entity_id="sub-2",
    )
    await write(database, entry, created)
    await write(database, tier_change(START, ORG_A, "sub-rolled-back"), commit=False)
    assert await listed(database, limit=10) == [created, entry]
    assert entry.before == {"tier": "starter", "price": {"amount": "29.00", "currency": "USD"}}
    assert entry.after == {"tier": "pro", "price": "99.00", "credit": "12.345"}
    assert (created.before, created.after, created.organization_id) == (None, None, None)
    async with database.read_only_transaction() as transaction:
        nulls = await transaction.session.execute(
            text("SELECT count(*) FROM audit_log WHERE before IS NULL AND after IS NULL")
        )
        assert nulls.scalar_one() == 1  # SQL NULL, not a JSON null


async def test_entries_page_newest_first_per_organisation_and_entity(database: Database) -> None:
    entries = [
        tier_change(START + timedelta(minutes=i // 2), ORG_A if i % 3 else ORG_B, f"sub-{i % 2}")
        for i in range(12)
    ]
    await write(database, *entries)
    newest_first = sorted(entries, key=lambda e: (e.occurred_at, e.id), reverse=True)
    for filters, expected in [
        ({}, newest_first),
        ({"organization_id": ORG_A}, [e for e in newest_first if e.organization_id == ORG_A]),
        ({"entity_id": "sub-1"}, [e for e in newest_first if e.entity_id == "sub-1"]),
        (
            {"organization_id": ORG_B, "entity_id": "sub-0"},
            [e for e in newest_first if (e.organization_id, e.entity_id) == (ORG_B, "sub-0")],
        ),
    ]:
        pages: list[AuditEntry] = []
        cursor: tuple[datetime, str] | None = None
        while page := await listed(database, after=cursor, limit=5, **filters):
            pages.extend(page)
            cursor = (page[-1].occurred_at, page[-1].id)
        assert pages == expected


@pytest.mark.parametrize("change", ["update", "delete"])
async def test_the_database_refuses_to_change_an_entry(database: Database, change: str) -> None:
    entry = tier_change(START, ORG_A, "sub-1")
    await write(database, entry)
    statement = update(AUDIT).values(actor="user:mallory") if change == "update" else delete(AUDIT)
    async with database.transaction() as transaction:
        with pytest.raises(DBAPIError, match="audit_log is append-only"):
            await transaction.session.execute(statement.where(AUDIT.c.id == entry.id))
    assert await listed(database, limit=10) == [entry]


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_truncate_is_refused_on_postgresql(database: Database) -> None:
    await write(database, tier_change(START, ORG_A, "sub-1"))
    with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"):
        async with database.transaction() as transaction:
            await transaction.session.execute(text("TRUNCATE audit_log"))


def test_append_only_ddl_refuses_odd_names_and_databases() -> None:
    with pytest.raises(ValueError, match="plain lower-case table name"):
        append_only_ddl("audit; DROP TABLE x", "sqlite")
    with pytest.raises(ValueError, match="unsupported database"):
        append_only_ddl("audit_log", "mysql")


async def test_a_page_holds_at_least_one_entry(database: Database) -> None:
    with pytest.raises(ValueError, match="limit is at least 1"):
        await listed(database, limit=0)
