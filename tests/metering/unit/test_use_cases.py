"""The use cases driven with the in-memory fakes and a manual clock (no I/O), and the property
tests for idempotency and the reservation invariant."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskforge_common.clock import ManualClock
from taskforge_common.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ResourceExhausted,
)
from taskforge_common.meters import UsageType
from taskforge_common.page_tokens import PageTokens
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ingest import (
    GATHER_TURNS,
    GroupCommit,
    IndexedEvent,
    IngestResult,
    UsageEventInput,
)
from taskforge_metering.application.use_cases import UseCases
from taskforge_metering.domain.entitlements import Entitlements, EntitlementStatus
from taskforge_metering.domain.usage import UsageEvent, new_usage_event
from tests.fakes.metering_store import InMemoryDatabase
from tests.metering.inputs import timestamp_parts

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
OTHER = "6e1c2a9b-7f3d-4f0e-8b1a-2c3d4e5f6a7b"
ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)
OPERATOR = Caller("operator")
PAGE_TOKENS = PageTokens(b"page tokens of the tests")


def build(rate: int = 1_000_000) -> tuple[UseCases, InMemoryDatabase, ManualClock]:
    database = InMemoryDatabase()
    clock = ManualClock(datetime(2026, 3, 10, 12, tzinfo=UTC))
    return UseCases.build(database, clock, rate, PAGE_TOKENS), database, clock


def event(quantity: str = "1", key: str | None = None, **fields: object) -> UsageEventInput:
    values: dict[str, object] = {
        "organization_id": ORG,
        "usage_type": UsageType.JOB_EXECUTION,
        "quantity": quantity,
        "timestamp": None,
        "idempotency_key": key or str(uuid.uuid4()),
    }
    values.update(fields)
    if isinstance(values["timestamp"], datetime):
        values["timestamp"] = timestamp_parts(values["timestamp"])
    return UsageEventInput(**values)  # type: ignore[arg-type]


async def grant(uc: UseCases, version: int = 1, **limits: str) -> None:
    await uc.entitlements.upsert(
        Entitlements(
            organization_id=ORG,
            status=EntitlementStatus.ACTIVE,
            version=version,
            period_anchor=ANCHOR,
            limits={UsageType(k): Decimal(v) for k, v in limits.items()},
        ),
        OPERATOR,
    )


async def test_a_failed_batch_validation_writes_nothing_and_commits_nothing() -> None:
    uc, database, _ = build()
    results = await uc.ingest.record_batch([event("-1"), event("x")], OPERATOR)
    assert all(isinstance(r.error, InvalidArgument) for r in results)
    assert database.commits == 0
    assert database.state.records == {}


async def test_batch_limits_and_unknown_usage_type() -> None:
    uc, _, _ = build()
    with pytest.raises(InvalidArgument, match="at most 1000"):
        await uc.ingest.record_batch([event() for _ in range(1001)], OPERATOR)
    with pytest.raises(InvalidArgument, match="at least one"):
        await uc.ingest.record_batch([], OPERATOR)
    (result,) = await uc.ingest.record_batch([event(usage_type=None)], OPERATOR)
    assert isinstance(result.error, InvalidArgument)


async def test_a_bound_caller_fails_per_event_for_other_organizations() -> None:
    uc, _, _ = build()
    bound = Caller("tenant", ORG)
    results = await uc.ingest.record_batch([event(organization_id=OTHER), event()], bound)
    assert isinstance(results[0].error, PermissionDenied)
    assert results[1].error is None
    with pytest.raises(PermissionDenied):
        await uc.limits.check(OTHER, None, "", bound)


async def test_rate_limit_counts_a_batch_once_per_organization() -> None:
    uc, _, clock = build(rate=2)
    await uc.ingest.record_batch([event() for _ in range(500)], OPERATOR)
    await uc.ingest.record(event(), OPERATOR)
    with pytest.raises(ResourceExhausted, match="retry with backoff"):
        await uc.ingest.record(event(), OPERATOR)
    clock.advance(timedelta(seconds=1))
    await uc.ingest.record(event(), OPERATOR)


async def test_thresholds_fire_once_per_window_and_again_next_window() -> None:
    uc, database, clock = build()
    await grant(uc, job_execution="10")
    for _ in range(12):
        await uc.ingest.record(event(), OPERATOR)
    clock.set(datetime(2026, 4, 2, tzinfo=UTC))  # the next monthly window
    await uc.ingest.record(event("9"), OPERATOR)
    events = sorted(
        (e.payload["window_start"], e.payload["threshold_percent"])
        for e in database.state.outbox.values()
    )
    assert events == [
        ("2026-03-01T00:00:00+00:00", 80),
        ("2026-03-01T00:00:00+00:00", 100),
        ("2026-04-01T00:00:00+00:00", 80),
    ]


async def test_gauges_keep_the_latest_report_by_event_time() -> None:
    uc, _, clock = build()
    now = clock.now()
    await uc.ingest.record(event("5", usage_type=UsageType.ACTIVE_WORKERS, timestamp=now), OPERATOR)
    await uc.ingest.record(
        event("9", usage_type=UsageType.ACTIVE_WORKERS, timestamp=now - timedelta(minutes=1)),
        OPERATOR,
    )
    usage = await uc.queries.current_usage(ORG, OPERATOR)
    assert usage.snapshot.gauges[UsageType.ACTIVE_WORKERS] == Decimal(5)


async def test_reservation_rules() -> None:
    uc, _, clock = build()
    await grant(uc, queues="3")
    first = await uc.reservations.reserve(ORG, UsageType.QUEUES, "2", "a", None, OPERATOR)
    assert first.reservation is not None
    with pytest.raises(AlreadyExists):
        await uc.reservations.reserve(ORG, UsageType.QUEUES, "1", "a", None, OPERATOR)
    with pytest.raises(InvalidArgument, match="greater than zero"):
        await uc.reservations.reserve(ORG, UsageType.QUEUES, "0", "b", None, OPERATOR)
    with pytest.raises(InvalidArgument, match="ttl"):
        await uc.reservations.reserve(
            ORG, UsageType.QUEUES, "1", "b", timedelta(days=30, microseconds=1), OPERATOR
        )
    with pytest.raises(NotFound):
        await uc.reservations.release(first.reservation.id, Caller("tenant", OTHER))
    await uc.reservations.release(first.reservation.id, OPERATOR)
    await uc.reservations.release(first.reservation.id, OPERATOR)  # twice is fine
    with pytest.raises(PreconditionFailed, match="released"):
        await uc.reservations.commit(first.reservation.id, "", None, {}, OPERATOR)
    late = await uc.reservations.reserve(
        ORG, UsageType.QUEUES, "1", "c", timedelta(seconds=5), OPERATOR
    )
    assert late.reservation is not None
    clock.advance(timedelta(seconds=6))
    with pytest.raises(PreconditionFailed, match="expired"):
        await uc.reservations.commit(late.reservation.id, "", None, {}, OPERATOR)


async def test_older_entitlements_are_ignored_and_past_due_denies() -> None:
    uc, _, _ = build()
    await grant(uc, version=3, job_execution="10")
    stale = await uc.entitlements.upsert(
        Entitlements(organization_id=ORG, status=EntitlementStatus.PAST_DUE, version=2), OPERATOR
    )
    assert stale.status is EntitlementStatus.ACTIVE
    await uc.entitlements.upsert(
        Entitlements(organization_id=ORG, status=EntitlementStatus.PAST_DUE, version=4), OPERATOR
    )
    decision = await uc.limits.check(ORG, UsageType.JOB_EXECUTION, "1", OPERATOR)
    assert (decision.allowed, decision.reason) == (False, "payment overdue")


async def test_list_records_pages_with_the_true_total_and_rejects_bad_tokens() -> None:
    uc, _, clock = build()
    base = clock.now() - timedelta(hours=1)
    await uc.ingest.record_batch(
        [event(timestamp=base + timedelta(seconds=n)) for n in range(7)], OPERATOR
    )
    page = await uc.queries.list_records(ORG, None, None, None, 5, "", OPERATOR)
    following = await uc.queries.list_records(
        ORG, None, None, None, 5, page.next_page_token, OPERATOR
    )
    assert (len(page.records), len(following.records)) == (5, 2)
    assert page.total_count == following.total_count == 7
    assert following.next_page_token == ""
    with pytest.raises(InvalidArgument, match="page_token"):
        await uc.queries.list_records(ORG, None, None, None, 5, "bm90LWEtdG9rZW4", OPERATOR)
    with pytest.raises(InvalidArgument, match="page_size"):
        await uc.queries.list_records(ORG, None, None, None, 1001, "", OPERATOR)


# -- properties -------------------------------------------------------------------------------

KEYS = [f"k{n}" for n in range(4)]
ORGS = [ORG, OTHER]
# Equal numbers spelled differently: the same payload (SPEC §12). Values compared below with
# Decimal equality, never through the code's canonical form.
SPELLINGS = ["1", "1.0", "1.000000", "01", "2", "2.00", "002", "2.5", "2.500000", "02.50"]


@settings(max_examples=80, deadline=None)
@given(
    sends=st.lists(
        st.tuples(st.sampled_from(ORGS), st.sampled_from(KEYS), st.sampled_from(SPELLINGS)),
        min_size=1,
        max_size=30,
    ),
    batch_size=st.integers(min_value=1, max_value=7),
)
def test_every_key_counts_once_with_its_first_payload(
    sends: list[tuple[str, str, str]], batch_size: int
) -> None:
    """Each (organisation, key) is stored once, with its first quantity: a repeat of an equal
    number however spelled is a duplicate answering the first record, another number
    ALREADY_EXISTS; each organisation counts the sum of its first quantities.
    Caught: in-batch repeats keyed by the idempotency key alone (two organisations' keys
    collide); the fingerprint over the quantity as spelled ("1" and "1.0" conflict)."""

    async def scenario() -> None:
        uc, _, _ = build()
        first: dict[tuple[str, str], Decimal] = {}
        record_ids: dict[tuple[str, str], str] = {}
        for start in range(0, len(sends), batch_size):
            chunk = sends[start : start + batch_size]
            results = await uc.ingest.record_batch(
                [event(q, k, organization_id=o) for o, k, q in chunk], OPERATOR
            )
            for (org, key, quantity), result in zip(chunk, results, strict=True):
                is_first = (org, key) not in first
                original = first.setdefault((org, key), Decimal(quantity))
                if Decimal(quantity) != original:
                    assert isinstance(result.error, AlreadyExists)
                    continue
                assert result.error is None
                assert result.record is not None
                assert result.duplicate is not is_first
                assert (result.record.organization_id, result.record.quantity) == (org, original)
                assert record_ids.setdefault((org, key), result.record.id) == result.record.id
        assert len(set(record_ids.values())) == len(record_ids)
        for org in ORGS:
            usage = await uc.queries.current_usage(org, OPERATOR)
            expected = sum((q for (o, _), q in first.items() if o == org), Decimal(0))
            assert usage.snapshot.counters.get(UsageType.JOB_EXECUTION, Decimal(0)) == expected

    asyncio.run(scenario())


TTL = timedelta(minutes=1)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.sampled_from(ORGS), st.integers(min_value=1, max_value=4)),
        # 0 commits the reserved quantity; anything else is the actual one, often above it.
        st.tuples(st.just("commit"), st.sampled_from(ORGS), st.integers(min_value=0, max_value=8)),
        st.tuples(st.just("release"), st.sampled_from(ORGS), st.integers(min_value=0, max_value=4)),
        st.tuples(st.just("record"), st.sampled_from(ORGS), st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("wait"), st.just(ORG), st.integers(min_value=1, max_value=90)),
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(steps=operations)
def test_usage_plus_live_reservations_never_exceed_the_limit(
    steps: list[tuple[str, str, int]],
) -> None:
    """A model of two organisations with a limit of 10 each: recorded usage (RecordUsage and
    commits, above the reserved quantity or not) and live reservations (TTL 1 min, expiring
    at `expires_at <= now`). A reservation is granted exactly when model usage + live
    reservations + its quantity ≤ 10, so usage plus live reservations exceed the limit only
    through usage itself; CheckLimits answers the model's current and reserved after each step.
    Caught: a commit counting at most the reserved quantity; a committed reservation still
    counted as reserved; `admits` ignoring reservations."""
    limit = Decimal(10)

    async def scenario() -> None:
        uc, _, clock = build()
        for org in ORGS:
            await uc.entitlements.upsert(
                Entitlements(
                    organization_id=org,
                    status=EntitlementStatus.ACTIVE,
                    version=1,
                    period_anchor=ANCHOR,
                    limits={UsageType.JOB_EXECUTION: limit},
                ),
                OPERATOR,
            )
        used = dict.fromkeys(ORGS, Decimal(0))
        held: dict[str, list[tuple[str, Decimal, datetime]]] = {org: [] for org in ORGS}

        def live(org: str) -> Decimal:
            return sum((q for _, q, until in held[org] if until > clock.now()), Decimal(0))

        for n, (action, org, value) in enumerate(steps):
            if action == "reserve":
                admissible = used[org] + live(org) + value <= limit
                outcome = await uc.reservations.reserve(
                    org, UsageType.JOB_EXECUTION, str(value), f"r{n}", TTL, OPERATOR
                )
                assert outcome.decision.allowed is admissible
                assert (outcome.reservation is not None) is admissible
                if outcome.reservation is not None:
                    held[org].append((outcome.reservation.id, Decimal(value), clock.now() + TTL))
            elif action in ("commit", "release") and held[org]:
                reservation_id, quantity, until = held[org].pop(value % len(held[org]))
                if action == "release":
                    await uc.reservations.release(reservation_id, OPERATOR)
                elif until <= clock.now():
                    with pytest.raises(PreconditionFailed, match="expired"):
                        await uc.reservations.commit(reservation_id, "", None, {}, OPERATOR)
                else:
                    actual = Decimal(value) if value else quantity
                    committed = await uc.reservations.commit(
                        reservation_id, str(value) if value else "", None, {}, OPERATOR
                    )
                    assert committed.record.quantity == actual
                    used[org] += actual
            elif action == "record":
                await uc.ingest.record(event(str(value), organization_id=org), OPERATOR)
                used[org] += value
            elif action == "wait":
                clock.advance(timedelta(seconds=value))
            for each in ORGS:
                decision = await uc.limits.check(each, UsageType.JOB_EXECUTION, "0", OPERATOR)
                status = decision.statuses[0]
                assert (status.current, status.reserved) == (used[each], live(each))
                assert status.remaining == max(Decimal(0), limit - used[each] - live(each))

    asyncio.run(scenario())


async def test_a_retry_after_the_period_closed_still_answers_the_original_record() -> None:
    uc, _, clock = build()
    at = clock.now() - timedelta(hours=2)
    original = await uc.ingest.record(event("3", "late-retry", timestamp=at), OPERATOR)
    await uc.entitlements.upsert(
        Entitlements(
            organization_id=ORG,
            status=EntitlementStatus.ACTIVE,
            version=1,
            usage_closed_before=clock.now() - timedelta(hours=1),
        ),
        OPERATOR,
    )
    retried = await uc.ingest.record(event("3", "late-retry", timestamp=at), OPERATOR)
    assert retried.duplicate
    assert retried.record == original.record
    with pytest.raises(AlreadyExists):
        await uc.ingest.record(event("4", "late-retry", timestamp=at), OPERATOR)
    with pytest.raises(PreconditionFailed, match="closed billing period"):
        await uc.ingest.record(event("3", "never-sent", timestamp=at), OPERATOR)


class RecordingWriter:
    """A GroupCommit write function that records each batch and takes `turns` event-loop turns,
    like a transaction's round trips."""

    def __init__(self, turns: int = 5) -> None:
        self.batches: list[list[str]] = []
        self.turns = turns

    async def __call__(
        self, take_events: Callable[[], Sequence[IndexedEvent]]
    ) -> dict[int, IngestResult]:
        await turns(1)  # BEGIN
        events = take_events()
        self.batches.append([event.idempotency_key for _, event in events])
        await turns(self.turns)
        return {index: IngestResult() for index, _ in events}


