"""The stores the contract runs on: the in-memory fake, and the SQL unit of work over databases
built by the real migrations on SQLite and PostgreSQL (one of each per session, emptied before
each case)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from taskforge_common.db.engine import Database
from taskforge_metering.application.ports import UnitOfWorkFactory
from taskforge_metering.storage.tables import metadata
from taskforge_metering.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.databases import empty_tables, migrated_database
from tests.fakes.metering_store import InMemoryDatabase

BACKENDS = ["fake", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
async def backend_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, Database | None]]:
    """(backend name, its migrated database; None for the fake)."""
    name: str = request.param
    if name == "fake":
        yield name, None
        return
    async with migrated_database("metering", name, tmp_path_factory.mktemp(name)) as database:
        yield name, database


@pytest.fixture
def backend(backend_database: tuple[str, Database | None]) -> str:
    """fake, sqlite or postgresql."""
    return backend_database[0]


@pytest.fixture
async def unit_of_work(backend_database: tuple[str, Database | None]) -> UnitOfWorkFactory:
    """A unit-of-work factory over an empty store."""
    _, database = backend_database
    if database is None:
        return InMemoryDatabase()
    await empty_tables(database, metadata)
    return SqlUnitOfWorkFactory(database)
