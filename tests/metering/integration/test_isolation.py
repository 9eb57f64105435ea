"""One caller's bad input never fails, slows or changes another caller's request (SPEC §11):
an organisation's valid calls run while another organisation, the same organisation with
hostile fields, and callers with bad tokens send every kind of bad input at the same time, so
they share group-commit transactions, caches and batches. Each valid call must succeed with its
own answer, and in the end the organisation holds exactly what its valid calls recorded.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any, cast

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import metering_service_pb2_grpc, usage_pb2
from taskforge_common.clock import ManualClock
from taskforge_common.db.engine import Database
from taskforge_metering.storage import tables
from tests.metering.service_client import ORG, OTHER_ORG, Client, grant, start_service
from tests.metering.strategies import (
    CLOSED_BEFORE,
    INT64_MAX,
    SERVICE,
    SPEC_STATUSES,
    Auth,
    Code,
    auth_metadata,
)

JOB = common_pb2.USAGE_TYPE_JOB_EXECUTION
# A valid call that waits this long behind bad input has been slowed beyond reason.
DEADLINE = timedelta(seconds=15).total_seconds()


@pytest.fixture
async def served(
    metering_database: Database, clock: ManualClock
) -> AsyncIterator[tuple[Client, grpc.aio.Channel]]:
    running = await start_service(metering_database, clock)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield Client(metering_service_pb2_grpc.MeteringServiceStub(channel), clock), channel
    await running.stop(0)


def _event(organization_id: str = OTHER_ORG, **fields: Any) -> usage_pb2.UsageEvent:
    values: dict[str, Any] = {
        "organization_id": organization_id,
        "usage_type": JOB,
        "quantity": "1",
        "idempotency_key": "bad",
    }
    values.update(fields)
    return usage_pb2.UsageEvent(**values)


def bad_events(organization_id: str) -> list[usage_pb2.UsageEvent]:
    """Events SPEC §11 refuses, each for one reason."""
    return [
        _event(organization_id, timestamp=Timestamp(seconds=-62135596800)),
        _event(organization_id, timestamp=Timestamp(seconds=INT64_MAX)),
        _event(organization_id, timestamp=Timestamp(seconds=253402300799, nanos=999_999_999)),
        _event(organization_id, timestamp=Timestamp(seconds=1773144000, nanos=-1)),
        _event(organization_id, timestamp=Timestamp(seconds=4102444800)),
        _event(organization_id, quantity="NaN"),
        _event(organization_id, quantity="-1"),
        _event(organization_id, quantity="1.0000001"),
        _event(organization_id, quantity="0" * 100_000 + "1"),
        _event(organization_id, quantity="1000000000001"),
        _event(organization_id, usage_type=99),
        _event(organization_id, usage_type=0),
        _event(organization_id, idempotency_key=""),
        _event(organization_id, idempotency_key="k" * 256),
        _event(organization_id, idempotency_key="k\x00"),
        _event(organization_id, metadata={f"k{i}": "v" for i in range(17)}),
        _event(organization_id, metadata={"k": "v" * 1024}),
        _event(organization_id, metadata={"k": "\x00"}),
        _event("not-a-uuid"),
        _event(ORG.replace("-", "")),
    ]


def _summary_query(organization_id: str, **fields: Any) -> pb.UsageSummaryQuery:
    """A query of February 2026, before any usage of the test."""
    values: dict[str, Any] = {
        "organization_id": organization_id,
        "start_time": Timestamp(seconds=CLOSED_BEFORE - 28 * 86_400),
        "end_time": Timestamp(seconds=CLOSED_BEFORE),
    }
    values.update(fields)
    return pb.UsageSummaryQuery(**values)


def bad_calls(client: Client) -> list[tuple[str, Message | bytes, tuple[tuple[str, str], ...]]]:
    """(method, request or raw bytes, metadata) of calls that must all fail."""
    everything = client.auth()
    ok_event = _event(ORG, idempotency_key="sneaky")
    calls: list[tuple[str, Message | bytes, tuple[tuple[str, str], ...]]] = []
    for event in bad_events(OTHER_ORG) + bad_events(ORG):
        calls.append(("RecordUsage", pb.RecordUsageRequest(event=event), everything))
    # Well-formed events that fail only inside the transaction they share with valid ones: a
    # key reused with another payload, usage of OTHER_ORG's closed period.
    calls += [
        ("RecordUsage", pb.RecordUsageRequest(event=event), everything)
        for event in (
            _event(OTHER_ORG, quantity="2", idempotency_key="stored"),
            _event(OTHER_ORG, timestamp=Timestamp(seconds=CLOSED_BEFORE - 1), idempotency_key="c"),
        )
    ]
    calls += [
        ("RecordUsageBatch", pb.RecordUsageBatchRequest(), everything),
        (
            "RecordUsageBatch",
            pb.RecordUsageBatchRequest(
                events=[_event(ORG, idempotency_key=f"over-{n}") for n in range(1001)]
            ),
            everything,
        ),
        ("RecordUsage", pb.RecordUsageRequest(event=ok_event), ()),
        *(
            ("RecordUsage", pb.RecordUsageRequest(event=ok_event), auth_metadata(client, auth))
            for auth in (Auth.FORGED, Auth.EXPIRED, Auth.BOUND_OTHER, Auth.NO_SCOPE, Auth.TWICE)
        ),
        ("RecordUsage", b"\x0a\x05\x0a\x03\xff\xfe\xfd", everything),
        ("RecordUsage", b"\x0a\x05\x0a\x03\xff\xfe\xfd", ()),
        ("RecordUsageBatch", b"\x0a\xff\xff\xff\xff\x07", everything),
        ("CheckLimits", pb.CheckLimitsRequest(organization_id=ORG.upper() + " "), everything),
        (
            "CheckLimits",
            pb.CheckLimitsRequest(organization_id=ORG, usage_type=JOB, requested_quantity="NaN"),
            everything,
        ),
        (
            "CheckLimits",
            pb.CheckLimitsRequest(organization_id=ORG, usage_type=cast(Any, 99)),
            everything,
        ),
        *(
            (
                "ReserveUsage",
                pb.ReserveUsageRequest(
                    organization_id=ORG,
                    usage_type=JOB,
                    quantity=quantity,
                    idempotency_key=f"bad-reserve-{n}",
                    ttl=ttl,
                ),
                everything,
            )
            for n, (quantity, ttl) in enumerate(
                [
                    ("1", Duration(seconds=INT64_MAX)),
                    ("1", Duration(seconds=0, nanos=999_999_999)),
                    ("1", Duration(seconds=1, nanos=-1)),
                    ("0", None),
                    ("1e3", None),
                ]
            )
        ),
        (
            "CommitReservation",
            pb.CommitReservationRequest(reservation_id="00000000-0000-0000-0000-000000000000"),
            everything,
        ),
        ("CommitReservation", pb.CommitReservationRequest(reservation_id="x" * 10_000), everything),
        ("ReleaseReservation", pb.ReleaseReservationRequest(reservation_id=ORG), everything),
        (
            "ListUsageRecords",
            pb.ListUsageRecordsRequest(organization_id=ORG, page_token="A" * 44),
            everything,
        ),
        (
            "ListUsageRecords",
            pb.ListUsageRecordsRequest(organization_id=ORG, page_size=-1),
            everything,
        ),
        (
            "GetUsageSummary",
            pb.GetUsageSummaryRequest(
                organization_id=ORG,
                start_time=Timestamp(seconds=-(2**63)),
                end_time=Timestamp(seconds=INT64_MAX),
            ),
            everything,
        ),
        *(
            ("GetUsageSummaries", pb.GetUsageSummariesRequest(queries=queries), metadata)
            for queries, metadata in [
                ([], everything),
                ([_summary_query(ORG)] * 1001, everything),
                (
                    [_summary_query(ORG), _summary_query(ORG, end_time=Timestamp(seconds=-1))],
                    everything,
                ),
                ([_summary_query(ORG), _summary_query("x" * 10_000)], everything),
                # A token bound to ORG asking for OTHER_ORG too: denied whole, never in part.
                (
                    [_summary_query(ORG), _summary_query(OTHER_ORG)],
                    client.auth(organization_id=ORG),
                ),
                ([_summary_query(ORG)], auth_metadata(client, Auth.BOUND_OTHER)),
                ([_summary_query(ORG)], auth_metadata(client, Auth.NO_SCOPE)),
            ]
        ),
        # Attempts to replace ORG's entitlements with unusable ones: ORG must keep version 1.
        *(
            (
                "UpsertEntitlements",
                pb.UpsertEntitlementsRequest(organization_id=ORG, entitlements=entitlements),
                everything,
            )
            for entitlements in (
                usage_pb2.Entitlements(
                    status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
                    version=99,
                    usage_closed_before=Timestamp(seconds=253402300799),
                ),
                usage_pb2.Entitlements(status="ENTITLEMENT_STATUS_UNSPECIFIED", version=99),
                usage_pb2.Entitlements(
                    status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
                    version=99,
                    limits=[common_pb2.Limit(usage_type=JOB, max="-5")],
                ),
            )
        ),
        (
            "UpsertEntitlements",
            pb.UpsertEntitlementsRequest(
                organization_id=ORG,
                entitlements=usage_pb2.Entitlements(
                    status=usage_pb2.ENTITLEMENT_STATUS_NONE, version=99
                ),
            ),
            auth_metadata(client, Auth.BOUND_OTHER),
        ),
    ]
    return calls


async def fails_as_spec_says(
    channel: grpc.aio.Channel,
    method: str,
    request: Message | bytes,
    metadata: tuple[tuple[str, str], ...],
) -> Code | str:
    """The status the bad call failed with ("BATCH" for a batch whose every event failed)."""
    response_type = type(getattr(pb, f"{method}Response")())
    call = channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=None,
        response_deserializer=response_type.FromString,
    )
    payload = request if isinstance(request, bytes) else request.SerializeToString()
    code: Code | None = None
    try:
        answer = await call(payload, metadata=metadata, timeout=DEADLINE)
    except grpc.aio.AioRpcError as error:
        code, details = error.code(), error.details()
    if code is not None:
        assert code in SPEC_STATUSES, (method, code, details)
        return code
    assert method == "RecordUsageBatch", f"{method} accepted bad input"
    assert all(result.error_code for result in answer.results)
    return "BATCH"


async def test_valid_calls_are_untouched_by_concurrent_bad_input(
    served: tuple[Client, grpc.aio.Channel], metering_database: Database
) -> None:
    client, channel = served
    await grant(client, job_execution="100000", api_call="100000")
    await client.stub.UpsertEntitlements(
        pb.UpsertEntitlementsRequest(
            organization_id=OTHER_ORG,
            entitlements=usage_pb2.Entitlements(
                status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
                version=1,
                usage_closed_before=Timestamp(seconds=CLOSED_BEFORE),
            ),
        ),
        metadata=client.auth(),
    )
    stored = _event(OTHER_ORG, idempotency_key="stored")
    await client.stub.RecordUsage(pb.RecordUsageRequest(event=stored), metadata=client.auth())
    mine = client.auth(organization_id=ORG)
    stub = client.stub

    async def record(n: int) -> None:
        event = _event(ORG, quantity="2", idempotency_key=f"valid-{n}")
        answer = await stub.RecordUsage(
            pb.RecordUsageRequest(event=event), metadata=mine, timeout=DEADLINE
        )
        assert not answer.duplicate
        assert (answer.record.organization_id, answer.record.quantity) == (ORG, "2")
        assert answer.record.idempotency_key == f"valid-{n}"

    async def batch(n: int) -> None:
        events = [_event(ORG, idempotency_key=f"batch-{n}-{i}") for i in range(25)]
        answer = await stub.RecordUsageBatch(
            pb.RecordUsageBatchRequest(events=events), metadata=mine, timeout=DEADLINE
        )
        assert [(r.error_code, r.duplicate) for r in answer.results] == [("", False)] * 25
        assert [r.record.idempotency_key for r in answer.results] == [
            e.idempotency_key for e in events
        ]

    async def check() -> None:
        answer = await stub.CheckLimits(
            pb.CheckLimitsRequest(organization_id=ORG, usage_type=JOB),
            metadata=mine,
            timeout=DEADLINE,
        )
        assert answer.allowed, answer.reason
        assert answer.limits[0].limit == "100000"

    async def reserve_and_commit(n: int) -> None:
        reserved = await stub.ReserveUsage(
            pb.ReserveUsageRequest(
                organization_id=ORG, usage_type=JOB, quantity="3", idempotency_key=f"r-{n}"
            ),
            metadata=mine,
            timeout=DEADLINE,
        )
        assert reserved.allowed, reserved.reason
        committed = await stub.CommitReservation(
            pb.CommitReservationRequest(reservation_id=reserved.reservation.id),
            metadata=mine,
            timeout=DEADLINE,
        )
        assert (committed.record.quantity, committed.record.usage_type) == ("3", JOB)

    async def summaries() -> None:
        # February: before any of the test's usage, so every quantity is 0 whatever has run.
        queries = [_summary_query(ORG)] * 3
        answer = await stub.GetUsageSummaries(
            pb.GetUsageSummariesRequest(queries=queries), metadata=mine, timeout=DEADLINE
        )
        assert [s.organization_id for s in answer.summaries] == [ORG] * 3
        assert {item.quantity for s in answer.summaries for item in s.items} == {"0"}

    valid: list[Awaitable[None]] = [
        *(summaries() for _ in range(10)),
        *(record(n) for n in range(60)),
        *(batch(n) for n in range(8)),
        *(check() for _ in range(20)),
        *(reserve_and_commit(n) for n in range(10)),
    ]
    bad = [fails_as_spec_says(channel, *call) for call in bad_calls(client) * 2]
    calls: list[Awaitable[Any]] = [*valid, *bad]
    random.Random(7).shuffle(calls)
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert not failures, failures[:3]
    assert {
        Code.INVALID_ARGUMENT,
        Code.UNAUTHENTICATED,
        Code.PERMISSION_DENIED,
        Code.ALREADY_EXISTS,
        Code.FAILED_PRECONDITION,
    } <= set(outcomes)

    # Exactly what the valid calls recorded: 60 × 2 + 8 × 25 × 1 + 10 × 3 jobs in 270 records.
    listed = await stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(organization_id=ORG), metadata=mine
    )
    assert listed.total_count == 60 + 200 + 10
    limits = await stub.CheckLimits(
        pb.CheckLimitsRequest(organization_id=ORG, usage_type=JOB), metadata=mine
    )
    assert (limits.limits[0].current, limits.limits[0].reserved) == ("350", "0")
    current = await stub.GetCurrentUsage(
        pb.GetCurrentUsageRequest(organization_id=ORG), metadata=mine
    )
    assert (current.usage.jobs_executed, current.usage.api_calls_made) == ("350", "0")
    other = await stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(organization_id=OTHER_ORG), metadata=client.auth()
    )
    assert other.total_count == 1  # the one stored before
    async with metering_database.read_only_transaction() as reader:
        session = reader.session
        records = await session.execute(select(func.count()).select_from(tables.usage_records))
        reservations = await session.execute(
            select(tables.reservations.c.status, func.count()).group_by(
                tables.reservations.c.status
            )
        )
        versions = await session.execute(
            select(tables.entitlements.c.organization_id, tables.entitlements.c.version)
        )
        assert records.scalar_one() == 271
        assert dict(reservations.tuples().all()) == {"committed": 10}
        assert dict(versions.tuples().all()) == {ORG: 1, OTHER_ORG: 1}