async def turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def usage_event(key: str) -> UsageEvent:
    return new_usage_event(
        organization_id=ORG,
        usage_type=UsageType.API_CALL,
        quantity="1",
        timestamp=None,
        idempotency_key=key,
        metadata={},
        now=datetime(2026, 3, 10, tzinfo=UTC),
    )


async def test_group_commit_gathers_callers_under_load() -> None:
    writer = RecordingWriter()
    group = GroupCommit(writer)

    async def straggler(key: str, after_turns: int) -> IngestResult:
        await turns(after_turns)
        return await group.submit(usage_event(key))

    # c arrives while the first transaction runs, d and e only after it ended.
    await asyncio.gather(
        group.submit(usage_event("a")),
        group.submit(usage_event("b")),
        straggler("c", 6),
        straggler("d", 12),
        straggler("e", 18),
    )
    # The last transaction carried two callers, so the next one waited for a second (d)
    # instead of running for c alone; e, alone, went after GATHER_TURNS turns.
    assert writer.batches == [["a", "b"], ["c", "d"], ["e"]]


async def test_group_commit_never_makes_a_lone_caller_wait() -> None:
    writer = RecordingWriter()
    group = GroupCommit(writer)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    clock = asyncio.get_running_loop().create_task(ticker())
    for key in ("a", "b", "c"):
        start = ticks
        await group.submit(usage_event(key))
        assert ticks - start < GATHER_TURNS  # written at once, not after a gathering pause
    clock.cancel()
    assert writer.batches == [["a"], ["b"], ["c"]]
