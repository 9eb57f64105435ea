"""Every benchmark, one after another, then one table of every target: `make bench`
(PostgreSQL must be running). `--quick` runs each on a tenth of the work or less, to check the
benchmarks themselves rather than the service; its figures are not the ones to publish."""

from __future__ import annotations

import argparse
import asyncio
import os

from bench import billing_run, check_limits, ingest, memory, unary
from bench.summary import Row, print_table

FULL = {
    "ingest_events": 200_000,
    "unary_calls": 10_000,
    "check_calls": 5000,
    "memory": 1_000_000,
    "billing_subscriptions": 10_000,
    "billing_small": 1000,
}
QUICK = {
    "ingest_events": 20_000,
    "unary_calls": 1000,
    "check_calls": 500,
    "memory": 100_000,
    "billing_subscriptions": 500,
    "billing_small": 100,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the code")
    parser.add_argument(
        "--install-h2load",
        action="store_true",
        help="apt-get install nghttp2-client when h2load is not on PATH",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    table: list[Row] = []

    ingest_figures = asyncio.run(ingest.measure(sizes["ingest_events"], 8, os.cpu_count() or 1))
    ingest.report(ingest_figures)
    table += ingest.rows(ingest_figures)
    print()
    unary_figures = asyncio.run(unary.measure(sizes["unary_calls"], 32))
    unary.report(unary_figures)
    table += unary.rows(unary_figures)
    print()
    check_figures = asyncio.run(check_limits.measure(sizes["check_calls"]))
    check_limits.report(check_figures)
    table += check_limits.rows(check_figures)
    print()
    h2load, missing = check_limits.find_h2load(install=args.install_h2load)
    if h2load is None:
        print(f"h2load rows skipped: {missing}")
    else:
        probe = check_limits.H2load(h2load)
        h2load_figures = asyncio.run(check_limits.measure(sizes["check_calls"], probe=probe))
        check_limits.report(h2load_figures, "h2load")
        table += check_limits.rows(h2load_figures, "h2load")
    print()
    memory_figures = asyncio.run(memory.measure(sizes["memory"]))
    memory.report(memory_figures)
    table += memory.rows(memory_figures)
    print()
    billing_figures = asyncio.run(
        billing_run.measure(sizes["billing_subscriptions"], sizes["billing_small"])
    )
    billing_run.report(billing_figures)
    table += billing_run.rows(billing_figures)
    print()
    print("summary" + (" (--quick: sizes reduced, figures not comparable)" if args.quick else ""))
    print_table(table)
    if h2load is None:
        print(f"h2load rows skipped: {missing}")


if __name__ == "__main__":
    main()
