"""Rules of SPEC §2, §3, §7, §8, §11 and §12 that no other test protected, each through a real
grpc.aio server on PostgreSQL and SQLite.

Every test was checked against a deliberate breakage of its rule in a scratch copy of the code;
the "Caught:" line of each docstring names that breakage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2
from taskforge_common.db.engine import Database
from taskforge_metering.storage import tables
from tests.metering.service_client import (
    ORG,
    OTHER_ORG,
    Client,
    grant,
    stamp,
    status_of,
    usage_event,
)

JOB = common_pb2.USAGE_TYPE_JOB_EXECUTION
API = common_pb2.USAGE_TYPE_API_CALL
STORAGE = common_pb2.USAGE_TYPE_STORAGE
WORKERS = common_pb2.USAGE_TYPE_ACTIVE_WORKERS
TRANSFER = common_pb2.USAGE_TYPE_DATA_TRANSFER
INVALID = grpc.StatusCode.INVALID_ARGUMENT
MICROSECOND = timedelta(microseconds=1)
# The grant helper anchors every subscription here: monthly windows start on the 1st, 00:00Z.
MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def at(
    instant: datetime, quantity: str = "1", key: str | None = None, **fields: Any
) -> usage_pb2.UsageEvent:
    """A usage event stamped `instant`."""
    event = usage_event(quantity, key, **fields)
    event.timestamp.CopyFrom(stamp(instant))
    return event


async def record(client: Client, event: usage_pb2.UsageEvent) -> pb.RecordUsageResponse:
    return await client.stub.RecordUsage(pb.RecordUsageRequest(event=event), metadata=client.auth())


async def batch(client: Client, *events: usage_pb2.UsageEvent) -> pb.RecordUsageBatchResponse:
    return await client.stub.RecordUsageBatch(
        pb.RecordUsageBatchRequest(events=list(events)), metadata=client.auth()
    )


async def refused(client: Client, event: usage_pb2.UsageEvent) -> None:
    code = await status_of(
        client.stub.RecordUsage(pb.RecordUsageRequest(event=event), metadata=client.auth())
    )
    assert code == INVALID, event


async def check(
    client: Client,
    usage_type: common_pb2.UsageType = common_pb2.USAGE_TYPE_UNSPECIFIED,
    requested: str = "",
    organization_id: str = ORG,
) -> pb.CheckLimitsResponse:
    return await client.stub.CheckLimits(
        pb.CheckLimitsRequest(
            organization_id=organization_id,
            usage_type=usage_type,
            requested_quantity=requested,
        ),
        metadata=client.auth(),
    )


async def current_usage(client: Client) -> usage_pb2.CurrentUsage:
    answer = await client.stub.GetCurrentUsage(
        pb.GetCurrentUsageRequest(organization_id=ORG), metadata=client.auth()
    )
    return answer.usage


async def summary(client: Client, start: datetime, end: datetime) -> dict[int, str]:
    answer = await client.stub.GetUsageSummary(
        pb.GetUsageSummaryRequest(
            organization_id=ORG, start_time=stamp(start), end_time=stamp(end)
        ),
        metadata=client.auth(),
    )
    return {item.usage_type: item.quantity for item in answer.items}


async def recorded(client: Client, organization_id: str = ORG) -> int:
    """total_count of ListUsageRecords: what the organisation has stored."""
    listed = await client.stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(organization_id=organization_id), metadata=client.auth()
    )
    return listed.total_count


async def stored_rows(database: Database) -> int:
    """usage_records rows of every organisation, counted with SQL."""
    async with database.transaction() as transaction:
        query = select(func.count()).select_from(tables.usage_records)
        return int((await transaction.session.execute(query)).scalar_one())


async def threshold_events(database: Database) -> list[tuple[str, int, str]]:
    """The outbox's threshold events, read with SQL: (usage type, percent, window start)."""
    async with database.transaction() as transaction:
        result = await transaction.session.execute(
            select(tables.outbox_events.c.event_type, tables.outbox_events.c.payload)
        )
        rows = result.all()
    assert {event_type for event_type, _ in rows} <= {"usage.threshold_reached"}
    return sorted((p["usage_type"], p["threshold_percent"], p["window_start"]) for _, p in rows)


