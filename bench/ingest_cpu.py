"""CPU per event of batched ingest, in process: RecordUsageBatch through the real
MeteringServicer and use cases on a fresh, migrated PostgreSQL database, without gRPC.

Wall-clock rates swing with whatever else the machine runs; the CPU time of this process
(`time.process_time`: the servicer, the use cases and asyncpg, but not PostgreSQL) does much
less. Each round sends `--batches` batches of `--size` events (the events of `bench.ingest`:
10% re-sent duplicates, 8 organisations) one after the other and reports CPU µs per event; the
best and median rounds are printed. `--profile` adds a cProfile breakdown of one more round.

    .venv/bin/python -m bench.ingest_cpu [--batches 20] [--size 500] [--rounds 5] [--profile]

On a shared machine even CPU time drifts by ±20%. Instruction counts do not: run it under
`valgrind --tool=callgrind` with `--batches 10 --rounds 1` and again with `--rounds 3`, and
divide the difference of the two totals (`summary:` in the callgrind.out files) by 10,000
events (two rounds of 5,000): setup, imports and the warm-up cancel out.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import statistics
import time
from typing import Any

from bench.harness import SECRET, fresh_database
from bench.ingest import build_batches
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge_common.clock import SystemClock
from taskforge_common.db import migrate
from taskforge_common.db.engine import Database
from taskforge_common.grpc import auth
from taskforge_common.page_tokens import PageTokens
from taskforge_metering.application.use_cases import UseCases
from taskforge_metering.storage.unit_of_work import SqlUnitOfWorkFactory
from taskforge_metering.transport.servicer import MeteringServicer

# Unused by a call that succeeds; map_errors needs it only to abort.
_NO_CONTEXT: Any = None


async def send(servicer: MeteringServicer, batches: list[pb.RecordUsageBatchRequest]) -> int:
    """Send `batches` one after the other; answer how many events were new."""
    committed = 0
    for batch in batches:
        response = await servicer.RecordUsageBatch(batch, _NO_CONTEXT)
        for result in response.results:
            if result.error_code:
                raise RuntimeError(f"ingest failed: {result.error_code} {result.error_message}")
            committed += not result.duplicate
    return committed


async def cpu_per_event(
    servicer: MeteringServicer, batches: list[pb.RecordUsageBatchRequest]
) -> tuple[float, float]:
    """CPU µs and wall-clock µs per event sent (duplicates included)."""
    events = sum(len(b.events) for b in batches)
    wall, cpu = time.perf_counter(), time.process_time()
    await send(servicer, batches)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / events * 1e6, wall / events * 1e6


async def measure(batches: int, size: int, rounds: int, profile: bool) -> None:
    events = batches * size
    async with fresh_database() as dsn:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        await asyncio.to_thread(migrate.upgrade, "metering", url)
        database = Database(url)
        try:
            use_cases = UseCases.build(
                SqlUnitOfWorkFactory(database),
                SystemClock(),
                10**9,
                PageTokens.from_secret(SECRET),
            )
            servicer = MeteringServicer(use_cases)
            # What AuthInterceptor sets for a verified token with every scope.
            scopes = frozenset(s.value for s in auth.Scope)
            auth._current_principal.set(auth.Principal("bench", None, scopes))

            def workload() -> list[pb.RecordUsageBatchRequest]:
                # bench.ingest's batch builder, cut into `size`-event batches.
                whole = build_batches(events, duplicate_share=0.1, organizations=8)
                out = []
                for request in whole:
                    for start in range(0, len(request.events), size):
                        part = pb.RecordUsageBatchRequest()
                        part.events.extend(request.events[start : start + size])
                        out.append(part)
                return out

            await send(servicer, workload())  # warm up connections, caches and plans
            gc.freeze()  # as the service does after startup (bootstrap.main)
            cpu: list[float] = []
            wall: list[float] = []
            for _ in range(rounds):
                round_cpu, round_wall = await cpu_per_event(servicer, workload())
                cpu.append(round_cpu)
                wall.append(round_wall)
            print(
                f"RecordUsageBatch in process, {batches} batches x {size} events"
                f" (10% duplicates), {rounds} rounds, PostgreSQL"
            )
            print(
                f"  CPU per event:  best {min(cpu):6.1f} µs, median {statistics.median(cpu):6.1f}"
                f" µs  (rounds: {', '.join(f'{c:.1f}' for c in cpu)})"
            )
            print(
                f"  wall per event: best {min(wall):6.1f} µs, median"
                f" {statistics.median(wall):6.1f} µs (noisy: includes PostgreSQL and others)"
            )
            if profile:
                work = workload()
                profiler = cProfile.Profile()
                profiler.enable()
                await send(servicer, work)
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("tottime").print_stats(30)
                stats.sort_stats("cumulative").print_stats(40)
                print(out.getvalue())
        finally:
            await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(measure(args.batches, args.size, args.rounds, args.profile))


if __name__ == "__main__":
    main()
