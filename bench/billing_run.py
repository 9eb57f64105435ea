"""The billing run (RunBillingCycle) on PostgreSQL through the real metering service: period-end
invoices created and finalized per second, against asyncpg COPY of the same invoices and lines
in the same run.

Each size gets fresh PostgreSQL databases for metering and subscriptions, the metering service
as a process (`bench.harness.metering_service`) and the billing run in this process, as the
subscriptions service runs it: `BillingRun` over `SqlUnitOfWorkFactory`, with the real
`MeteringClient` (a `ServiceTokenSource` with the service's scopes) as its usage source, grace 0
(so one run closes every period and finalizes every invoice), `--concurrency` subscriptions
changed at once and `--batch-size` per read and per metering call.

Setup, not timed: N monthly subscriptions (starter, pro and enterprise in turn) whose first
period ended a day or more before the run, written through `SqlSubscriptions.add` in
transactions of 500 (no start invoices: a period-end run never reads them), and usage in every
billed meter inside that period through metering's RecordUsageBatch (batches of 1,000 events):
the six counters once each and storage as two gauge readings. Every invoice so has 7 usage lines
and the next period's fee.

Timed:

1. the run at N (default 10,000): invoices finalized / seconds;
2. the same at N/10 (default 1,000) on fresh databases: its cost per invoice must be within ±20%
   of the large run's (the run scales linearly);
3. an immediate re-run on the large run's data: it must create and finalize nothing, in at most
   0.2 of the first run's time;
4. the baseline: the same invoices and lines, read back from `invoices` and `invoice_lines`,
   written with asyncpg `copy_records_to_table` into empty tables LIKE those INCLUDING ALL (same
   columns, constraints and indexes) in the same database, over `--concurrency` connections at
   once, each copying its share in transactions of `--batch-size` invoices (one COPY of the
   invoices and one of their lines). Target (issue): at least 0.15 of the COPY rate.

Besides the rates it prints where a run's time goes, per invoice: CPU of this process, of the
metering process and of the PostgreSQL backends of the two databases (from /proc), SQL statements
(SQLAlchemy's, counted by an engine event, by kind), transactions, rows written per table, the
time spent in the batch reads and metering calls (no transaction overlaps them), and what the
PostgreSQL backends in a transaction are doing in each phase (sampled from pg_stat_activity every
50 ms: running, waiting for a row lock, or idle in transaction, i.e. waiting for this process).
`--profile` adds a cProfile of an extra run at the small size: top 25 by cumulative time, top 15
by own time and own time summed per package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import asyncpg
import grpc
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.harness import (
    ADMIN_DSN,
    SECRET,
    ServiceProcess,
    Stopwatch,
    admin_metadata,
    fresh_database,
    metering_service,
    stub,
)
from bench.summary import Row
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2
from taskforge_common.clock import SystemClock
from taskforge_common.config import AuthSettings
from taskforge_common.db.engine import Database
from taskforge_common.db.migrate import upgrade
from taskforge_common.grpc.auth import ServiceTokenSource
from taskforge_common.meters import UsageType
from taskforge_common.periods import add_months
from taskforge_subscriptions.application.billing_run import (
    BillingRun,
    BillingSettings,
    RunSummary,
)
from taskforge_subscriptions.application.usage import UsageQuery, UsageStanding
from taskforge_subscriptions.bootstrap import METERING_SCOPES, TOKEN_SUBJECT
from taskforge_subscriptions.clients.metering import MeteringClient
from taskforge_subscriptions.domain.plans import DEFAULT_PLANS, BillingCycle, Tier
from taskforge_subscriptions.domain.subscriptions import (
    PlanSegment,
    Subscription,
    SubscriptionStatus,
)
from taskforge_subscriptions.scheduler import SCHEDULER_CALLER
from taskforge_subscriptions.storage.unit_of_work import (
    SqlReadUnitOfWork,
    SqlUnitOfWork,
    SqlUnitOfWorkFactory,
)

RATIO_TARGET = 0.15
SCALING_TOLERANCE = 0.20
RERUN_SHARE = 0.2
SUBSCRIPTIONS_PER_TRANSACTION = 500
USAGE_BATCH = 1000
USAGE_SENDERS = 4
# A generous deadline: the machine is shared, and a failed call would end the run.
METERING_DEADLINE = 30.0
TAX_RATE = Decimal("0.10")
TIERS = (Tier.STARTER, Tier.PRO, Tier.ENTERPRISE)
# Every billed meter (the ones with a price), with the quantity each organisation used.
COUNTERS = {
    UsageType.JOB_EXECUTION: "1500",
    UsageType.JOB_PROCESSING_TIME: "36000",
    UsageType.WORKER_HOURS: "12.5",
    UsageType.API_CALL: "250000",
    UsageType.DATA_TRANSFER: "3.25",
    UsageType.QUEUE_STORAGE: "40",
}
STORAGE_LEVELS = ("5", "8")  # GB, reported an hour and 15 days into the period
USAGE_LINES = len(COUNTERS) + 1
LINES_PER_INVOICE = USAGE_LINES + 1  # and the next period's fee
WRITTEN_TABLES = (
    "invoices",
    "invoice_lines",
    "subscriptions",
    "credit_balances",
    "sequences",
    "audit_log",
    "events",
    "outbox",
)


# --- Where the time goes. -------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far, from /proc (None: gone or not visible)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _backend_cpu(databases: Sequence[str]) -> dict[int, float]:
    """CPU so far of every PostgreSQL backend connected to `databases` (server on this host)."""
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        pids = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])", list(databases)
        )
    finally:
        await admin.close()
    found = {row["pid"]: _cpu_seconds(row["pid"]) for row in pids}
    return {pid: cpu for pid, cpu in found.items() if cpu is not None}


_STATEMENT_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.IGNORECASE)


def statement_kind(statement: str) -> str:
    """ "INSERT audit_log", "SELECT subscriptions"…: the verb and the first table named."""
    verb = statement.lstrip().split(None, 1)[0].upper()
    table = _STATEMENT_TABLE.search(statement)
    return f"{verb} {table.group(1) if table else '?'}"


@dataclass
class StatementCount:
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def statements(self) -> int:
        return sum(self.kinds.values())

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.kinds[statement_kind(statement)] += 1


@contextlib.contextmanager
def counting_statements() -> Iterator[StatementCount]:
    """Every statement any SQLAlchemy engine sends meanwhile, by kind (the repositories send all
    theirs through SQLAlchemy; BEGIN and COMMIT go to the driver and are counted as
    transactions). An executemany counts once: it is one statement."""
    count = StatementCount()
    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield count
    finally:
        event.remove(Engine, "before_cursor_execute", count)


@dataclass
class Stalls:
    """Time the run spends in its batch reads and metering calls, which no transaction
    overlaps: each batch reads, asks metering, then changes its subscriptions."""

    read_seconds: float = 0.0
    metering_seconds: float = 0.0
    metering_calls: list[float] = field(default_factory=list)  # perf_counter at each call


class TimedReadUnitOfWork(SqlReadUnitOfWork):
    def __init__(self, database: Database, stalls: Stalls) -> None:
        super().__init__(database)
        self._stalls = stalls
        self._started = 0.0

    async def __aenter__(self) -> Self:
        self._started = time.perf_counter()
        return await super().__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, traceback)
        finally:
            self._stalls.read_seconds += time.perf_counter() - self._started


class CountingUnitOfWork:
    """`SqlUnitOfWorkFactory` that counts the transactions it hands out and times the reads."""

    def __init__(self, database: Database, stalls: Stalls) -> None:
        self._inner = SqlUnitOfWorkFactory(database)
        self._database = database
        self._stalls = stalls
        self.transactions = 0
        self.reads = 0

    def __call__(self) -> SqlUnitOfWork:
        self.transactions += 1
        return self._inner()

    def reader(self) -> SqlReadUnitOfWork:
        self.reads += 1
        return TimedReadUnitOfWork(self._database, self._stalls)


class TimedUsage:
    """The metering client as the run's `UsageSource`, each call timed."""

    def __init__(self, client: MeteringClient, stalls: Stalls) -> None:
        self._client = client
        self._stalls = stalls

    async def summaries(self, queries: Sequence[UsageQuery]) -> list[Mapping[UsageType, Decimal]]:
        started = time.perf_counter()
        self._stalls.metering_calls.append(started)
        try:
            return await self._client.summaries(queries)
        finally:
            self._stalls.metering_seconds += time.perf_counter() - started

    async def standing(self, organization_id: str) -> UsageStanding:
        return await self._client.standing(organization_id)


