"""CheckLimits latency p50/p99 at concurrency 1 and 16, against a no-op grpc.aio call in the
same run. Targets (issue 2): p99 at most 2x the no-op's at concurrency 1; at most 5 ms at 16.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass

import grpc

from bench.harness import (
    admin_metadata,
    fresh_database,
    metering_service,
    noop_service,
    percentile,
    stub,
)
from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float


@dataclass
class CheckLimitsFigures:
    check: dict[int, Latency]
    noop: dict[int, Latency]


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


async def measure(calls: int, rounds: int = 3) -> CheckLimitsFigures:
    """Both servers run side by side and are measured in alternating rounds; the median round
    of each counts, so a slow spell of the machine does not land on one side only."""
    samples: dict[str, dict[int, list[Latency]]] = {
        "check": {1: [], 16: []},
        "noop": {1: [], 16: []},
    }
    async with (
        noop_service() as noop,
        fresh_database() as dsn,
        metering_service(dsn) as service,
    ):
        noop_request = pb.CheckLimitsRequest(organization_id=str(uuid.uuid4()))
        check_request = await prepare(service.target)
        await latencies(noop.target, noop_request, 300, 1)
        await latencies(service.target, check_request, 300, 1)
        for _ in range(rounds):
            for concurrency in (1, 16):
                samples["noop"][concurrency].append(
                    await latencies(noop.target, noop_request, calls, concurrency)
                )
                samples["check"][concurrency].append(
                    await latencies(service.target, check_request, calls, concurrency)
                )
    return CheckLimitsFigures(
        check={c: _median(rounds_) for c, rounds_ in samples["check"].items()},
        noop={c: _median(rounds_) for c, rounds_ in samples["noop"].items()},
    )


def _median(rounds: list[Latency]) -> Latency:
    return Latency(
        statistics.median(r.p50_ms for r in rounds), statistics.median(r.p99_ms for r in rounds)
    )


def report(figures: CheckLimitsFigures) -> None:
    print("CheckLimits latency on PostgreSQL (ms, medians of 3 rounds)")
    for concurrency in (1, 16):
        check, noop = figures.check[concurrency], figures.noop[concurrency]
        print(
            f"  concurrency {concurrency:>2}: CheckLimits p50 {check.p50_ms:6.2f}"
            f" p99 {check.p99_ms:6.2f}"
            f" | no-op p50 {noop.p50_ms:6.2f} p99 {noop.p99_ms:6.2f}"
            f" | p99 ratio {check.p99_ms / noop.p99_ms:5.2f}"
        )
    print("  targets: p99 ratio <= 2.0 at concurrency 1; p99 <= 5 ms at concurrency 16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    report(asyncio.run(measure(args.calls)))


if __name__ == "__main__":
    main()
