"""Migration 0002: entitlements stored with unreadable instants (before the bounds were checked)
are repaired, and the database refuses any instant outside [2000, 2100) from then on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from taskforge_common.clock import ManualClock
from taskforge_common.db import migrate
from taskforge_common.db.engine import Database
from taskforge_common.meters import UsageType
from taskforge_common.page_tokens import PageTokens
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.use_cases import UseCases
from taskforge_metering.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.databases import fresh_postgres_database
from tests.metering.conftest import DIALECTS

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
OPERATOR = Caller("operator")
PAGE_TOKENS = PageTokens(b"page tokens of the tests")
# What the defect stored: PostgreSQL turned the extreme Timestamps into ±infinity; SQLite kept
# the text of year 1.
EXTREMES = {
    "postgresql": ("'-infinity'", "'infinity'"),
    "sqlite": ("'0001-01-01 00:00:00.000000'", "'9999-12-31 23:59:59.999999'"),
}


@pytest.fixture(params=DIALECTS)
async def database_at_0001(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """(dialect, URL) of a new metering database migrated to revision 0001 only."""
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'metering.db'}"
        else:
            url = await stack.enter_async_context(fresh_postgres_database("tf_test_migration"))
        await asyncio.to_thread(migrate.upgrade, "metering", url, "0001")
        yield request.param, url


async def execute(database: Database, statement: str) -> None:
    async with database.transaction() as transaction:
        await transaction.session.execute(text(statement))
        await transaction.commit()


async def test_unreadable_entitlements_are_repaired_and_refused_afterwards(
    database_at_0001: tuple[str, str],
) -> None:
    dialect, url = database_at_0001
    earliest, latest = EXTREMES[dialect]
    database = Database(url)
    try:
        await execute(
            database,
            "INSERT INTO entitlements (organization_id, status, version, tier, billing_cycle,"
            " period_anchor, limits, usage_closed_before, updated_at) VALUES"
            f" ('{ORG}', 'active', 3, 'starter', 'monthly', {earliest}, '{{}}', {latest},"
            " '2026-03-01 00:00:00')",
        )
    finally:
        await database.dispose()

    await asyncio.to_thread(migrate.upgrade, "metering", url)

    database = Database(url)
    try:
        clock = ManualClock(datetime(2026, 3, 10, tzinfo=UTC))
        use_cases = UseCases.build(SqlUnitOfWorkFactory(database), clock, 1000, PAGE_TOKENS)
        # The organisation works again: its row reads, limits check, a newer push replaces it.
        decision = await use_cases.limits.check(ORG, UsageType.JOB_EXECUTION, "1", OPERATOR)
        assert decision.allowed
        usage = await use_cases.queries.current_usage(ORG, OPERATOR)
        assert usage.period_start == datetime(2026, 3, 1, tzinfo=UTC)  # calendar months now
        with pytest.raises(IntegrityError):
            await execute(database, f"UPDATE entitlements SET period_anchor = {earliest}")
        with pytest.raises(IntegrityError):
            await execute(database, f"UPDATE entitlements SET usage_closed_before = {latest}")
    finally:
        await database.dispose()