class BackendSampler:
    """What the PostgreSQL backends of one database are doing, sampled every 50 ms in each
    phase of the run: running, waiting for a lock (which kind), or idle in a transaction
    (waiting for this process)."""

    QUERY = (
        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
        " WHERE datname = $1 AND backend_type = 'client backend' AND state <> 'idle'"
    )

    def __init__(self, database_name: str, phase: Callable[[], str]) -> None:
        self._database_name = database_name
        self._phase = phase
        self.samples: Counter[str] = Counter()
        self.states: dict[str, Counter[str]] = {}

    async def _sample(self, connection: asyncpg.Connection) -> None:
        while True:
            phase = self._phase()
            states = self.states.setdefault(phase, Counter())
            for row in await connection.fetch(self.QUERY, self._database_name):
                if row["state"] == "idle in transaction":
                    states["idle in transaction"] += 1
                elif row["wait_event_type"] == "Lock":
                    states[f"waiting for a lock ({row['wait_event']})"] += 1
                elif row["wait_event_type"] is None:
                    states["running"] += 1
                else:
                    states[f"{row['wait_event_type']}: {row['wait_event']}"] += 1
            self.samples[phase] += 1
            await asyncio.sleep(0.05)

    @contextlib.asynccontextmanager
    async def sampling(self) -> AsyncIterator[BackendSampler]:
        connection = await asyncpg.connect(ADMIN_DSN)
        task = asyncio.create_task(self._sample(connection))
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await connection.close()

    def average(self) -> dict[str, dict[str, float]]:
        """Per phase, the backends in each state on average, most frequent first."""
        return {
            phase: {state: count / self.samples[phase] for state, count in states.most_common()}
            for phase, states in self.states.items()
        }


