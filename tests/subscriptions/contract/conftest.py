"""The stores the contract runs on: the in-memory fake, and the SQL unit of work over databases
built by the real migrations on SQLite and PostgreSQL (one of each per session, reset to what
the migration left before each case)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from taskforge_common.db.engine import Database
from taskforge_subscriptions.application.ports import UnitOfWorkFactory
from taskforge_subscriptions.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.databases import migrated_database
from tests.fakes.subscriptions import InMemoryDatabase
from tests.subscriptions.conftest import Seed, read_seed, reset

BACKENDS = ["fake", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
async def backend_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, Database | None, Seed]]:
    """(backend name, its migrated database and seed; None and {} for the fake)."""
    name: str = request.param
    if name == "fake":
        yield name, None, {}
        return
    async with migrated_database("subscriptions", name, tmp_path_factory.mktemp(name)) as database:
        yield name, database, await read_seed(database)


@pytest.fixture
def backend(backend_database: tuple[str, Database | None, Seed]) -> str:
    """fake, sqlite or postgresql."""
    return backend_database[0]


@pytest.fixture
def database(backend_database: tuple[str, Database | None, Seed]) -> Database:
    """The SQL database of the backend (the case is skipped on the fake)."""
    if backend_database[1] is None:
        pytest.skip("a database-only guarantee")
    return backend_database[1]


@pytest.fixture
async def unit_of_work(backend_database: tuple[str, Database | None, Seed]) -> UnitOfWorkFactory:
    """A unit-of-work factory over a store as the migration leaves it."""
    _, database, seed = backend_database
    if database is None:
        return InMemoryDatabase()
    await reset(database, seed)
    return SqlUnitOfWorkFactory(database)
