"""Every benchmark, one after another: `make bench` (PostgreSQL must be running)."""

from __future__ import annotations

import asyncio
import os

from bench import check_limits, ingest, memory, unary


def main() -> None:
    ingest.report(asyncio.run(ingest.measure(200_000, 8, os.cpu_count() or 1)))
    print()
    unary.report(asyncio.run(unary.measure(10_000, 32)))
    print()
    check_limits.report(asyncio.run(check_limits.measure(5000)))
    print()
    memory.report(asyncio.run(memory.measure(1_000_000)))


if __name__ == "__main__":
    main()
