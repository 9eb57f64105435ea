"""CheckLimits latency p50/p99 at concurrency 1 and 16, against a no-op grpc.aio call in the
same run. Target (issue 2), at both concurrencies and from both clients: p99 at most 2x the
no-op call's p99 at the same concurrency. (It replaced "p99 at most 5 ms at concurrency 16",
which the no-op call alone misses on a 2-core machine.)

`--client grpc` (the default) calls through grpc.aio from this process. `--client h2load` sends
the same calls with h2load (Debian's nghttp2-client), a load generator in C that needs a small
fraction of the CPU per call: on a machine whose cores the client shares with the servers and
PostgreSQL, it shows how much of the latency the Python client itself causes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.harness import (
    admin_metadata,
    fresh_database,
    metering_service,
    noop_service,
    percentile,
    stub,
)
from bench.noop_server import SERVICE
from bench.summary import Row
from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2

CONCURRENCIES = (1, 16)
P99_RATIO_TARGET = 2.0
APT_TIMEOUT_SECONDS = 600


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float


@dataclass
class CheckLimitsFigures:
    check: dict[int, Latency]
    noop: dict[int, Latency]

    def p99_ratio(self, concurrency: int) -> float:
        return self.check[concurrency].p99_ms / self.noop[concurrency].p99_ms


async def latencies(
    target: str, request: pb.CheckLimitsRequest, calls: int, concurrency: int
) -> Latency:
    metadata = admin_metadata()
    samples: list[float] = []
    remaining = iter(range(calls))

    async def caller(channel: grpc.aio.Channel) -> None:
        client = stub(channel)
        for _ in remaining:
            start = time.perf_counter()
            await client.CheckLimits(request, metadata=metadata, timeout=10)
            samples.append((time.perf_counter() - start) * 1000)

    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.gather(*(caller(channel) for _ in range(concurrency)))
    return Latency(percentile(samples, 0.5), percentile(samples, 0.99))


class H2load:
    """CheckLimits calls sent by h2load over one HTTP/2 connection (as a gRPC channel carries
    them), `concurrency` streams at a time; latencies from its per-request log. Every answer
    is checked: HTTP 200 and exactly the expected response message (an error would come as
    trailers without one)."""

    def __init__(self, executable: str) -> None:
        self._executable = executable

    async def __call__(
        self, target: str, request: pb.CheckLimitsRequest, calls: int, concurrency: int
    ) -> Latency:
        metadata = admin_metadata()
        async with grpc.aio.insecure_channel(target) as channel:
            expected = await stub(channel).CheckLimits(request, metadata=metadata, timeout=10)
        with tempfile.TemporaryDirectory() as scratch:
            body, log = Path(scratch) / "request", Path(scratch) / "log"
            body.write_bytes(_grpc_frame(request.SerializeToString()))
            output = await asyncio.to_thread(
                subprocess.run,
                [
                    self._executable,
                    f"--requests={calls}",
                    "--clients=1",
                    f"--max-concurrent-streams={concurrency}",
                    f"--data={body}",
                    f"--log-file={log}",
                    "--header=content-type: application/grpc",
                    "--header=te: trailers",
                    f"--header=authorization: {dict(metadata)['authorization']}",
                    f"http://{target}/{SERVICE}/CheckLimits",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rows = [line.split() for line in log.read_text().splitlines()]
        answered = len(_grpc_frame(expected.SerializeToString())) * calls
        data = re.search(r"\((\d+)\) data", output.stdout)
        if len(rows) != calls or any(row[1] != "200" for row in rows):
            raise RuntimeError(f"h2load: not every call answered 200\n{output.stdout}")
        if data is None or int(data.group(1)) != answered:
            raise RuntimeError(f"h2load: answers other than expected\n{output.stdout}")
        samples = [int(row[2]) / 1000 for row in rows]  # µs from request to response end
        return Latency(percentile(samples, 0.5), percentile(samples, 0.99))


def find_h2load(install: bool = False) -> tuple[str | None, str]:
    """h2load's path, or None and why it is missing. With `install`, a missing h2load is first
    installed from Debian's nghttp2-client with apt-get."""
    found = shutil.which("h2load")
    if found is not None:
        return found, ""
    if not install:
        return None, "h2load is not on PATH (Debian: apt-get install nghttp2-client)"
    apt = shutil.which("apt-get")
    if apt is None:
        return None, "h2load is not on PATH and there is no apt-get to install nghttp2-client"
    print("h2load is not on PATH: installing nghttp2-client with apt-get", flush=True)
    failure = _apt_get(apt, "install", "nghttp2-client")
    if failure:
        # A fresh machine may have no package lists yet, or stale ones.
        failure = _apt_get(apt, "update") or _apt_get(apt, "install", "nghttp2-client")
    found = shutil.which("h2load")
    if found is not None:
        print(f"h2load installed: {found}", flush=True)
        return found, ""
    return None, failure or "nghttp2-client installed, but h2load is still not on PATH"


