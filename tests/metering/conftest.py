"""Metering fixtures: a migrated database per dialect and session, emptied before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from taskforge_common.clock import ManualClock
from taskforge_common.db.engine import Database
from taskforge_metering.storage.tables import metadata
from tests.databases import empty_tables, migrated_database

DIALECTS = ["postgresql", "sqlite"]


@pytest.fixture(scope="session", params=DIALECTS)
async def metering_database_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with migrated_database(
        "metering", request.param, tmp_path_factory.mktemp("metering")
    ) as database:
        yield database


@pytest.fixture
async def metering_database(metering_database_session: Database) -> Database:
    await empty_tables(metering_database_session, metadata)
    return metering_database_session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
