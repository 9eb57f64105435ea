"""Subscriptions fixtures: a migrated database per dialect and session, reset before each test to
what the migration left (the seeded price book and sequences; the audit trail is append-only,
so it is kept and tests that read it use organisations of their own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from taskforge_common.db.engine import Database
from taskforge_subscriptions.storage import tables
from tests.databases import empty_tables, migrated_database

DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
APPEND_ONLY = (tables.audit_log.name,)
# Tables the migration fills: their rows are put back after each emptying.
SEEDED = (tables.plans, tables.plan_limits, tables.meter_prices, tables.sequences)

Seed = dict[str, list[dict[str, Any]]]


async def read_seed(database: Database) -> Seed:
    async with database.read_only_transaction() as transaction:
        return {
            table.name: [
                dict(row._mapping) for row in await transaction.session.execute(select(table))
            ]
            for table in SEEDED
        }


async def reset(database: Database, seed: Seed) -> None:
    """Empty every table but the audit trail, then restore the migration's rows."""
    await empty_tables(database, tables.metadata, keep=APPEND_ONLY)
    async with database.transaction() as transaction:
        for table in SEEDED:
            rows = seed[table.name]
            if rows:
                await transaction.session.execute(table.insert(), rows)
        await transaction.commit()


@pytest.fixture(scope="session", params=DIALECTS)
async def subscriptions_database_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Database, Seed]]:
    async with migrated_database(
        "subscriptions", request.param, tmp_path_factory.mktemp("subscriptions")
    ) as database:
        yield database, await read_seed(database)


@pytest.fixture
async def subscriptions_database(
    subscriptions_database_session: tuple[Database, Seed],
) -> Database:
    database, seed = subscriptions_database_session
    await reset(database, seed)
    return database