def by_type(response: pb.CheckLimitsResponse) -> dict[int, tuple[str, str, str, str, bool]]:
    """(limit, current, reserved, remaining, exceeded) per usage type; each listed once."""
    types = [s.usage_type for s in response.limits]
    assert len(types) == len(set(types)), types
    return {
        s.usage_type: (s.limit, s.current, s.reserved, s.remaining, s.exceeded)
        for s in response.limits
    }


def timestamp(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


# -- rule 1: windows and ranges are half-open, [start, end) ------------------------------------


async def test_list_usage_records_includes_its_start_and_excludes_its_end(client: Client) -> None:
    """ListUsageRecords over [10:00, 11:00): of events at start − 1 µs, start, end − 1 µs and
    end, exactly the middle two are listed and counted.
    Caught: `_record_filters` with `event_time <= end` (and, separately, `event_time > start`)."""
    start = client.clock.now() - timedelta(hours=2)
    end = start + timedelta(hours=1)
    await batch(
        client,
        at(start - MICROSECOND, key="before"),
        at(start, key="first"),
        at(end - MICROSECOND, key="last"),
        at(end, key="after"),
    )
    listed = await client.stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(
            organization_id=ORG, start_time=stamp(start), end_time=stamp(end)
        ),
        metadata=client.auth(),
    )
    assert [r.idempotency_key for r in listed.records] == ["first", "last"]
    assert listed.total_count == 2


async def test_usage_summary_counts_and_integrates_over_a_half_open_range(client: Client) -> None:
    """GetUsageSummary over [10:00, 11:00) and [11:00, 12:00): counters 1 (start − 1 µs),
    2 (start), 4 (end − 1 µs), 8 (end) give 2 + 4 = 6, then 8. Storage levels 5 GB from 09:00,
    10 GB at 10:00, 20 GB at 10:30, 30 GB at 11:00 give 10·½ + 20·½ = 15 GB-h, then 30·1 = 30.
    Caught: `_record_filters` with `event_time <= end`; `time_weighted_hours` skipping a reading
    exactly at `start` (`reading.at <= start`), which integrates 5·½ + 20·½ = 12.5 instead."""
    start = client.clock.now() - timedelta(hours=2)
    end = start + timedelta(hours=1)
    await batch(
        client,
        at(start - MICROSECOND, "1", usage_type=API),
        at(start, "2", usage_type=API),
        at(end - MICROSECOND, "4", usage_type=API),
        at(end, "8", usage_type=API),
        at(start - timedelta(hours=1), "5", usage_type=STORAGE),
        at(start, "10", usage_type=STORAGE),
        at(start + timedelta(minutes=30), "20", usage_type=STORAGE),
        at(end, "30", usage_type=STORAGE),
    )
    first = await summary(client, start, end)
    assert (first[API], first[STORAGE]) == ("6", "15")
    second = await summary(client, end, end + timedelta(hours=1))
    assert (second[API], second[STORAGE]) == ("8", "30")


async def test_an_event_at_the_window_end_counts_in_the_next_window(client: Client) -> None:
    """Monthly windows from 2026-03-01: events at 03-01T00:00 (2, March's start), at
    03-31T23:59:59.999999 (3) and at 04-01T00:00 (1, April's start), sent in one batch.
    CheckLimits at 23:58 counts 2 + 3 = 5; at 04-01T00:00 exactly, 1.
    Caught: `Period.contains` with `instant <= end` (the batch's April event joins March's
    counter: 6); the snapshot's `window_start < now` (nothing counted at 04-01T00:00)."""
    client.clock.set(datetime(2026, 3, 31, 23, 58, tzinfo=UTC))
    await grant(client, job_execution="10")
    answers = await batch(
        client,
        at(MARCH, "2"),
        at(APRIL - MICROSECOND, "3"),
        at(APRIL, "1"),
    )
    assert [r.error_code for r in answers.results] == ["", "", ""]
    march = await check(client, JOB)
    assert (march.limits[0].current, march.limits[0].remaining) == ("5", "5")
    usage = await current_usage(client)
    assert (usage.jobs_executed, usage.period_end.ToDatetime(tzinfo=UTC)) == ("5", APRIL)

    client.clock.set(APRIL)
    april = await check(client, JOB)
    assert (april.limits[0].current, april.limits[0].remaining) == ("1", "9")
    usage = await current_usage(client)
    assert (usage.jobs_executed, usage.period_start.ToDatetime(tzinfo=UTC)) == ("1", APRIL)


# -- rule 2: usage counts in the window of its timestamp, not of its arrival -------------------


