"""GetUsageSummaries through a real grpc.aio server on PostgreSQL and SQLite: each summary is
what GetUsageSummary answers for its query, in request order; 1 to 1,000 queries; bad queries
named by their path; a bound token never reaches another organisation, not even in part; and
the statements one call runs do not grow with its number of queries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import event
from sqlalchemy.engine import Engine

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2
from taskforge_common.grpc.errors import error_details
from tests.metering.service_client import (
    ORG,
    OTHER_ORG,
    Client,
    stamp,
    status_of,
    usage_event,
)

JOB = common_pb2.USAGE_TYPE_JOB_EXECUTION
API = common_pb2.USAGE_TYPE_API_CALL
STORAGE = common_pb2.USAGE_TYPE_STORAGE
WORKERS = common_pb2.USAGE_TYPE_ACTIVE_WORKERS
HOUR = timedelta(hours=1)
# Ten hours before the `clock` fixture's now (2026-03-10T12:00Z).
T0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
T0_SECONDS = int(T0.timestamp())


def at(
    instant: datetime, quantity: str, usage_type: common_pb2.UsageType, organization_id: str = ORG
) -> usage_pb2.UsageEvent:
    event = usage_event(quantity, organization_id=organization_id, usage_type=usage_type)
    event.timestamp.CopyFrom(stamp(instant))
    return event


def query(organization_id: str, start: datetime, end: datetime) -> pb.UsageSummaryQuery:
    return pb.UsageSummaryQuery(
        organization_id=organization_id, start_time=stamp(start), end_time=stamp(end)
    )


async def summaries(
    client: Client, queries: list[pb.UsageSummaryQuery], **auth: Any
) -> list[pb.UsageSummary]:
    answer = await client.stub.GetUsageSummaries(
        pb.GetUsageSummariesRequest(queries=queries), metadata=client.auth(**auth)
    )
    return list(answer.summaries)


async def single(client: Client, q: pb.UsageSummaryQuery) -> list[usage_pb2.UsageSummaryItem]:
    answer = await client.stub.GetUsageSummary(
        pb.GetUsageSummaryRequest(
            organization_id=q.organization_id, start_time=q.start_time, end_time=q.end_time
        ),
        metadata=client.auth(),
    )
    return list(answer.items)


async def record_usage(client: Client) -> None:
    """ORG: jobs 1 before T0, 2 at T0, 4 at T0 + 1 h − 1 µs, 8 at T0 + 1 h; API calls 3 at
    T0 + 30 min; storage 10 GB from T0 − 5 h, 30 GB from T0 + 30 min; 2 workers from T0 − 1 h.
    OTHER_ORG: 100 jobs at T0 + 10 min, 50 GB of storage from T0 − 2 h."""
    events = [
        at(T0 - timedelta(microseconds=1), "1", JOB),
        at(T0, "2", JOB),
        at(T0 + HOUR - timedelta(microseconds=1), "4", JOB),
        at(T0 + HOUR, "8", JOB),
        at(T0 + HOUR / 2, "3", API),
        at(T0 - 5 * HOUR, "10", STORAGE),
        at(T0 + HOUR / 2, "30", STORAGE),
        at(T0 - HOUR, "2", WORKERS),
        at(T0 + timedelta(minutes=10), "100", JOB, OTHER_ORG),
        at(T0 - 2 * HOUR, "50", STORAGE, OTHER_ORG),
    ]
    answer = await client.stub.RecordUsageBatch(
        pb.RecordUsageBatchRequest(events=events), metadata=client.auth()
    )
    assert [r.error_code for r in answer.results] == [""] * len(events)


def quantities(items: list[usage_pb2.UsageSummaryItem]) -> dict[int, str]:
    return {item.usage_type: item.quantity for item in items}


async def test_each_summary_is_what_get_usage_summary_answers_in_request_order(
    client: Client,
) -> None:
    await record_usage(client)
    queries = [
        query(ORG, T0, T0 + HOUR),
        query(OTHER_ORG, T0 - 3 * HOUR, T0 + HOUR),
        query(ORG, T0 + HOUR / 2, T0 + 2 * HOUR),  # overlaps the first
        query(ORG.upper(), T0 - 6 * HOUR, T0),  # answered under the canonical id
        query(ORG, T0, T0 + HOUR),  # the first again
        query("3c1d8e2f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", T0, T0 + HOUR),  # nothing stored
        query(ORG, T0 + HOUR, T0 + HOUR + timedelta(microseconds=1)),
    ]
    answered = await summaries(client, queries)

    assert len(answered) == len(queries)
    for q, summary in zip(queries, answered, strict=True):
        assert summary.organization_id == q.organization_id.lower()
        assert (summary.start_time, summary.end_time) == (q.start_time, q.end_time)
        # Every meter, in GetUsageSummary's order and with its quantities.
        assert list(summary.items) == await single(client, q)
        assert len(summary.items) == 9
    first = quantities(list(answered[0].items))
    # Jobs 2 + 4 (the 8 at the end is the next range's); storage 10 GB for ½ h, then 30 GB.
    assert (first[JOB], first[API], first[STORAGE], first[WORKERS]) == ("6", "3", "20", "2")
    assert quantities(list(answered[1].items))[STORAGE] == "150"  # 50 GB for the last 3 h
    overlap = quantities(list(answered[2].items))
    assert (overlap[JOB], overlap[API], overlap[STORAGE]) == ("12", "3", "45")
    assert quantities(list(answered[3].items))[JOB] == "1"
    assert answered[4] == answered[0]
    assert set(quantities(list(answered[5].items)).values()) == {"0"}
    assert quantities(list(answered[6].items))[JOB] == "8"


async def test_one_to_a_thousand_queries_are_answered_and_more_refused(client: Client) -> None:
    await record_usage(client)
    thousand = [
        query(ORG if n % 2 else OTHER_ORG, T0 + n * timedelta(seconds=1), T0 + HOUR)
        for n in range(1000)
    ]
    answered = await summaries(client, thousand)
    assert [s.start_time for s in answered] == [q.start_time for q in thousand]
    assert [s.organization_id for s in answered] == [q.organization_id for q in thousand]
    assert quantities(list(answered[0].items))[JOB] == "100"  # OTHER_ORG from T0
    assert quantities(list(answered[1].items))[JOB] == "4"  # ORG from T0 + 1 s

    for count in (0, 1001):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await summaries(client, (thousand * 2)[:count])
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = error_details(refused.value)
        assert details.bad_request is not None
        assert [v.field for v in details.bad_request.field_violations] == ["queries"]


def _unset(name: str) -> Callable[[pb.UsageSummaryQuery], None]:
    return lambda q: q.ClearField(name)


def _set(name: str, value: Any) -> Callable[[pb.UsageSummaryQuery], None]:
    def change(q: pb.UsageSummaryQuery) -> None:
        if isinstance(value, Timestamp):
            getattr(q, name).CopyFrom(value)
        else:
            setattr(q, name, value)

    return change


BAD_QUERIES = {
    "no start": (_unset("start_time"), "start_time"),
    "no end": (_unset("end_time"), "end_time"),
    "empty range": (_set("end_time", stamp(T0)), "end_time"),
    "reversed range": (_set("end_time", stamp(T0 - HOUR)), "end_time"),
    "start before 2000": (_set("start_time", Timestamp(seconds=946_684_799)), "start_time"),
    "end at 2100": (_set("end_time", Timestamp(seconds=4_102_444_800)), "end_time"),
    "negative nanos": (_set("start_time", Timestamp(seconds=T0_SECONDS, nanos=-1)), "start_time"),
    "year 1": (_set("start_time", Timestamp(seconds=-62_135_596_800)), "start_time"),
    "no organisation": (_set("organization_id", ""), "organization_id"),
    "not a UUID": (_set("organization_id", "not-a-uuid"), "organization_id"),
    "hyphenless UUID": (_set("organization_id", ORG.replace("-", "")), "organization_id"),
    "huge organisation": (_set("organization_id", "x" * 70_000), "organization_id"),
}


@pytest.mark.parametrize(("change", "field"), BAD_QUERIES.values(), ids=list(BAD_QUERIES))
async def test_a_bad_query_fails_the_call_naming_its_path(
    client: Client, change: Callable[[pb.UsageSummaryQuery], None], field: str
) -> None:
    queries = [query(ORG, T0, T0 + HOUR) for _ in range(5)]
    change(queries[3])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await summaries(client, queries)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(refused.value)
    assert details.info is not None
    assert details.info.reason == "INVALID_FIELD"
    assert details.bad_request is not None
    assert [v.field for v in details.bad_request.field_violations] == [f"queries[3].{field}"]


async def test_a_bound_token_gets_its_own_summaries_and_never_part_of_another(
    client: Client,
) -> None:
    await record_usage(client)
    mine = [query(ORG, T0, T0 + HOUR), query(ORG, T0 - HOUR, T0)]
    answered = await summaries(client, mine, organization_id=ORG)
    assert [quantities(list(s.items))[JOB] for s in answered] == ["6", "1"]

    # One query of another organisation among its own fails the whole call, as GetUsageSummary
    # fails for that organisation: the same status and reason, and no summary at all.
    for queries in ([*mine, query(OTHER_ORG, T0, T0 + HOUR)], [query(OTHER_ORG, T0, T0 + HOUR)]):
        with pytest.raises(grpc.aio.AioRpcError) as batch_denied:
            await summaries(client, queries, organization_id=ORG)
        with pytest.raises(grpc.aio.AioRpcError) as single_denied:
            await client.stub.GetUsageSummary(
                pb.GetUsageSummaryRequest(
                    organization_id=OTHER_ORG, start_time=stamp(T0), end_time=stamp(T0 + HOUR)
                ),
                metadata=client.auth(organization_id=ORG),
            )
        for denied in (batch_denied.value, single_denied.value):
            assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
            info = error_details(denied).info
            assert info is not None
            assert info.reason == "ORGANIZATION_FORBIDDEN"
        assert batch_denied.value.details() == single_denied.value.details()
        assert "100" not in (batch_denied.value.details() or "")

    request = pb.GetUsageSummariesRequest(queries=mine)
    no_scope = client.auth(["usage:write", "limits:read", "billing:write"])
    assert (
        await status_of(client.stub.GetUsageSummaries(request, metadata=no_scope))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert len(await summaries(client, mine, scopes=["billing:read"])) == 2
    assert (
        await status_of(client.stub.GetUsageSummaries(request)) == grpc.StatusCode.UNAUTHENTICATED
    )


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """The SQL statements every engine of this process runs meanwhile."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", count)


async def test_the_statements_of_a_call_do_not_grow_with_its_queries(client: Client) -> None:
    await record_usage(client)
    await summaries(client, [query(ORG, T0, T0 + HOUR)])  # warm: connections opened
    counts = []
    for size in (1, 200, 1000):
        queries = [
            query(ORG if n % 3 else OTHER_ORG, T0 + n * timedelta(seconds=7), T0 + 2 * HOUR)
            for n in range(size)
        ]
        with counted_statements() as statements:
            answered = await summaries(client, queries)
        assert len(answered) == size
        # The one SELECT; on SQLite the read-only unit of work adds PRAGMA query_only ON/OFF.
        assert len([s for s in statements if "usage_records" in s]) == 1, statements
        counts.append(len(statements))
    assert counts[0] == counts[1] == counts[2] <= 3, counts
