"""Migration 0001 builds exactly the schema of `storage.tables` on both databases, seeds the
price book and sequences, and downgrades cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from taskforge_common.db import migrate
from taskforge_common.db.engine import Database
from taskforge_subscriptions.storage import tables
from tests.databases import fresh_postgres_database
from tests.subscriptions.conftest import DIALECTS


@pytest.fixture(params=DIALECTS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty subscriptions database."""
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'subscriptions.db'}"
        else:
            url = await stack.enter_async_context(fresh_postgres_database("tf_test_migration"))
        yield url


def _differences(connection: Connection) -> list[Any]:
    opts = {"compare_type": True, "version_table": "alembic_version_subscriptions"}
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, tables.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_builds_the_schema_of_the_tables_module(database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, "subscriptions", database_url)
    database = Database(database_url)
    try:
        async with database.engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            sequences = (await connection.execute(select(tables.sequences))).all()
            prices = (await connection.execute(select(tables.meter_prices))).all()
        assert sorted((row.name, row.last_value) for row in sequences) == [
            ("credit_note", 0),
            ("invoice", 0),
        ]
        assert len(prices) == 4 * 7
    finally:
        await database.dispose()


async def test_downgrade_removes_everything_and_upgrade_runs_again(database_url: str) -> None:
    config = migrate.alembic_config("subscriptions", database_url)
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "base")
    database = Database(database_url)
    try:
        async with database.engine.connect() as connection:
            assert await connection.run_sync(_tables) <= {"alembic_version_subscriptions"}
    finally:
        await database.dispose()
    await asyncio.to_thread(command.upgrade, config, "head")