async def test_a_back_dated_event_counts_in_the_window_of_its_timestamp(client: Client) -> None:
    """Now 2026-03-10: 4 + 2 jobs stamped 2026-02-27 (February's window) and 1 job now.
    CheckLimits and GetCurrentUsage count 1 in March; GetUsageSummary of [02-01, 03-01) counts
    6 and of [03-01, 04-01) counts 1.
    Caught: `_account` taking the window of `now` instead of the event's timestamp (March
    counts 7); the batch's window cache reused without `contains` (the back-dated event after
    the current one in one batch joins March)."""
    await grant(client, job_execution="10")
    february = datetime(2026, 2, 27, 12, tzinfo=UTC)
    answers = await batch(client, usage_event("1"), at(february, "4"))
    assert [r.error_code for r in answers.results] == ["", ""]
    await record(client, at(february, "2"))

    limit = (await check(client, JOB)).limits[0]
    assert (limit.current, limit.remaining) == ("1", "9")
    assert (await current_usage(client)).jobs_executed == "1"
    assert (await summary(client, datetime(2026, 2, 1, tzinfo=UTC), MARCH))[JOB] == "6"
    assert (await summary(client, MARCH, APRIL))[JOB] == "1"


# -- rule 3: threshold events once per limit, threshold and window -----------------------------


async def test_threshold_events_fire_once_per_limit_threshold_and_window(
    client: Client, metering_database: Database
) -> None:
    """Limits of 10. In March: workers 8 (80 %), 3, an hour later 9 (80 % again: no event),
    10 (100 %); jobs 12 in one call (80 % and 100 %); API calls 8 (80 %). In April: workers 2
    then 8, jobs 8: 80 % of the new window for each. 7 events, read from outbox_events.
    Caught: the dedupe key built from the call's time instead of the window's start (workers'
    second crossing an hour later is a second March event); without the usage type (jobs' and
    API calls' 80 % collide); without the window (April's crossings are dropped)."""
    await grant(client, job_execution="10", api_call="10", active_workers="10")
    await record(client, usage_event("8", usage_type=WORKERS))
    client.clock.advance(timedelta(hours=1))
    await record(client, usage_event("3", usage_type=WORKERS))
    client.clock.advance(timedelta(hours=1))
    await record(client, usage_event("9", usage_type=WORKERS))
    client.clock.advance(timedelta(hours=1))
    await record(client, usage_event("10", usage_type=WORKERS))
    await record(client, usage_event("12", usage_type=JOB))
    await record(client, usage_event("8", usage_type=API))
    march = "2026-03-01T00:00:00+00:00"
    assert await threshold_events(metering_database) == [
        ("active_workers", 80, march),
        ("active_workers", 100, march),
        ("api_call", 80, march),
        ("job_execution", 80, march),
        ("job_execution", 100, march),
    ]

    client.clock.set(datetime(2026, 4, 2, 9, tzinfo=UTC))
    await record(client, usage_event("2", usage_type=WORKERS))
    client.clock.advance(timedelta(hours=5))
    await record(client, usage_event("8", usage_type=WORKERS))
    await record(client, usage_event("8", usage_type=JOB))
    april = "2026-04-01T00:00:00+00:00"
    events = await threshold_events(metering_database)
    assert len(events) == 7
    assert set(events) - {
        ("active_workers", 80, march),
        ("active_workers", 100, march),
        ("api_call", 80, march),
        ("job_execution", 80, march),
        ("job_execution", 100, march),
    } == {("active_workers", 80, april), ("job_execution", 80, april)}


# -- rule 4: the idempotency key is unique per organisation, also inside one batch ------------


async def test_one_key_in_two_organisations_is_two_records(
    client: Client, metering_database: Database
) -> None:
    """The key "shared" for ORG and OTHER_ORG in one RecordUsageBatch, and "solo" for each in
    two RecordUsage calls: four records, none a duplicate, two per organisation.
    Caught: `write_usage` keying in-batch repeats by the idempotency key alone (OTHER_ORG's
    event becomes a conflicting repeat of ORG's: ALREADY_EXISTS)."""
    answers = await batch(
        client,
        usage_event("1", "shared", organization_id=ORG),
        usage_event("1", "shared", organization_id=OTHER_ORG),
    )
    assert [(r.error_code, r.duplicate) for r in answers.results] == [("", False), ("", False)]
    mine, theirs = (r.record for r in answers.results)
    assert mine.id != theirs.id
    assert (mine.organization_id, theirs.organization_id) == (ORG, OTHER_ORG)

    first = await record(client, usage_event("2", "solo", organization_id=ORG))
    second = await record(client, usage_event("2", "solo", organization_id=OTHER_ORG))
    assert not first.duplicate
    assert not second.duplicate
    assert first.record.id != second.record.id
    assert (await recorded(client, ORG), await recorded(client, OTHER_ORG)) == (2, 2)
    assert await stored_rows(metering_database) == 4


