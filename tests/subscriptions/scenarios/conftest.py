"""Both services' databases, one pair per dialect for the session, reset before each scenario."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.subscriptions.service_client import ServiceDatabases

DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=DIALECTS)
async def service_databases_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceDatabases]:
    directory = tmp_path_factory.mktemp(f"scenarios-{request.param}")
    async with ServiceDatabases.create(request.param, directory) as databases:
        yield databases


@pytest.fixture
async def service_databases(service_databases_session: ServiceDatabases) -> ServiceDatabases:
    await service_databases_session.reset()
    return service_databases_session