@dataclass
class RunFigures:
    subscriptions: int
    summary: RunSummary
    seconds: float
    # CPU seconds over the run.
    billing_cpu: float
    metering_cpu: float
    postgres_cpu: float | None
    statements: Counter[str]
    transactions: int
    reads: int
    stalls: Stalls
    # The seconds from the start to the first finalization batch's metering call.
    close_seconds: float
    backends: dict[str, dict[str, float]]
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def finalized(self) -> int:
        return self.summary.invoices_finalized

    @property
    def per_second(self) -> float:
        return self.finalized / self.seconds

    @property
    def ms_per_invoice(self) -> float:
        return 1000 * self.seconds / self.finalized


@dataclass
class BillingFigures:
    concurrency: int
    batch_size: int
    large: RunFigures
    small: RunFigures
    rerun: RunFigures
    copy_invoices: int
    copy_lines: int
    copy_per_second: float
    profile: str | None = None

    @property
    def ratio(self) -> float:
        return self.large.per_second / self.copy_per_second

    @property
    def scaling(self) -> float:
        """The small run's cost per invoice over the large run's."""
        return self.small.ms_per_invoice / self.large.ms_per_invoice

    @property
    def rerun_share(self) -> float:
        return self.rerun.seconds / self.large.seconds


# --- Setup. -----------------------------------------------------------------------------------


@dataclass
class Fixture:
    database: Database
    dsn: str
    database_names: tuple[str, str]
    metering: ServiceProcess
    as_of: datetime
    organizations: list[str]