async def test_a_key_repeated_inside_one_batch_is_one_record(
    client: Client, metering_database: Database
) -> None:
    """One batch for ORG: ("1", k), ("1", k), ("2", k), ("1.000", k) is one record; the second
    and fourth are duplicates answering it, the third ALREADY_EXISTS; 1 job counted.
    Caught: in `write_usage`, in-batch repeats all answered as duplicates (the "2" is
    accepted), and all answered as conflicts (the same payload is refused)."""
    answers = await batch(
        client,
        usage_event("1", "k"),
        usage_event("1", "k"),
        usage_event("2", "k"),
        usage_event("1.000", "k"),
    )
    outcomes = [(r.error_code, r.duplicate) for r in answers.results]
    assert outcomes == [("", False), ("", True), ("ALREADY_EXISTS", False), ("", True)]
    original = answers.results[0].record.id
    assert answers.results[1].record.id == answers.results[3].record.id == original
    assert await stored_rows(metering_database) == 1
    assert (await current_usage(client)).jobs_executed == "1"


# -- rule 5: each bound of SPEC §11 on both sides ---------------------------------------------


async def test_idempotency_keys_hold_255_characters_not_256(
    client: Client, metering_database: Database
) -> None:
    """An idempotency key of 255 characters is stored, one of 256 refused and not stored.
    Caught: the length compared with `>=` (255 refused); the length check dropped (256
    stored)."""
    assert not (await record(client, usage_event(key="k" * 255))).duplicate
    await refused(client, usage_event(key="k" * 256))
    assert await stored_rows(metering_database) == 1


async def test_metadata_holds_16_keys_not_17(client: Client, metering_database: Database) -> None:
    """Metadata of 16 keys is stored, of 17 refused and not stored.
    Caught: the key count compared with `>=` (16 refused)."""
    sixteen = usage_event()
    sixteen.metadata.update({f"k{n}": "v" for n in range(16)})
    await record(client, sixteen)
    seventeen = usage_event()
    seventeen.metadata.update({f"k{n}": "v" for n in range(17)})
    await refused(client, seventeen)
    assert await stored_rows(metering_database) == 1


async def test_metadata_holds_1024_utf8_bytes_of_keys_and_values_not_1025(
    client: Client, metering_database: Database
) -> None:
    """Metadata size: "ké" (3 bytes) + "é"·510 + "a" (1,021 bytes) = 1,024 is accepted;
    "ké" + "é"·511 = 1,025 bytes (513 characters) is refused; so is a 1,000-byte key with a
    25-byte value.
    Caught: the size counted in characters; the size counted over values only; `>=`."""
    exact = usage_event()
    exact.metadata["ké"] = "é" * 510 + "a"
    await record(client, exact)
    keys_too = usage_event()
    keys_too.metadata["k" * 1000] = "v" * 24
    await record(client, keys_too)
    for key, value in (("ké", "é" * 511), ("k" * 1000, "v" * 25)):
        over = usage_event()
        over.metadata[key] = value
        await refused(client, over)
    assert await stored_rows(metering_database) == 2


async def test_an_event_may_be_five_minutes_ahead_of_the_server_clock_not_more(
    client: Client, metering_database: Database
) -> None:
    """Server clock (client.clock) + 5 min is accepted, + 5 min + 1 µs refused.
    Caught: the skew compared with `>=`; the skew check dropped."""
    now = client.clock.now()
    await record(client, at(now + timedelta(minutes=5)))
    await refused(client, at(now + timedelta(minutes=5) + MICROSECOND))
    assert await stored_rows(metering_database) == 1


