"""Unary RecordUsage calls/s against a no-op grpc.aio call measured in the same run.

Both servers are separate processes on the same grpc.aio stack; the client keeps `concurrency`
calls in flight. Target (issue 2): at least 0.5 of the no-op rate.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from dataclasses import dataclass

import grpc

from bench.harness import (
    Stopwatch,
    admin_metadata,
    fresh_database,
    metering_service,
    noop_service,
    stub,
)
from bench.summary import Row
from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2

RATIO_TARGET = 0.5


@dataclass
class UnaryFigures:
    calls: int
    concurrency: int
    record_per_second: float
    noop_per_second: float

    @property
    def ratio(self) -> float:
        return self.record_per_second / self.noop_per_second


def requests(count: int) -> list[pb.RecordUsageRequest]:
    org = str(uuid.uuid4())
    return [
        pb.RecordUsageRequest(
            event=usage_pb2.UsageEvent(
                organization_id=org,
                usage_type=common_pb2.USAGE_TYPE_API_CALL,
                quantity="1",
                idempotency_key=f"call-{uuid.uuid4()}",
            )
        )
        for _ in range(count)
    ]


async def calls_per_second(
    target: str, batch: list[pb.RecordUsageRequest], concurrency: int
) -> float:
    metadata = admin_metadata()
    pending = iter(batch)

    async def caller(channel: grpc.aio.Channel) -> None:
        client = stub(channel)
        for request in pending:
            await client.RecordUsage(request, metadata=metadata, timeout=30)

    async with grpc.aio.insecure_channel(target) as channel:
        with Stopwatch() as watch:
            await asyncio.gather(*(caller(channel) for _ in range(concurrency)))
    return len(batch) / watch.seconds


async def measure(calls: int, concurrency: int, rounds: int = 3) -> UnaryFigures:
    """Both servers run side by side and are measured in alternating rounds; the medians are
    compared, so a slow spell of the machine does not land on one side only."""
    record_rates: list[float] = []
    noop_rates: list[float] = []
    async with (
        noop_service() as noop,
        fresh_database() as dsn,
        metering_service(dsn) as service,
    ):
        await calls_per_second(noop.target, requests(500), concurrency)
        await calls_per_second(service.target, requests(500), concurrency)
        for _ in range(rounds):
            noop_rates.append(await calls_per_second(noop.target, requests(calls), concurrency))
            record_rates.append(
                await calls_per_second(service.target, requests(calls), concurrency)
            )
    return UnaryFigures(
        calls * rounds,
        concurrency,
        statistics.median(record_rates),
        statistics.median(noop_rates),
    )


def rows(figures: UnaryFigures) -> list[Row]:
    return [
        Row(
            f"unary RecordUsage, {figures.concurrency} in flight",
            f"{figures.record_per_second:,.0f} calls/s",
            f"no-op call: {figures.noop_per_second:,.0f} calls/s",
            f"{figures.ratio:.2f}",
            f"≥ {RATIO_TARGET} of no-op",
            figures.ratio >= RATIO_TARGET,
        )
    ]


def report(figures: UnaryFigures) -> None:
    print(
        f"unary RecordUsage ({figures.calls:,} calls, {figures.concurrency} in flight,"
        " medians of 3 rounds) on PostgreSQL"
    )
    print(f"  RecordUsage:        {figures.record_per_second:10,.0f} calls/s")
    print(f"  baseline no-op:     {figures.noop_per_second:10,.0f} calls/s")
    print(f"  ratio:              {figures.ratio:10.2f}")
    for row in rows(figures):
        print(f"  {row.verdict()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    report(asyncio.run(measure(args.calls, args.concurrency)))


if __name__ == "__main__":
    main()