def _subscription(organization_id: str, tier: Tier, anchor: datetime) -> Subscription:
    plan = DEFAULT_PLANS[tier]
    assert plan.price_per_month is not None
    return Subscription(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        tier=tier,
        status=SubscriptionStatus.ACTIVE,
        cycle=BillingCycle.MONTHLY,
        auto_renew=True,
        cancel_at_period_end=False,
        price_per_month=plan.price_per_month,
        currency=plan.currency,
        limits=plan.limits,
        anchor=anchor,
        period_index=0,
        created_at=anchor,
        updated_at=anchor,
    )


async def add_subscriptions(
    database: Database, organizations: Sequence[str], anchors: Sequence[datetime]
) -> None:
    """Through the repository, 500 per transaction, four transactions at once."""
    factory = SqlUnitOfWorkFactory(database)
    slots = asyncio.Semaphore(4)

    async def chunk(first: int) -> None:
        async with slots, factory() as uow:
            for n in range(first, min(first + SUBSCRIPTIONS_PER_TRANSACTION, len(organizations))):
                tier = TIERS[n % len(TIERS)]
                subscription = _subscription(organizations[n], tier, anchors[n])
                segment = PlanSegment(
                    anchors[n], None, tier, subscription.price_per_month, subscription.limits
                )
                if not await uow.subscriptions.add(subscription, segment):
                    raise RuntimeError("setup: a second live subscription")
            await uow.commit()

    await asyncio.gather(
        *(chunk(first) for first in range(0, len(organizations), SUBSCRIPTIONS_PER_TRANSACTION))
    )


def _event(
    organization_id: str, usage_type: UsageType, quantity: str, at: datetime, key: str
) -> usage_pb2.UsageEvent:
    message = usage_pb2.UsageEvent(
        organization_id=organization_id,
        usage_type=f"USAGE_TYPE_{usage_type.name}",
        quantity=quantity,
        idempotency_key=key,
    )
    message.timestamp.FromDatetime(at)
    return message


def usage_events(organizations: Sequence[str], anchors: Sequence[datetime]) -> list[Any]:
    events = []
    for organization_id, anchor in zip(organizations, anchors, strict=True):
        for n, (usage_type, quantity) in enumerate(COUNTERS.items()):
            at = anchor + timedelta(hours=2, minutes=n)
            events.append(_event(organization_id, usage_type, quantity, at, usage_type.value))
        for n, (offset, level) in enumerate(
            zip((timedelta(hours=1), timedelta(days=15)), STORAGE_LEVELS, strict=True)
        ):
            at = anchor + offset
            events.append(_event(organization_id, UsageType.STORAGE, level, at, f"storage-{n}"))
    return events


async def record_usage(target: str, events: Sequence[Any]) -> None:
    """RecordUsageBatch of 1,000 events a call, four callers at once; every event must store."""
    metadata = admin_metadata()
    batches = iter(range(0, len(events), USAGE_BATCH))

    async def sender() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            client = stub(channel)
            for first in batches:
                request = pb.RecordUsageBatchRequest(events=events[first : first + USAGE_BATCH])
                response = await client.RecordUsageBatch(request, metadata=metadata, timeout=120)
                for result in response.results:
                    if result.error_code or result.duplicate:
                        raise RuntimeError(f"setup: usage not stored: {result}")

    await asyncio.gather(*(sender() for _ in range(USAGE_SENDERS)))