async def test_usage_timestamps_are_from_2000_on(
    client: Client, metering_database: Database
) -> None:
    """With an anchored subscription (no closed period): 2000-01-01T00:00:00Z is stored and
    counted in its own window; 1999-12-31T23:59:59.999999Z is refused.
    Caught: `instant_from_parts` with `earliest < seconds` (2000-01-01 refused)."""
    await grant(client, job_execution="10")
    earliest = datetime(2000, 1, 1, tzinfo=UTC)
    stored = await record(client, at(earliest, "3"))
    assert stored.record.timestamp.ToDatetime(tzinfo=UTC) == earliest
    await refused(client, at(earliest - MICROSECOND))
    assert (await summary(client, earliest, datetime(2000, 2, 1, tzinfo=UTC)))[JOB] == "3"
    assert (await check(client, JOB)).limits[0].current == "0"  # not in March 2026
    assert await stored_rows(metering_database) == 1


async def test_query_and_entitlement_instants_go_up_to_before_2100(
    client: Client, metering_database: Database
) -> None:
    """2099-12-31T23:59:59Z is accepted as GetUsageSummary's and ListUsageRecords' end_time and
    as the entitlements' current_period_end and period_anchor; 2100-01-01T00:00:00Z is refused
    there, and 1999-12-31T23:59:59.999999Z as a start_time; a refused UpsertEntitlements
    changes nothing.
    Caught: `instant_from_parts` with `seconds <= limit` (2100-01-01 accepted), and with the
    limit one second early (2099-12-31T23:59:59 refused)."""
    last, beyond = timestamp(4_102_444_799), timestamp(4_102_444_800)
    before_2000 = timestamp(946_684_799, 999_999_000)
    assert last.ToDatetime(tzinfo=UTC) == datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert beyond.ToDatetime(tzinfo=UTC) == datetime(2100, 1, 1, tzinfo=UTC)
    await grant(client, job_execution="10")
    await record(client, usage_event("2"))
    start = stamp(datetime(2000, 1, 1, tzinfo=UTC))

    answer = await client.stub.GetUsageSummary(
        pb.GetUsageSummaryRequest(organization_id=ORG, start_time=start, end_time=last),
        metadata=client.auth(),
    )
    assert {i.usage_type: i.quantity for i in answer.items}[JOB] == "2"
    listed = await client.stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(organization_id=ORG, start_time=start, end_time=last),
        metadata=client.auth(),
    )
    assert listed.total_count == 1
    for request in (
        pb.GetUsageSummaryRequest(organization_id=ORG, start_time=start, end_time=beyond),
        pb.GetUsageSummaryRequest(organization_id=ORG, start_time=before_2000, end_time=last),
    ):
        code = await status_of(client.stub.GetUsageSummary(request, metadata=client.auth()))
        assert code == INVALID
    code = await status_of(
        client.stub.ListUsageRecords(
            pb.ListUsageRecordsRequest(organization_id=ORG, start_time=start, end_time=beyond),
            metadata=client.auth(),
        )
    )
    assert code == INVALID

    def entitlements(version: int, **instants: Timestamp) -> pb.UpsertEntitlementsRequest:
        message = usage_pb2.Entitlements(
            status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
            version=version,
            limits=[common_pb2.Limit(usage_type=JOB, max=str(version))],
        )
        for name, instant in instants.items():
            getattr(message, name).CopyFrom(instant)
        return pb.UpsertEntitlementsRequest(organization_id=ORG, entitlements=message)

    for field in ("current_period_end", "period_anchor"):
        code = await status_of(
            client.stub.UpsertEntitlements(
                entitlements(9, **{field: beyond}), metadata=client.auth()
            )
        )
        assert code == INVALID, field
    assert (await check(client, JOB)).limits[0].limit == "10"  # version 1 still stands
    stored = await client.stub.UpsertEntitlements(
        entitlements(2, current_period_end=last, period_anchor=last), metadata=client.auth()
    )
    assert stored.entitlements.current_period_end == last
    assert stored.entitlements.period_anchor == last
    assert (await check(client, JOB)).limits[0].limit == "2"
    assert await stored_rows(metering_database) == 1


