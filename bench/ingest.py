"""Batched ingest with deduplication, events/s committed, against raw asyncpg COPY into an
identical table (same columns, constraints and indexes) in the same run, on PostgreSQL.

The service runs once with one worker process and once with `--workers` (default: one per
core); each sender has its own connection, as separate callers do, so the kernel spreads them
over the workers. The COPY baseline writes the same number of rows in the same batches over as
many connections at once as the service has callers, so both sides get the same parallelism
from PostgreSQL. Targets (issue 2): at least 25,000 events/s and at least 0.5 of the COPY rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import grpc

from bench.harness import Stopwatch, admin_metadata, fresh_database, metering_service, stub
from bench.summary import NO_RATIO, Row
from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2

BATCH = 1000
RATIO_TARGET = 0.5
RATE_TARGET = 25_000


@dataclass
class IngestFigures:
    events: int
    callers: int
    workers: int
    one_worker_per_second: float
    committed_per_second: float
    copy_per_second: float

    @property
    def ratio(self) -> float:
        return self.committed_per_second / self.copy_per_second


def build_batches(
    events: int, duplicate_share: float, organizations: int
) -> list[pb.RecordUsageBatchRequest]:
    """Batches of new events where every tenth one also re-sends an event already sent."""
    orgs = [str(uuid.uuid4()) for _ in range(organizations)]
    sent: list[usage_pb2.UsageEvent] = []
    batches = []
    every = round(1 / duplicate_share) if duplicate_share else 0
    for start in range(0, events, BATCH):
        request = pb.RecordUsageBatchRequest()
        for n in range(start, min(start + BATCH, events)):
            if every and n % every == every - 1 and sent:
                request.events.append(sent[n // 2])
                continue
            event = usage_pb2.UsageEvent(
                organization_id=orgs[(n // BATCH) % organizations],
                usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
                quantity="1",
                idempotency_key=f"job-{n}",
                metadata={"queue": "default", "worker": f"w{n % 16}"},
            )
            sent.append(event)
            request.events.append(event)
        batches.append(request)
    return batches


async def ingest_rate(
    target: str, batches: list[pb.RecordUsageBatchRequest], concurrency: int
) -> tuple[int, float]:
    metadata = admin_metadata()
    queue: asyncio.Queue[pb.RecordUsageBatchRequest] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    committed = 0

    async def sender(channel: grpc.aio.Channel) -> None:
        nonlocal committed
        client = stub(channel)
        while not queue.empty():
            response = await client.RecordUsageBatch(
                queue.get_nowait(), metadata=metadata, timeout=60
            )
            errors = [r for r in response.results if r.error_code]
            if errors:
                raise RuntimeError(
                    f"ingest failed: {errors[0].error_code} {errors[0].error_message}"
                )
            committed += sum(1 for r in response.results if not r.duplicate)

    # A local subchannel pool: otherwise gRPC shares one connection among channels to a target.
    separate = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=separate) for _ in range(concurrency)]
    try:
        with Stopwatch() as watch:
            await asyncio.gather(*(sender(channel) for channel in channels))
    finally:
        for channel in channels:
            await channel.close(None)
    return committed, committed / watch.seconds


async def copy_rate(dsn: str, rows: int, connections: int) -> float:
    """COPY the same number of rows, 1,000 per statement (each its own transaction), into a
    table LIKE usage_records INCLUDING ALL, `connections` connections copying at once."""
    pool = [await asyncpg.connect(dsn) for _ in range(connections)]
    try:
        await pool[0].execute("CREATE TABLE copy_baseline (LIKE usage_records INCLUDING ALL)")
        org = str(uuid.uuid4())
        now = datetime.now(UTC)
        metadata = json.dumps({"queue": "default", "worker": "w1"})
        records = [
            (
                str(uuid.uuid4()),
                org,
                "job_execution",
                Decimal(1),
                now,
                f"job-{n}",
                "0" * 64,
                metadata,
                now,
            )
            for n in range(rows)
        ]
        batches = iter(range(0, rows, BATCH))

        async def copier(connection: asyncpg.Connection) -> None:
            for start in batches:
                await connection.copy_records_to_table(
                    "copy_baseline", records=records[start : start + BATCH]
                )

        with Stopwatch() as watch:
            await asyncio.gather(*(copier(connection) for connection in pool))
        return rows / watch.seconds
    finally:
        for connection in pool:
            await connection.close()


async def measure(events: int, concurrency: int, workers: int) -> IngestFigures:
    rates: dict[int, float] = {}
    async with fresh_database() as dsn:
        for count in sorted({1, workers}):
            async with metering_service(dsn, workers=count) as service:
                # Warm up every worker's connections and caches with other organisations' events.
                warm_up = build_batches(2 * concurrency * BATCH, 0.0, concurrency)
                await ingest_rate(service.target, warm_up, concurrency)
                batches = build_batches(events, duplicate_share=0.1, organizations=8)
                committed, rates[count] = await ingest_rate(service.target, batches, concurrency)
        baseline = await copy_rate(dsn, committed, concurrency)
    return IngestFigures(committed, concurrency, workers, rates[1], rates[workers], baseline)


def rows(figures: IngestFigures) -> list[Row]:
    workers = f"{figures.workers} worker" + ("s" if figures.workers > 1 else "")
    label = f"ingest, {figures.callers} callers, {workers}"
    measured = f"{figures.committed_per_second:,.0f} events/s"
    return [
        Row(
            label,
            measured,
            f"COPY over {figures.callers} connections: {figures.copy_per_second:,.0f} rows/s",
            f"{figures.ratio:.2f}",
            f"≥ {RATIO_TARGET} of COPY",
            figures.ratio >= RATIO_TARGET,
        ),
        Row(
            label,
            measured,
            NO_RATIO,
            NO_RATIO,
            f"≥ {RATE_TARGET:,} events/s",
            figures.committed_per_second >= RATE_TARGET,
        ),
    ]


def report(figures: IngestFigures) -> None:
    print(
        f"batched ingest (RecordUsageBatch x{BATCH:,}, 10% duplicates, {figures.callers} callers,"
        " one connection each) on PostgreSQL"
    )
    print(
        f"  1 worker:           {figures.one_worker_per_second:10,.0f} events/s committed"
        f" ({figures.events:,} events)"
    )
    if figures.workers > 1:
        print(
            f"  {figures.workers} workers:          {figures.committed_per_second:10,.0f}"
            f" events/s committed (TASKFORGE_METERING_WORKERS={figures.workers})"
        )
    print(
        f"  baseline COPY:      {figures.copy_per_second:10,.0f} rows/s: asyncpg COPY of the same"
        f" {figures.events:,} rows, {BATCH:,} per COPY, over {figures.callers} connections at"
        " once, into a table LIKE usage_records INCLUDING ALL"
    )
    print(f"  ratio:              {figures.ratio:10.2f}  ({figures.workers} worker(s) / COPY)")
    for row in rows(figures):
        print(f"  {row.verdict()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    report(asyncio.run(measure(args.events, args.concurrency, args.workers)))


if __name__ == "__main__":
    main()
