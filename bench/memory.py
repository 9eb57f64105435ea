"""The metering process's peak RSS after ingesting one million events (batches of 1,000) on
PostgreSQL, against its RSS when idle after startup. Target (issue 2): at most 200 MB."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from bench.harness import fresh_database, metering_service
from bench.ingest import build_batches, ingest_rate
from bench.summary import NO_RATIO, Row

LIMIT_MB = 200  # decimal megabytes; RSS is read in MiB


@dataclass
class MemoryFigures:
    events: int
    idle_mb: float
    peak_mb: float


async def measure(events: int) -> MemoryFigures:
    async with fresh_database() as dsn, metering_service(dsn) as service:
        idle = service.peak_rss_mb()
        # Build and send in slices so the client's own memory stays small.
        slice_size = 100_000
        for _ in range(0, events, slice_size):
            await ingest_rate(service.target, build_batches(slice_size, 0.0, 8), 4)
        return MemoryFigures(events, idle, service.peak_rss_mb())


def rows(figures: MemoryFigures) -> list[Row]:
    return [
        Row(
            f"memory: peak RSS after {figures.events:,} events",
            f"{figures.peak_mb:.1f} MiB",
            f"idle after startup: {figures.idle_mb:.1f} MiB",
            NO_RATIO,
            f"≤ {LIMIT_MB} MB",
            figures.peak_mb * 2**20 <= LIMIT_MB * 10**6,
        )
    ]


def report(figures: MemoryFigures) -> None:
    print(f"metering process memory after {figures.events:,} events on PostgreSQL")
    print(f"  idle after startup: {figures.idle_mb:8.1f} MiB")
    print(f"  peak RSS:           {figures.peak_mb:8.1f} MiB")
    for row in rows(figures):
        print(f"  {row.verdict()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    report(asyncio.run(measure(args.events)))


if __name__ == "__main__":
    main()