async def test_decimal_strings_hold_40_characters_not_41(
    client: Client, metering_database: Database
) -> None:
    """Decimal length: "0"·32 + "1.000000" (40 characters, value 1) is accepted as a quantity,
    a requested_quantity and a limit's max ("0"·32 + "10.00000"); one more leading zero (41) is
    refused in each place, and a refused UpsertEntitlements changes nothing.
    Caught: the length compared with `>=` (the 40s refused); `MAX_DECIMAL_LENGTH` 41 (the
    41s accepted)."""
    forty = "0" * 32 + "1.000000"
    forty_ten = "0" * 32 + "10.00000"
    assert len(forty) == len(forty_ten) == 40
    await client.stub.UpsertEntitlements(
        pb.UpsertEntitlementsRequest(
            organization_id=ORG,
            entitlements=usage_pb2.Entitlements(
                status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
                version=1,
                limits=[common_pb2.Limit(usage_type=JOB, max=forty_ten)],
            ),
        ),
        metadata=client.auth(),
    )
    assert (await record(client, usage_event(forty))).record.quantity == "1"
    await refused(client, usage_event("0" + forty))
    allowed = await check(client, JOB, requested=forty)
    assert allowed.allowed
    assert (allowed.limits[0].limit, allowed.limits[0].current) == ("10", "1")
    assert await status_of(check(client, JOB, requested="0" + forty)) == INVALID
    code = await status_of(
        client.stub.UpsertEntitlements(
            pb.UpsertEntitlementsRequest(
                organization_id=ORG,
                entitlements=usage_pb2.Entitlements(
                    status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
                    version=2,
                    limits=[common_pb2.Limit(usage_type=JOB, max="0" + forty_ten)],
                ),
            ),
            metadata=client.auth(),
        )
    )
    assert code == INVALID
    assert (await check(client, JOB)).limits[0].limit == "10"
    assert await stored_rows(metering_database) == 1


async def test_control_characters_in_keys_are_refused(
    client: Client, metering_database: Database
) -> None:
    """Control characters "\\n", "\\x07" and "\\x7f" inside an idempotency key or a metadata
    key: INVALID_ARGUMENT, nothing stored; printable non-ASCII keys are fine.
    Caught: `check_key` without its `isprintable` test; `validate_metadata` without its key
    `isprintable` test."""
    for control in ("\n", "\x07", "\x7f"):
        await refused(client, usage_event(key=f"job{control}1"))
        event = usage_event()
        event.metadata[f"queue{control}name"] = "v"
        await refused(client, event)
    assert await stored_rows(metering_database) == 0
    fine = usage_event(key="tâche-№1")
    fine.metadata["file d'attente"] = "v"
    await record(client, fine)
    assert await recorded(client) == 1


# -- rule 6: CheckLimits without a usage type reports every limit ------------------------------


async def test_check_limits_without_a_usage_type_reports_every_limit(client: Client) -> None:
    """Limits: jobs 10, API calls 100, workers 5, data transfer 50; storage unlimited. Used:
    4 jobs (+2 reserved), 100 API calls (at the limit, not over), 6 workers (over), 3 GB
    stored. Every limited type is listed once, with limit/current/reserved/remaining; denied
    naming only active_workers. At 5 workers: allowed. At 11 jobs: denied naming jobs only.
    Caught: the statuses built from the counters with usage (workers and data transfer
    missing); `exceeded` as `current >= limit` (API calls at 100 named); only the first
    status examined for excess; reservations left out of the statuses."""
    await grant(client, job_execution="10", api_call="100", active_workers="5", data_transfer="50")
    await batch(
        client,
        usage_event("4", usage_type=JOB),
        usage_event("100", usage_type=API),
        usage_event("6", usage_type=WORKERS),
        usage_event("3", usage_type=STORAGE),
    )
    reserved = await client.stub.ReserveUsage(
        pb.ReserveUsageRequest(
            organization_id=ORG, usage_type=JOB, quantity="2", idempotency_key="r"
        ),
        metadata=client.auth(),
    )
    assert reserved.allowed

    denied = await check(client)
    assert by_type(denied) == {
        JOB: ("10", "4", "2", "4", False),
        API: ("100", "100", "0", "0", False),
        WORKERS: ("5", "6", "0", "0", True),
        TRANSFER: ("50", "0", "0", "50", False),
    }
    assert not denied.allowed
    assert "active_workers" in denied.reason
    assert "job_execution" not in denied.reason
    assert "api_call" not in denied.reason

    await record(client, usage_event("5", usage_type=WORKERS))
    within = await check(client)
    assert (within.allowed, within.reason) == (True, "")
    assert by_type(within)[WORKERS] == ("5", "5", "0", "0", False)

    await record(client, usage_event("7", usage_type=JOB))
    over = await check(client)
    assert not over.allowed
    assert "job_execution" in over.reason
    assert "active_workers" not in over.reason
    assert by_type(over)[JOB] == ("10", "11", "2", "0", True)
