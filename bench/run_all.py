"""Every benchmark, one after another: `make bench` (PostgreSQL must be running)."""

from __future__ import annotations

import asyncio
import os
import shutil

from bench import check_limits, ingest, memory, unary


def main() -> None:
    ingest.report(asyncio.run(ingest.measure(200_000, 8, os.cpu_count() or 1)))
    print()
    unary.report(asyncio.run(unary.measure(10_000, 32)))
    print()
    check_limits.report(asyncio.run(check_limits.measure(5000)))
    h2load = shutil.which("h2load")
    if h2load is None:
        print("  (install h2load, Debian's nghttp2-client, for the same figures from a C client)")
    else:
        print()
        probe = check_limits.H2load(h2load)
        check_limits.report(asyncio.run(check_limits.measure(5000, probe=probe)), "h2load")
    print()
    memory.report(asyncio.run(memory.measure(1_000_000)))


if __name__ == "__main__":
    main()
