"""Throwaway databases for tests, built by the services' real Alembic migrations.

PostgreSQL is the one production uses: under CI=true an unreachable server fails the run loudly;
elsewhere the PostgreSQL variants are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import MetaData, delete

from taskforge_common.db import migrate
from taskforge_common.db.engine import Database
from tests.ci import unavailable

ADMIN_DSN = os.environ.get(
    "TASKFORGE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


async def _admin_connection() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        unavailable(f"PostgreSQL test server unreachable at {ADMIN_DSN}: {error}")


def _async_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@asynccontextmanager
async def fresh_postgres_database(prefix: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await _admin_connection()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _async_url(ADMIN_DSN, name)
    finally:
        admin = await _admin_connection()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def migrated_database(service: str, dialect: str, tmp_dir: Path) -> AsyncIterator[Database]:
    """A new database of `service` on `dialect`, built by its migrations; dropped afterwards."""
    async with AsyncExitStack() as stack:
        if dialect == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_dir / f'{service}.db'}"
        else:
            url = await stack.enter_async_context(fresh_postgres_database(f"tf_test_{service}"))
        await asyncio.to_thread(migrate.upgrade, service, url)
        database = Database(url)
        stack.push_async_callback(database.dispose)
        yield database


async def empty_tables(
    database: Database, metadata: MetaData, *, keep: Collection[str] = ()
) -> None:
    """Delete every row, children first, so each test starts from an empty schema; the tables
    named in `keep` are left as they are (an append-only audit table refuses deletes)."""
    async with database.transaction() as transaction:
        for table in reversed(metadata.sorted_tables):
            if table.name not in keep:
                await transaction.session.execute(delete(table))
        await transaction.commit()
