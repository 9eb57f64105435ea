"""Shared benchmark plumbing: a fresh PostgreSQL database, the metering service as a process,
a no-op gRPC server process as the baseline, and percentile helpers.

The client runs in this process; servers run in their own processes, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from taskforge.metering.v1 import metering_service_pb2_grpc
from taskforge_common.grpc.auth import Scope, issue_token

ADMIN_DSN = os.environ.get(
    "TASKFORGE_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
SECRET = "benchmark-secret-that-is-long-enough-for-hs256"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new PostgreSQL database (its asyncpg DSN), dropped afterwards."""
    name = f"tf_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    target: str

    def peak_rss_mb(self) -> float:
        """The process's peak resident set (VmHWM), in MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def wait_serving(target: str, process: subprocess.Popen[bytes]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("server never became SERVING")


@contextlib.asynccontextmanager
async def metering_service(dsn: str, workers: int = 1) -> AsyncIterator[ServiceProcess]:
    """The real service (`python -m taskforge_metering`) on `dsn`, migrated first, with
    `workers` server processes on its port."""
    port = free_port()
    env = {
        **os.environ,
        "TASKFORGE_METERING_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
        "TASKFORGE_METERING_PORT": str(port),
        "TASKFORGE_METERING_HOST": "127.0.0.1",
        "TASKFORGE_METERING_INGEST_RATE_PER_SECOND": "1000000",
        "TASKFORGE_METERING_WORKERS": str(workers),
        "TASKFORGE_AUTH_JWT_SECRET": SECRET,
        "TASKFORGE_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "taskforge_common.db.migrate", "metering"],
        env=env,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen([sys.executable, "-m", "taskforge_metering"], env=env)
    service = ServiceProcess(process, f"127.0.0.1:{port}")
    try:
        await wait_serving(service.target, process)
        yield service
    finally:
        service.stop()


@contextlib.asynccontextmanager
async def noop_service() -> AsyncIterator[ServiceProcess]:
    """The baseline: a grpc.aio server process whose MeteringService methods return at once."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "noop_server.py"), str(port)])
    service = ServiceProcess(process, f"127.0.0.1:{port}")
    try:
        await wait_serving(service.target, process)
        yield service
    finally:
        service.stop()


def stub(channel: grpc.aio.Channel) -> metering_service_pb2_grpc.MeteringServiceAsyncStub:
    return metering_service_pb2_grpc.MeteringServiceStub(channel)


def admin_metadata() -> tuple[tuple[str, str], ...]:
    token = issue_token(SECRET, "bench", [s.value for s in Scope], now=datetime.now(UTC))
    return (("authorization", f"Bearer {token}"),)


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.start
