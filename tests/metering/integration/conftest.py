"""The integration tests' client of a real metering server on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from taskforge.metering.v1 import metering_service_pb2_grpc
from taskforge_common.clock import ManualClock
from taskforge_common.db.engine import Database
from tests.metering.service_client import Client, start_service


@pytest.fixture
async def client(metering_database: Database, clock: ManualClock) -> AsyncIterator[Client]:
    running = await start_service(metering_database, clock)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield Client(metering_service_pb2_grpc.MeteringServiceStub(channel), clock, channel)
    await running.stop(0)
