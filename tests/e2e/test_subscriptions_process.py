"""End to end: migrate both services with the documented command, start `python -m
taskforge_metering` and `python -m taskforge_subscriptions` as processes on SQLite, subscribe an
organisation and watch its entitlements reach metering through the outbox relay, then stop both
with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as metering_pb
from taskforge.metering.v1 import metering_service_pb2_grpc
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from taskforge.subscriptions.v1 import subscription_service_pb2_grpc
from tests.e2e.test_metering_process import (
    SECRET,
    admin_metadata,
    free_port,
    wait_until_serving,
)

pytestmark = pytest.mark.e2e


def migrated(service: str, env: dict[str, str]) -> None:
    migrate = subprocess.run(
        [sys.executable, "-m", "taskforge_common.db.migrate", service],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr.decode()


@contextmanager
def service_process(
    service: str, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m taskforge_<service>`, its log in a file (a pipe nobody reads could fill up and
    stall it), killed if the test did not stop it."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", f"taskforge_{service}"], env=env, stderr=stderr
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def environments(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    metering_port, subscriptions_port = free_port(), free_port()
    common = {**os.environ, "TASKFORGE_AUTH_JWT_SECRET": SECRET}
    metering = {
        **common,
        "TASKFORGE_METERING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'metering.db'}",
        "TASKFORGE_METERING_HOST": "127.0.0.1",
        "TASKFORGE_METERING_PORT": str(metering_port),
    }
    subscriptions = {
        **common,
        "TASKFORGE_SUBSCRIPTIONS_DATABASE_URL": (
            f"sqlite+aiosqlite:///{tmp_path / 'subscriptions.db'}"
        ),
        "TASKFORGE_SUBSCRIPTIONS_HOST": "127.0.0.1",
        "TASKFORGE_SUBSCRIPTIONS_PORT": str(subscriptions_port),
        "TASKFORGE_METERING_ADDRESS": f"127.0.0.1:{metering_port}",
        "TASKFORGE_OUTBOX_RELAY_INTERVAL_SECONDS": "0.1",
    }
    migrated("metering", metering)
    migrated("subscriptions", subscriptions)
    return metering, subscriptions


async def subscribe(port: int, organization_id: str) -> pb.CreateSubscriptionResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = subscription_service_pb2_grpc.SubscriptionServiceStub(channel)
        return await stub.CreateSubscription(
            pb.CreateSubscriptionRequest(
                organization_id=organization_id,
                tier=common_pb2.TIER_PRO,
                billing_cycle=common_pb2.BILLING_CYCLE_MONTHLY,
                auto_renew=True,
                request_id=str(uuid.uuid4()),
            ),
            metadata=admin_metadata(),
            timeout=10,
        )


async def allowed_within(
    channel: grpc.aio.Channel, organization_id: str, seconds: float
) -> metering_pb.CheckLimitsResponse:
    """CheckLimits of the organisation once metering allows it."""
    stub = metering_service_pb2_grpc.MeteringServiceStub(channel)
    reply = metering_pb.CheckLimitsResponse()
    async with asyncio.timeout(seconds):
        while not reply.allowed:
            await asyncio.sleep(0.1)
            reply = await stub.CheckLimits(
                metering_pb.CheckLimitsRequest(organization_id=organization_id),
                metadata=admin_metadata(),
                timeout=5,
            )
    return reply


def stopped_cleanly(process: subprocess.Popen[bytes]) -> bool:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60) == 0


async def test_a_subscription_reaches_metering_and_both_stop_gracefully(tmp_path: Path) -> None:
    metering_env, subscriptions_env = environments(tmp_path)
    metering_port = int(metering_env["TASKFORGE_METERING_PORT"])
    subscriptions_port = int(subscriptions_env["TASKFORGE_SUBSCRIPTIONS_PORT"])
    with (
        service_process("metering", metering_env, tmp_path / "metering.log") as metering,
        service_process(
            "subscriptions", subscriptions_env, tmp_path / "subscriptions.log"
        ) as subscriptions,
    ):
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{metering_port}") as to_metering,
            grpc.aio.insecure_channel(f"127.0.0.1:{subscriptions_port}") as to_subscriptions,
        ):
            await wait_until_serving(to_metering, metering)
            await wait_until_serving(to_subscriptions, subscriptions)
            org = str(uuid.uuid4())

            created = await subscribe(subscriptions_port, org)

            assert created.subscription.organization_id == org
            reply = await allowed_within(to_metering, org, seconds=10)
            assert reply.limits  # the pro tier's limits, as the subscription has them
            assert {limit.usage_type for limit in reply.limits} == {
                limit.usage_type for limit in created.subscription.limits if limit.max
            }
        # Subscriptions first: its relay talks to metering until it stops.
        assert stopped_cleanly(subscriptions)
        assert stopped_cleanly(metering)
    for log in ("metering.log", "subscriptions.log"):
        text = (tmp_path / log).read_text()
        assert SECRET not in text
        assert '"level": "ERROR"' not in text, text


async def test_entitlements_written_before_metering_starts_reach_it_once_it_does(
    tmp_path: Path,
) -> None:
    metering_env, subscriptions_env = environments(tmp_path)
    metering_port = int(metering_env["TASKFORGE_METERING_PORT"])
    subscriptions_port = int(subscriptions_env["TASKFORGE_SUBSCRIPTIONS_PORT"])
    org = str(uuid.uuid4())
    with service_process(
        "subscriptions", subscriptions_env, tmp_path / "subscriptions.log"
    ) as subscriptions:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{subscriptions_port}") as channel:
            await wait_until_serving(channel, subscriptions)
        await subscribe(subscriptions_port, org)  # metering is not running yet

        with service_process("metering", metering_env, tmp_path / "metering.log") as metering:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{metering_port}") as to_metering:
                await wait_until_serving(to_metering, metering)
                # The relay retries with backoff (1 s, 2 s, 4 s, ...) and the channel reconnects
                # within 10 s: well inside half a minute.
                await allowed_within(to_metering, org, seconds=30)
            assert stopped_cleanly(subscriptions)
            assert stopped_cleanly(metering)
    log = (tmp_path / "subscriptions.log").read_text()
    assert "failed attempt 1" in log  # the push was tried while metering was down
