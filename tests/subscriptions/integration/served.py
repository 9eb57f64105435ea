"""Fixtures of the gRPC tests of the subscriptions service, loaded by each test module with
`pytest_plugins = ["tests.subscriptions.integration.served"]`: both services running on each
database (tests/subscriptions/service_client.py), one pair of migrated databases per dialect
for the whole session, reset before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from taskforge_common.clock import ManualClock
from tests.subscriptions.integration.calls import START
from tests.subscriptions.service_client import ServiceDatabases, Services, running_services

DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=DIALECTS)
async def subscriptions_grpc_databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceDatabases]:
    directory = tmp_path_factory.mktemp(f"subscriptions-grpc-{request.param}")
    async with ServiceDatabases.create(request.param, directory) as databases:
        yield databases


@pytest.fixture
async def services(subscriptions_grpc_databases: ServiceDatabases) -> AsyncIterator[Services]:
    """Both services on freshly reset databases, the shared clock at START."""
    await subscriptions_grpc_databases.reset()
    async with running_services(subscriptions_grpc_databases, ManualClock(START)) as running:
        yield running


@pytest.fixture
def databases(subscriptions_grpc_databases: ServiceDatabases) -> ServiceDatabases:
    """The databases `services` runs on (for snapshots of their rows)."""
    return subscriptions_grpc_databases


@pytest.fixture(scope="module")
async def shared_services(
    subscriptions_grpc_databases: ServiceDatabases,
) -> AsyncIterator[Services]:
    """Both services for a whole module, on databases reset once at its start: for tests that
    each make organisations of their own and assert what they themselves changed (bad input,
    fuzz), sparing a reset and two server starts per test."""
    await subscriptions_grpc_databases.reset()
    async with running_services(subscriptions_grpc_databases, ManualClock(START)) as running:
        yield running