def _apt_get(apt: str, *arguments: str) -> str:
    """Run apt-get non-interactively; "" on success, else what went wrong in one line."""
    command = [apt, "-q", "-y", *arguments]
    try:
        done = subprocess.run(
            command,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return f"`{' '.join(command)}` took longer than {APT_TIMEOUT_SECONDS} s"
    if done.returncode == 0:
        return ""
    lines = (done.stderr or done.stdout).strip().splitlines()
    return f"`{' '.join(command)}` failed ({done.returncode}): {lines[-1] if lines else ''}"


def _grpc_frame(message: bytes) -> bytes:
    """gRPC's length-prefixed message: not compressed, 4-byte big-endian length."""
    return struct.pack(">BI", 0, len(message)) + message


async def prepare(target: str) -> pb.CheckLimitsRequest:
    """An organisation with a subscription, limits and some usage: a realistic check."""
    org = str(uuid.uuid4())
    client_metadata = admin_metadata()
    async with grpc.aio.insecure_channel(target) as channel:
        client = stub(channel)
        await client.UpsertEntitlements(
            pb.UpsertEntitlementsRequest(
                organization_id=org,
                entitlements=usage_pb2.Entitlements(
                    status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
                    limits=[
                        common_pb2.Limit(
                            usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION, max="100000"
                        )
                    ],
                    version=1,
                ),
            ),
            metadata=client_metadata,
        )
        await client.RecordUsageBatch(
            pb.RecordUsageBatchRequest(
                events=[
                    usage_pb2.UsageEvent(
                        organization_id=org,
                        usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
                        quantity="1",
                        idempotency_key=f"warm-{n}",
                    )
                    for n in range(1000)
                ]
            ),
            metadata=client_metadata,
        )
    return pb.CheckLimitsRequest(
        organization_id=org, usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION
    )


LatencyProbe = Callable[[str, pb.CheckLimitsRequest, int, int], Awaitable[Latency]]


async def measure(
    calls: int, rounds: int = 3, probe: LatencyProbe = latencies
) -> CheckLimitsFigures:
    """Both servers run side by side and are measured in alternating rounds; the median round
    of each counts, so a slow spell of the machine does not land on one side only."""
    samples: dict[str, dict[int, list[Latency]]] = {
        "check": {c: [] for c in CONCURRENCIES},
        "noop": {c: [] for c in CONCURRENCIES},
    }
    async with (
        noop_service() as noop,
        fresh_database() as dsn,
        metering_service(dsn) as service,
    ):
        noop_request = pb.CheckLimitsRequest(organization_id=str(uuid.uuid4()))
        check_request = await prepare(service.target)
        await probe(noop.target, noop_request, 300, 1)
        await probe(service.target, check_request, 300, 1)
        for _ in range(rounds):
            for concurrency in CONCURRENCIES:
                samples["noop"][concurrency].append(
                    await probe(noop.target, noop_request, calls, concurrency)
                )
                samples["check"][concurrency].append(
                    await probe(service.target, check_request, calls, concurrency)
                )
    return CheckLimitsFigures(
        check={c: _median(rounds_) for c, rounds_ in samples["check"].items()},
        noop={c: _median(rounds_) for c, rounds_ in samples["noop"].items()},
    )


def _median(rounds: list[Latency]) -> Latency:
    return Latency(
        statistics.median(r.p50_ms for r in rounds), statistics.median(r.p99_ms for r in rounds)
    )


def rows(figures: CheckLimitsFigures, client: str = "grpc.aio") -> list[Row]:
    result = []
    for concurrency in CONCURRENCIES:
        check, noop = figures.check[concurrency], figures.noop[concurrency]
        ratio = figures.p99_ratio(concurrency)
        result.append(
            Row(
                f"CheckLimits p99, concurrency {concurrency}, {client}",
                f"p99 {check.p99_ms:.2f} ms (p50 {check.p50_ms:.2f})",
                f"no-op p99 {noop.p99_ms:.2f} ms (p50 {noop.p50_ms:.2f})",
                f"{ratio:.2f}×",
                f"≤ {P99_RATIO_TARGET:g}× no-op p99",
                ratio <= P99_RATIO_TARGET,
            )
        )
    return result


def report(figures: CheckLimitsFigures, client: str = "grpc.aio") -> None:
    print(f"CheckLimits latency on PostgreSQL (ms, medians of 3 rounds, {client} client)")
    for concurrency, row in zip(CONCURRENCIES, rows(figures, client), strict=True):
        check, noop = figures.check[concurrency], figures.noop[concurrency]
        print(
            f"  concurrency {concurrency:>2}: CheckLimits p50 {check.p50_ms:6.2f}"
            f" p99 {check.p99_ms:6.2f}"
            f" | no-op p50 {noop.p50_ms:6.2f} p99 {noop.p99_ms:6.2f}"
            f" | p99 ratio {row.ratio:>6} | {row.verdict()}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--client", choices=("grpc", "h2load"), default="grpc")
    args = parser.parse_args()
    if args.client == "grpc":
        report(asyncio.run(measure(args.calls)))
        return
    executable, missing = find_h2load()
    if executable is None:
        parser.error(missing)
    report(asyncio.run(measure(args.calls, probe=H2load(executable))), "h2load")


if __name__ == "__main__":
    main()
