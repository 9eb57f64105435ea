"""The use cases on the real SQL storage, PostgreSQL and SQLite, through the real migrations."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Table, func, select

from taskforge_common.clock import ManualClock
from taskforge_common.db.engine import Database
from taskforge_common.errors import (
    AlreadyExists,
    InvalidArgument,
    PreconditionFailed,
    Unavailable,
)
from taskforge_common.meters import UsageType
from taskforge_common.page_tokens import PageTokens
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ingest import UsageEventInput
from taskforge_metering.application.use_cases import UseCases
from taskforge_metering.domain.entitlements import Entitlements, EntitlementStatus
from taskforge_metering.storage import tables
from taskforge_metering.storage.repository import MeteringRepository
from taskforge_metering.storage.repository_postgres import PostgresMeteringRepository
from taskforge_metering.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.metering.inputs import timestamp_parts

OPERATOR = Caller("operator")
PAGE_TOKENS = PageTokens(b"page tokens of the tests")
ANCHOR = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)


def org() -> str:
    return str(uuid.uuid4())


class Metering:
    """The use cases wired to one database, as the service wires them."""

    def __init__(self, database: Database, clock: ManualClock) -> None:
        use_cases = UseCases.build(SqlUnitOfWorkFactory(database), clock, 1_000_000, PAGE_TOKENS)
        self.database = database
        self.ingest = use_cases.ingest
        self.limits = use_cases.limits
        self.reservations = use_cases.reservations
        self.entitlements = use_cases.entitlements
        self.queries = use_cases.queries


@pytest.fixture
def metering(metering_database: Database, clock: ManualClock) -> Metering:
    return Metering(metering_database, clock)


def event(
    organization_id: str,
    usage_type: UsageType,
    quantity: str,
    key: str | None = None,
    timestamp: datetime | None = None,
) -> UsageEventInput:
    return UsageEventInput(
        organization_id=organization_id,
        usage_type=usage_type,
        quantity=quantity,
        timestamp=None if timestamp is None else timestamp_parts(timestamp),
        idempotency_key=key or str(uuid.uuid4()),
    )


async def grant(metering: Metering, organization_id: str, version: int = 1, **limits: str) -> None:
    await metering.entitlements.upsert(
        Entitlements(
            organization_id=organization_id,
            status=EntitlementStatus.ACTIVE,
            version=version,
            tier="starter",
            billing_cycle="monthly",
            period_anchor=ANCHOR,
            limits={UsageType(k): Decimal(v) for k, v in limits.items()},
        ),
        OPERATOR,
    )


async def count_rows(database: Database, table: Table) -> int:
    async with database.transaction() as transaction:
        return int(
            (
                await transaction.session.execute(select(func.count()).select_from(table))
            ).scalar_one()
        )


async def test_duplicate_is_answered_with_the_original_and_counted_once(metering: Metering) -> None:
    o = org()
    first = await metering.ingest.record(event(o, UsageType.JOB_EXECUTION, "3", "k1"), OPERATOR)
    again = await metering.ingest.record(event(o, UsageType.JOB_EXECUTION, "3.000", "k1"), OPERATOR)
    assert again.duplicate
    assert not first.duplicate
    assert again.record is not None
    assert first.record is not None
    assert again.record.id == first.record.id
    with pytest.raises(AlreadyExists):
        await metering.ingest.record(event(o, UsageType.JOB_EXECUTION, "4", "k1"), OPERATOR)
    usage = await metering.queries.current_usage(o, OPERATOR)
    assert usage.snapshot.counters[UsageType.JOB_EXECUTION] == Decimal(3)
    assert await count_rows(metering.database, tables.usage_records) == 1


async def test_batch_bad_event_fails_alone_and_writes_nothing(metering: Metering) -> None:
    o = org()
    results = await metering.ingest.record_batch(
        [
            event(o, UsageType.API_CALL, "1", "a"),
            event(o, UsageType.API_CALL, "-1", "b"),
            event(o, UsageType.API_CALL, "2", "c"),
            event(o, UsageType.API_CALL, "1", "a"),
        ],
        OPERATOR,
    )
    assert [r.error.status if r.error else "OK" for r in results] == [
        "OK",
        "INVALID_ARGUMENT",
        "OK",
        "OK",
    ]
    assert results[3].duplicate
    assert await count_rows(metering.database, tables.usage_records) == 2
    usage = await metering.queries.current_usage(o, OPERATOR)
    assert usage.snapshot.counters[UsageType.API_CALL] == Decimal(3)


async def test_exact_decimals_survive_storage(metering: Metering) -> None:
    o = org()
    quantities = ["0.000001", "999999999999.999999", "0.1", "0.2"]
    await metering.ingest.record_batch(
        [event(o, UsageType.DATA_TRANSFER, q) for q in quantities], OPERATOR
    )
    usage = await metering.queries.current_usage(o, OPERATOR)
    assert usage.snapshot.counters[UsageType.DATA_TRANSFER] == sum(Decimal(q) for q in quantities)


async def test_closed_period_is_rejected(metering: Metering, clock: ManualClock) -> None:
    o = org()
    await metering.entitlements.upsert(
        Entitlements(
            organization_id=o,
            status=EntitlementStatus.ACTIVE,
            version=1,
            period_anchor=ANCHOR,
            usage_closed_before=clock.now() - timedelta(days=1),
        ),
        OPERATOR,
    )
    late = event(o, UsageType.JOB_EXECUTION, "1", timestamp=clock.now() - timedelta(days=2))
    with pytest.raises(PreconditionFailed):
        await metering.ingest.record(late, OPERATOR)
    assert await count_rows(metering.database, tables.usage_records) == 0


async def test_limits_read_their_writes_and_thresholds_fire_once(metering: Metering) -> None:
    o = org()
    await grant(metering, o, job_execution="10")
    for _ in range(7):
        await metering.ingest.record(event(o, UsageType.JOB_EXECUTION, "1"), OPERATOR)
    decision = await metering.limits.check(o, UsageType.JOB_EXECUTION, "3", OPERATOR)
    assert decision.allowed
    await metering.ingest.record(event(o, UsageType.JOB_EXECUTION, "1"), OPERATOR)
    decision = await metering.limits.check(o, UsageType.JOB_EXECUTION, "3", OPERATOR)
    assert not decision.allowed
    assert decision.statuses[0].current == Decimal(8)
    for _ in range(4):
        await metering.ingest.record(event(o, UsageType.JOB_EXECUTION, "1"), OPERATOR)
    async with metering.database.transaction() as transaction:
        rows = (
            (await transaction.session.execute(select(tables.outbox_events.c.payload)))
            .scalars()
            .all()
        )
    assert sorted(p["threshold_percent"] for p in rows) == [80, 100]


async def test_gauges_keep_the_latest_level_and_warn_once_per_threshold(
    metering: Metering, clock: ManualClock
) -> None:
    o = org()
    await grant(metering, o, active_workers="10")
    now = clock.now()
    batch = [
        event(o, UsageType.ACTIVE_WORKERS, "8", timestamp=now - timedelta(minutes=2)),
        event(o, UsageType.ACTIVE_WORKERS, "9", timestamp=now - timedelta(minutes=1)),
    ]
    assert all(r.error is None for r in await metering.ingest.record_batch(batch, OPERATOR))
    # Arrives late: older than the stored level, so it changes nothing.
    late = event(o, UsageType.ACTIVE_WORKERS, "2", timestamp=now - timedelta(minutes=3))
    await metering.ingest.record(late, OPERATOR)
    await metering.ingest.record(event(o, UsageType.ACTIVE_WORKERS, "3"), OPERATOR)
    await metering.ingest.record(event(o, UsageType.ACTIVE_WORKERS, "8"), OPERATOR)
    usage = await metering.queries.current_usage(o, OPERATOR)
    assert usage.snapshot.gauges[UsageType.ACTIVE_WORKERS] == Decimal(8)
    async with metering.database.transaction() as transaction:
        result = await transaction.session.execute(select(tables.outbox_events.c.payload))
        rows = result.scalars().all()
    # 80% was first reached by the batch; reaching it again later is not news.
    assert [(p["threshold_percent"], p["current"]) for p in rows] == [(80, "9")]


async def test_anchor_change_recounts_the_current_window(
    metering: Metering, clock: ManualClock
) -> None:
    o = org()
    # No subscription yet: calendar month windows. The event of 2026-03-01 is in March's.
    await metering.ingest.record(
        event(o, UsageType.JOB_EXECUTION, "5", timestamp=datetime(2026, 3, 1, tzinfo=UTC)), OPERATOR
    )
    await metering.ingest.record(
        event(o, UsageType.JOB_EXECUTION, "2", timestamp=datetime(2026, 2, 27, tzinfo=UTC)),
        OPERATOR,
    )
    # Anchored on the 31st: the window holding 2026-03-10 starts 2026-02-28T10:00Z.
    await grant(metering, o, job_execution="100")
    usage = await metering.queries.current_usage(o, OPERATOR)
    assert usage.period_start == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert usage.snapshot.counters[UsageType.JOB_EXECUTION] == Decimal(5)


async def test_fifty_concurrent_reservations_admit_exactly_the_remaining_ten(
    metering: Metering,
) -> None:
    o = org()
    await grant(metering, o, active_workers="15")
    await metering.ingest.record(event(o, UsageType.ACTIVE_WORKERS, "5"), OPERATOR)
    outcomes = await asyncio.gather(
        *(
            metering.reservations.reserve(
                o, UsageType.ACTIVE_WORKERS, "1", f"job-{n}", None, OPERATOR
            )
            for n in range(50)
        )
    )
    admitted = [o for o in outcomes if o.decision.allowed]
    assert len(admitted) == 10
    decision = await metering.limits.check(o, UsageType.ACTIVE_WORKERS, "1", OPERATOR)
    assert not decision.allowed
    assert decision.statuses[0].reserved == Decimal(10)


async def reserve_four_of_ten_jobs(metering: Metering) -> tuple[str, str]:
    """A new organisation allowed 10 jobs, and its reservation of 4: (organisation, id)."""
    o = org()
    await grant(metering, o, job_execution="10")
    outcome = await metering.reservations.reserve(
        o, UsageType.JOB_EXECUTION, "4", "r1", timedelta(minutes=1), OPERATOR
    )
    assert outcome.reservation is not None
    return o, outcome.reservation.id


async def test_a_commit_above_the_reservation_counts_what_happened(metering: Metering) -> None:
    o, reservation_id = await reserve_four_of_ten_jobs(metering)
    committed = await metering.reservations.commit(reservation_id, "12", None, {}, OPERATOR)
    assert committed.record.quantity == Decimal(12)
    # 12 used of 10: recorded as it happened, and the answer says where the organisation stands.
    status = committed.status
    assert (status.current, status.reserved, status.remaining, status.exceeded) == (
        Decimal(12),
        Decimal(0),
        Decimal(0),
        True,
    )
    decision = await metering.limits.check(o, UsageType.JOB_EXECUTION, "1", OPERATOR)
    assert not decision.allowed


async def test_reservation_commit_records_usage_once(metering: Metering) -> None:
    o, reservation_id = await reserve_four_of_ten_jobs(metering)
    committed = await metering.reservations.commit(reservation_id, "3", None, {}, OPERATOR)
    assert (committed.status.current, committed.status.reserved) == (Decimal(3), Decimal(0))
    again = await metering.reservations.commit(reservation_id, "3.000", None, {}, OPERATOR)
    assert again.record.id == committed.record.id
    # A retry that asks for another quantity is refused, naming what was committed.
    with pytest.raises(PreconditionFailed, match="already committed with quantity 3, not 4"):
        await metering.reservations.commit(reservation_id, "", None, {}, OPERATOR)
    decision = await metering.limits.check(o, UsageType.JOB_EXECUTION, "7", OPERATOR)
    assert decision.allowed
    assert decision.statuses[0].current == Decimal(3)
    assert decision.statuses[0].reserved == Decimal(0)


async def test_expired_reservations_stop_counting(metering: Metering, clock: ManualClock) -> None:
    o = org()
    await grant(metering, o, queues="2")
    first = await metering.reservations.reserve(
        o, UsageType.QUEUES, "2", "q1", timedelta(seconds=30), OPERATOR
    )
    assert first.decision.allowed
    blocked = await metering.reservations.reserve(o, UsageType.QUEUES, "1", "q2", None, OPERATOR)
    assert not blocked.decision.allowed
    clock.advance(timedelta(seconds=31))
    later = await metering.reservations.reserve(o, UsageType.QUEUES, "1", "q3", None, OPERATOR)
    assert later.decision.allowed


async def test_summary_integrates_storage_and_lists_with_true_totals(
    metering: Metering, clock: ManualClock
) -> None:
    o = org()
    start = datetime(2026, 2, 1, tzinfo=UTC)
    await metering.ingest.record_batch(
        [
            event(o, UsageType.STORAGE, "10", timestamp=start),
            event(o, UsageType.STORAGE, "30", timestamp=start + timedelta(hours=240)),
        ]
        + [
            event(o, UsageType.API_CALL, "1", timestamp=start + timedelta(minutes=n))
            for n in range(5)
        ],
        OPERATOR,
    )
    summary = await metering.queries.summary(o, start, start + timedelta(hours=720), OPERATOR)
    assert summary[UsageType.STORAGE] == Decimal(16800)
    assert summary[UsageType.API_CALL] == Decimal(5)
    seen: list[str] = []
    token = ""
    while True:
        page = await metering.queries.list_records(o, None, None, None, 3, token, OPERATOR)
        assert page.total_count == 7
        seen += [r.id for r in page.records]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 7


async def test_concurrent_single_events_share_transactions_and_count_once(
    metering: Metering,
) -> None:
    o = org()
    keys = [f"call-{n % 150}" for n in range(300)]  # every key sent twice, concurrently
    results = await asyncio.gather(
        *(metering.ingest.record(event(o, UsageType.API_CALL, "1", key), OPERATOR) for key in keys)
    )
    assert sum(1 for r in results if r.duplicate) == 150
    by_key: dict[str, set[str]] = {}
    for key, result in zip(keys, results, strict=True):
        assert result.record is not None
        by_key.setdefault(key, set()).add(result.record.id)
    assert all(len(ids) == 1 for ids in by_key.values())
    usage = await metering.queries.current_usage(o, OPERATOR)
    assert usage.snapshot.counters[UsageType.API_CALL] == Decimal(150)
    assert await count_rows(metering.database, tables.usage_records) == 150


async def test_a_failed_transaction_fails_every_call_in_it(
    metering: Metering, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> object:
        raise ConnectionError("database went away")

    # After the records are inserted, so the test also shows them rolled back.
    for repository in (MeteringRepository, PostgresMeteringRepository):
        monkeypatch.setattr(repository, "add_to_counters", broken)
    o = org()
    results = await asyncio.gather(
        *(metering.ingest.record(event(o, UsageType.API_CALL, "1"), OPERATOR) for _ in range(20)),
        return_exceptions=True,
    )
    # A lost connection is transient: every caller hears "unavailable, retry", with the cause.
    unavailable = [r for r in results if isinstance(r, Unavailable)]
    assert len(unavailable) == len(results)
    assert all(isinstance(error.__cause__, ConnectionError) for error in unavailable)
    monkeypatch.undo()
    assert await count_rows(metering.database, tables.usage_records) == 0


async def test_in_batch_repeats_of_a_stored_key_are_judged_against_the_stored_record(
    metering: Metering,
) -> None:
    # Found by the idempotency property test: the conflicting first occurrence must not make
    # a later, matching repeat of the stored payload a conflict too.
    o = org()
    await metering.ingest.record(event(o, UsageType.JOB_EXECUTION, "1", "k"), OPERATOR)
    results = await metering.ingest.record_batch(
        [
            event(o, UsageType.JOB_EXECUTION, "2", "k"),
            event(o, UsageType.JOB_EXECUTION, "1", "k"),
        ],
        OPERATOR,
    )
    assert isinstance(results[0].error, AlreadyExists)
    assert results[1].error is None
    assert results[1].duplicate


async def test_one_callers_unstorable_event_never_fails_another_callers_transaction(
    metering: Metering,
) -> None:
    o = org()
    good = metering.ingest.record(event(o, UsageType.API_CALL, "1", "good"), OPERATOR)
    bad = metering.ingest.record(event(o, UsageType.API_CALL, "1", "bad\x00key"), OPERATOR)
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert isinstance(results[1], InvalidArgument)
    assert not isinstance(results[0], BaseException)
    assert await count_rows(metering.database, tables.usage_records) == 1