@contextlib.asynccontextmanager
async def billing_fixture(subscriptions: int, pool_size: int) -> AsyncIterator[Fixture]:
    """Fresh databases, the metering service, N subscriptions whose first period has ended and
    their usage in it."""
    as_of = datetime.now(UTC).replace(microsecond=0)
    # Anchors spread over a day, all periods ending at least a day before `as_of`.
    base = add_months(as_of - timedelta(days=2), -1)
    anchors = [
        base - timedelta(seconds=(n * 86_400) // subscriptions) for n in range(subscriptions)
    ]
    organizations = [str(uuid.uuid4()) for _ in range(subscriptions)]
    async with (
        fresh_database() as metering_dsn,
        fresh_database() as dsn,
        metering_service(metering_dsn) as metering,
    ):
        url = dsn.replace("postgresql://", "postgresql+asyncpg://")
        await asyncio.to_thread(upgrade, "subscriptions", url)
        database = Database(url, pool_size=pool_size)
        try:
            await add_subscriptions(database, organizations, anchors)
            await record_usage(metering.target, usage_events(organizations, anchors))
            names = (metering_dsn.rsplit("/", 1)[1], dsn.rsplit("/", 1)[1])
            yield Fixture(database, dsn, names, metering, as_of, organizations)
        finally:
            await database.dispose()


# --- The run and the baseline. ----------------------------------------------------------------


async def billing_run(
    fixture: Fixture, settings: BillingSettings, profiler: cProfile.Profile | None = None
) -> RunFigures:
    stalls = Stalls()
    factory = CountingUnitOfWork(fixture.database, stalls)
    tokens = ServiceTokenSource(AuthSettings(jwt_secret=SECRET), TOKEN_SUBJECT, METERING_SCOPES)
    metering = MeteringClient.connect(fixture.metering.target, tokens, deadline=METERING_DEADLINE)
    # The close phase makes one metering call per batch of due subscriptions; the next call
    # is the finalization's first.
    close_batches = -(-len(fixture.organizations) // settings.batch_size)

    def phase() -> str:
        return "closing" if len(stalls.metering_calls) <= close_batches else "finalizing"

    sampler = BackendSampler(fixture.database_names[1], phase)
    try:
        run = BillingRun(factory, TimedUsage(metering, stalls), SystemClock(), settings)
        backends_before = await _backend_cpu(fixture.database_names)
        metering_before = _cpu_seconds(fixture.metering.process.pid) or 0.0
        async with sampler.sampling():
            with counting_statements() as count:
                cpu_before = time.process_time()
                if profiler is not None:
                    profiler.enable()
                with Stopwatch() as watch:
                    summary = await run.run(fixture.as_of, SCHEDULER_CALLER)
                if profiler is not None:
                    profiler.disable()
                billing_cpu = time.process_time() - cpu_before
        metering_cpu = (_cpu_seconds(fixture.metering.process.pid) or 0.0) - metering_before
        backends_after = await _backend_cpu(fixture.database_names)
    finally:
        await metering.close()
    postgres_cpu: float | None = None
    if backends_after:
        postgres_cpu = sum(
            cpu - backends_before.get(pid, 0.0) for pid, cpu in backends_after.items()
        )
    calls = stalls.metering_calls
    close_seconds = (
        calls[close_batches] - watch.start if len(calls) > close_batches else watch.seconds
    )
    return RunFigures(
        len(fixture.organizations),
        summary,
        watch.seconds,
        billing_cpu,
        metering_cpu,
        postgres_cpu,
        count.kinds,
        factory.transactions,
        factory.reads,
        stalls,
        close_seconds,
        sampler.average(),
    )


async def table_rows(dsn: str) -> dict[str, int]:
    connection = await asyncpg.connect(dsn)
    try:
        return {
            table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
            for table in WRITTEN_TABLES
        }
    finally:
        await connection.close()


def check_run(figures: RunFigures) -> None:
    """The run did what it should, or its figures mean nothing."""
    summary, n = figures.summary, figures.subscriptions
    if (summary.invoices_created, summary.invoices_finalized, summary.invoices_held) != (n, n, 0):
        raise RuntimeError(f"the run of {n:,} subscriptions did not bill each once: {summary}")
    lines = figures.rows.get("invoice_lines")
    if lines is not None and lines != n * LINES_PER_INVOICE:
        raise RuntimeError(f"{lines:,} invoice lines, not {LINES_PER_INVOICE} per invoice")


async def copy_rate(dsn: str, connections: int, batch: int) -> tuple[int, int, float]:
    """COPY the period-end invoices and their lines, as stored, into empty tables LIKE theirs
    INCLUDING ALL; each of `connections` copies its share, `batch` invoices per transaction.
    Answers (invoices, lines, invoices/s)."""
    pool = [await asyncpg.connect(dsn) for _ in range(connections)]
    try:
        first = pool[0]
        invoices = [
            tuple(row)
            for row in await first.fetch(
                "SELECT * FROM invoices WHERE kind = 'period_end' ORDER BY id"
            )
        ]
        lines: dict[str, list[tuple[Any, ...]]] = {}
        for row in await first.fetch(
            "SELECT l.* FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
            " WHERE i.kind = 'period_end' ORDER BY l.invoice_id, l.position"
        ):
            lines.setdefault(row["invoice_id"], []).append(tuple(row))
        await first.execute("CREATE TABLE copy_invoices (LIKE invoices INCLUDING ALL)")
        await first.execute("CREATE TABLE copy_invoice_lines (LIKE invoice_lines INCLUDING ALL)")
        share = -(-len(invoices) // connections)

        async def copier(connection: asyncpg.Connection, own: list[tuple[Any, ...]]) -> None:
            for start in range(0, len(own), batch):
                chunk = own[start : start + batch]
                async with connection.transaction():
                    await connection.copy_records_to_table("copy_invoices", records=chunk)
                    await connection.copy_records_to_table(
                        "copy_invoice_lines",
                        records=[line for invoice in chunk for line in lines[invoice[0]]],
                    )

        with Stopwatch() as watch:
            await asyncio.gather(
                *(
                    copier(connection, invoices[n * share : (n + 1) * share])
                    for n, connection in enumerate(pool)
                )
            )
        return len(invoices), sum(len(own) for own in lines.values()), len(invoices) / watch.seconds
    finally:
        for connection in pool:
            await connection.close()


WAITING = "waiting in epoll"
# Where a function's own time is counted: the first of these its file's path contains.
PACKAGES = (
    ("sqlalchemy", "/sqlalchemy/"),
    ("asyncpg", "/asyncpg/"),
    ("grpc and protobuf", "/grpc"),
    ("grpc and protobuf", "/google/protobuf/"),
    ("grpc and protobuf", "_pb2"),
    ("taskforge_common.jsonsafe (JSON-safe payloads)", "jsonsafe.py"),
    ("taskforge_common (other)", "taskforge_common"),
    ("subscriptions: storage (row mapping)", "taskforge_subscriptions/storage"),
    ("subscriptions: application", "taskforge_subscriptions/application"),
    ("subscriptions: domain (rating, totals)", "taskforge_subscriptions/domain"),
    ("subscriptions: clients (metering mapping)", "taskforge_subscriptions/clients"),
    ("asyncio", "/asyncio/"),
    ("socket sends", "_socket."),
    (WAITING, "epoll"),
    ("decimal", "decimal.Decimal"),
    ("datetime", "datetime."),
    ("greenlet", "greenlet"),
    ("dataclasses, copy (asdict)", "dataclasses.py"),
    ("dataclasses, copy (asdict)", "copy.py"),
    ("json", "/json/"),
)


def own_time_by_package(stats: pstats.Stats, invoices: int) -> str:
    """The profile's own times summed per package, per invoice; the time the event loop waits
    in epoll (for PostgreSQL, metering or a lock) is left out."""
    totals: Counter[str] = Counter()
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        place = filename if filename != "~" else function
        bucket = next((name for name, part in PACKAGES if part in place), None)
        if bucket is None:
            bucket = "other builtins (isinstance, getattr…)" if filename == "~" else "other"
        totals[bucket] += own
    totals.pop(WAITING, None)
    whole = sum(totals.values())
    lines = [
        f"own CPU by package, per invoice (profiled; {1e6 * whole / invoices:,.0f} µs in all):"
    ]
    lines += [
        f"  {1e6 * own / invoices:8,.0f} µs  {own / whole:4.0%}  {name}"
        for name, own in totals.most_common()
    ]
    return "\n".join(lines) + "\n"


def _settings(concurrency: int, batch_size: int) -> BillingSettings:
    return BillingSettings(
        invoice_grace=timedelta(0),
        suspension_grace=timedelta(days=14),
        default_tax_rate=TAX_RATE,
        batch_size=batch_size,
        concurrency=concurrency,
    )


async def measure(
    subscriptions: int,
    small: int,
    concurrency: int = 8,
    batch_size: int = 200,
    *,
    profile: bool = False,
) -> BillingFigures:
    settings = _settings(concurrency, batch_size)
    # Room for every concurrent transaction and the run's reads beside them.
    pool_size = max(10, concurrency + 2)
    async with billing_fixture(subscriptions, pool_size) as fixture:
        large = await billing_run(fixture, settings)
        large.rows = await table_rows(fixture.dsn)
        check_run(large)
        rerun = await billing_run(fixture, settings)
        copied, copied_lines, copy_per_second = await copy_rate(
            fixture.dsn, concurrency, batch_size
        )
    async with billing_fixture(small, pool_size) as fixture:
        small_run = await billing_run(fixture, settings)
        small_run.rows = await table_rows(fixture.dsn)
        check_run(small_run)
    profile_text = None
    if profile:
        async with billing_fixture(small, pool_size) as fixture:
            profiler = cProfile.Profile()
            await billing_run(fixture, settings, profiler)
        out = io.StringIO()
        out.write(
            "(cumulative times add up wrongly across SQLAlchemy's greenlet switches and include"
            " time this process lost its core; own times are the ones to read)\n"
        )
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(15)
        out.write(own_time_by_package(stats, small))
        profile_text = out.getvalue()
    return BillingFigures(
        concurrency,
        batch_size,
        large,
        small_run,
        rerun,
        copied,
        copied_lines,
        copy_per_second,
        profile_text,
    )


# --- Report. ----------------------------------------------------------------------------------


def rows(figures: BillingFigures) -> list[Row]:
    large, small, rerun = figures.large, figures.small, figures.rerun
    label = f"billing run, {large.subscriptions:,} subscriptions, concurrency {figures.concurrency}"
    rerun_clean = rerun.summary.invoices_created == 0 and rerun.summary.invoices_finalized == 0
    return [
        Row(
            label,
            f"{large.per_second:,.0f} invoices/s",
            f"COPY over {figures.concurrency} connections: {figures.copy_per_second:,.0f}"
            " invoices/s",
            f"{figures.ratio:.3f}",
            f"≥ {RATIO_TARGET} of COPY",
            figures.ratio >= RATIO_TARGET,
        ),
        Row(
            f"billing run, {small.subscriptions:,} subscriptions",
            f"{small.ms_per_invoice:.2f} ms/invoice ({small.per_second:,.0f}/s)",
            f"{large.subscriptions:,}: {large.ms_per_invoice:.2f} ms/invoice",
            f"{figures.scaling:.2f}",
            f"within ±{SCALING_TOLERANCE:.0%}",
            abs(figures.scaling - 1) <= SCALING_TOLERANCE,
        ),
        Row(
            "billing re-run, nothing due",
            f"{rerun.seconds:.3f} s, {rerun.summary.invoices_created} created,"
            f" {rerun.summary.invoices_finalized} finalized",
            f"first run: {large.seconds:.2f} s",
            f"{figures.rerun_share:.3f}",
            f"≤ {RERUN_SHARE} and creates nothing",
            rerun_clean and figures.rerun_share <= RERUN_SHARE,
        ),
    ]


def _costs(name: str, run: RunFigures) -> None:
    n = run.finalized
    pad = " " * len(name)
    postgres = "n/a" if run.postgres_cpu is None else f"{1_000_000 * run.postgres_cpu / n:,.0f} µs"
    print(
        f"  {name} per invoice: {run.ms_per_invoice:.2f} ms of wall time; CPU: billing process"
        f" {1_000_000 * run.billing_cpu / n:,.0f} µs,"
        f" metering {1_000_000 * run.metering_cpu / n:,.0f} µs, PostgreSQL {postgres}"
    )
    stalls = run.stalls
    print(
        f"  {pad} phases: closing periods {run.close_seconds:.2f} s, finalizing"
        f" {run.seconds - run.close_seconds:.2f} s; no transaction runs during the batch reads"
        f" ({stalls.read_seconds:.2f} s) and the {len(stalls.metering_calls)} metering calls"
        f" ({stalls.metering_seconds:.2f} s)"
    )
    for phase, backends in run.backends.items():
        states = ", ".join(
            f"{state} {count:.1f}" for state, count in backends.items() if count >= 0.05
        )
        print(f"  {pad} PostgreSQL backends in a transaction, on average, {phase}: {states}")
    statements = sum(run.statements.values())
    kinds = ", ".join(f"{kind} {count / n:.2g}" for kind, count in run.statements.most_common())
    print(
        f"  {pad} {statements / n:.1f} SQL statements and {run.transactions / n:.2f} transactions"
        f" (BEGIN and COMMIT: 2 round trips more each), {run.reads / n:.3f} read scopes: {kinds}"
    )
    if run.rows:
        written = ", ".join(f"{table} {count / n:.3g}" for table, count in run.rows.items())
        print(f"  {pad} rows in the tables afterwards, per invoice: {written}")


def report(figures: BillingFigures) -> None:
    large, small, rerun = figures.large, figures.small, figures.rerun
    print(
        "billing run (RunBillingCycle: close every due period, finalize at once) on PostgreSQL,"
        f" usage from the metering service; concurrency {figures.concurrency}, batch"
        f" {figures.batch_size}"
    )
    for run in (large, small):
        print(
            f"  {run.subscriptions:>6,} subscriptions: {run.per_second:10,.0f} invoices/s"
            f" ({run.finalized:,} created and finalized in {run.seconds:.2f} s,"
            f" {run.ms_per_invoice:.2f} ms each)"
        )
    print(
        f"  per-invoice cost {small.subscriptions:,} / {large.subscriptions:,}:"
        f" {figures.scaling:.2f}"
    )
    print(
        f"  re-run at once:     {rerun.seconds:10.3f} s ({rerun.summary.invoices_created} created,"
        f" {rerun.summary.invoices_finalized} finalized; {figures.rerun_share:.3f} of the first"
        " run)"
    )
    print(
        f"  baseline COPY:      {figures.copy_per_second:10,.0f} invoices/s: asyncpg COPY of the"
        f" same {figures.copy_invoices:,} invoices and {figures.copy_lines:,} lines over"
        f" {figures.concurrency} connections at once, {figures.batch_size} invoices per"
        " transaction, into tables LIKE invoices / invoice_lines INCLUDING ALL"
    )
    print(f"  ratio:              {figures.ratio:10.3f}  (run / COPY)")
    _costs(f"{large.subscriptions:,} run", large)
    _costs(f"{small.subscriptions:,} run", small)
    for row in rows(figures):
        print(f"  {row.verdict()}")
    if figures.profile is not None:
        print(f"cProfile of a {small.subscriptions:,}-subscription run (not the timed one):")
        print(figures.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument(
        "--small", type=int, default=None, help="the second size (default: a tenth)"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="500 and 100 subscriptions")
    parser.add_argument("--profile", action="store_true", help="cProfile a small-size run")
    args = parser.parse_args()
    large = 500 if args.quick else args.subscriptions
    small = 100 if args.quick else (args.small or max(1, large // 10))
    figures = asyncio.run(
        measure(large, small, args.concurrency, args.batch_size, profile=args.profile)
    )
    report(figures)


if __name__ == "__main__":
    main()
