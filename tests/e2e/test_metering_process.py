"""End to end: migrate with the documented command, start `python -m taskforge_metering` as a
process on PostgreSQL (and SQLite), call it through the generated stubs, stop it with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import metering_service_pb2_grpc, usage_pb2
from taskforge_common.grpc.auth import Scope, issue_token
from tests.databases import fresh_postgres_database

SECRET = "e2e-secret-that-is-long-enough-for-hs256"
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["postgresql", "sqlite"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'metering.db'}"
        return
    async with fresh_postgres_database("tf_e2e") as url:
        yield url


async def wait_until_serving(channel: grpc.aio.Channel, process: subprocess.Popen[bytes]) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(100):
        assert process.poll() is None, "the service exited during startup"
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail("the service never reported SERVING")


def migrated_service_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """The service's environment, after migrating its database with the documented command."""
    env = {
        **os.environ,
        "TASKFORGE_METERING_DATABASE_URL": database_url,
        "TASKFORGE_METERING_PORT": str(port),
        "TASKFORGE_METERING_HOST": "127.0.0.1",
        "TASKFORGE_AUTH_JWT_SECRET": SECRET,
        **extra,
    }
    migrate = subprocess.run(
        [sys.executable, "-m", "taskforge_common.db.migrate", "metering"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr.decode()
    return env


def admin_metadata() -> tuple[tuple[str, str], ...]:
    token = issue_token(SECRET, "e2e", [s.value for s in Scope], now=datetime.now(UTC))
    return (("authorization", f"Bearer {token}"),)


async def test_service_process_records_checks_and_stops_gracefully(database_url: str) -> None:
    port = free_port()
    env = migrated_service_env(database_url, port)
    process = subprocess.Popen(
        [sys.executable, "-m", "taskforge_metering"], env=env, stderr=subprocess.PIPE
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_until_serving(channel, process)
            metadata = admin_metadata()
            stub = metering_service_pb2_grpc.MeteringServiceStub(channel)
            org = str(uuid.uuid4())
            await stub.UpsertEntitlements(
                pb.UpsertEntitlementsRequest(
                    organization_id=org,
                    entitlements=usage_pb2.Entitlements(
                        status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
                        limits=[
                            common_pb2.Limit(
                                usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION, max="10"
                            )
                        ],
                        version=1,
                    ),
                ),
                metadata=metadata,
            )
            event = usage_pb2.UsageEvent(
                organization_id=org,
                usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
                quantity="9",
                idempotency_key="e2e-1",
            )
            recorded = await stub.RecordUsage(pb.RecordUsageRequest(event=event), metadata=metadata)
            assert recorded.record.quantity == "9"
            check = await stub.CheckLimits(
                pb.CheckLimitsRequest(
                    organization_id=org,
                    usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
                    requested_quantity="2",
                ),
                metadata=metadata,
            )
            assert not check.allowed
            assert check.limits[0].current == "9"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    logs = process.stderr.read().decode()
    assert SECRET not in logs


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


async def test_worker_processes_share_the_port_and_stop_together() -> None:
    async with fresh_postgres_database("tf_e2e") as url:
        port = free_port()
        env = migrated_service_env(url, port, TASKFORGE_METERING_WORKERS="2")
        supervisor = subprocess.Popen([sys.executable, "-m", "taskforge_metering"], env=env)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await wait_until_serving(channel, supervisor)
            workers = children(supervisor.pid)
            assert len(workers) == 2
            org = str(uuid.uuid4())
            metadata = admin_metadata()
            # A connection per call: the kernel spreads them over the workers, and every
            # worker sees what the others wrote.
            for n in range(10):
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = metering_service_pb2_grpc.MeteringServiceStub(channel)
                    event = usage_pb2.UsageEvent(
                        organization_id=org,
                        usage_type=common_pb2.USAGE_TYPE_API_CALL,
                        quantity="1",
                        idempotency_key=f"call-{n % 5}",
                    )
                    await stub.RecordUsage(pb.RecordUsageRequest(event=event), metadata=metadata)
                    usage = await stub.GetCurrentUsage(
                        pb.GetCurrentUsageRequest(organization_id=org), metadata=metadata
                    )
                    assert usage.usage.api_calls_made == str(min(n + 1, 5))
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(timeout=30) == 0
            assert not any(map(process_exists, workers))
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
                supervisor.wait()
