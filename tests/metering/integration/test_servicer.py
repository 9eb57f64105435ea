"""MeteringService through a real grpc.aio server on 127.0.0.1 port 0, on PostgreSQL and SQLite:
authorization, tenant isolation, and the status of every bad-input class (SPEC §10, §11)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import metering_service_pb2_grpc, usage_pb2
from taskforge_common.clock import ManualClock
from taskforge_common.db.engine import Database
from taskforge_common.grpc.auth import issue_token
from taskforge_common.grpc.errors import error_details
from tests.metering.service_client import (
    ALL_SCOPES,
    ORG,
    OTHER_ORG,
    SECRET,
    Client,
    grant,
    stamp,
    start_service,
    status_of,
    usage_event,
)


async def test_record_usage_round_trip_and_duplicate(client: Client) -> None:
    request = pb.RecordUsageRequest(event=usage_event("2.5", "job-1"))
    first = await client.stub.RecordUsage(request, metadata=client.auth())
    again = await client.stub.RecordUsage(request, metadata=client.auth())
    assert first.record.quantity == "2.5"
    assert first.record.usage_type == common_pb2.USAGE_TYPE_JOB_EXECUTION
    assert first.record.recorded_at.seconds == int(client.clock.now().timestamp())
    assert not first.duplicate
    assert again.duplicate
    assert again.record.id == first.record.id


@pytest.mark.parametrize(
    ("event", "message_part"),
    [
        (usage_event("-1"), "quantity"),
        (usage_event("NaN"), "quantity"),
        (usage_event("1e3"), "quantity"),
        (usage_event("0.0000001"), "decimal places"),
        (usage_event("1000000000001"), "at most"),
        (usage_event("1", organization_id="not-a-uuid"), "organization_id"),
        (usage_event("1", usage_type=cast(common_pb2.UsageType, 0)), "usage_type"),
        (usage_event("1", usage_type=cast(common_pb2.UsageType, 999)), "usage_type"),
        (
            usage_pb2.UsageEvent(
                organization_id=ORG, usage_type=common_pb2.USAGE_TYPE_API_CALL, quantity="1"
            ),
            "idempotency_key",
        ),
    ],
)
async def test_bad_events_are_invalid_argument(
    client: Client, event: usage_pb2.UsageEvent, message_part: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await client.stub.RecordUsage(pb.RecordUsageRequest(event=event), metadata=client.auth())
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message_part in (failure.value.details() or "")


async def test_reused_key_with_other_payload_is_already_exists(client: Client) -> None:
    await client.stub.RecordUsage(
        pb.RecordUsageRequest(event=usage_event("1", "k")), metadata=client.auth()
    )
    code = await status_of(
        client.stub.RecordUsage(
            pb.RecordUsageRequest(event=usage_event("2", "k")), metadata=client.auth()
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS


async def test_closed_period_is_failed_precondition(client: Client) -> None:
    await client.stub.UpsertEntitlements(
        pb.UpsertEntitlementsRequest(
            organization_id=ORG,
            entitlements=usage_pb2.Entitlements(
                status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
                usage_closed_before=stamp(client.clock.now()),
                version=1,
            ),
        ),
        metadata=client.auth(),
    )
    event = usage_event()
    event.timestamp.CopyFrom(stamp(client.clock.now() - timedelta(hours=1)))
    code = await status_of(
        client.stub.RecordUsage(pb.RecordUsageRequest(event=event), metadata=client.auth())
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION


async def test_batch_reports_each_event(client: Client) -> None:
    response = await client.stub.RecordUsageBatch(
        pb.RecordUsageBatchRequest(
            events=[usage_event("1", "a"), usage_event("-5", "b"), usage_event("1", "a")]
        ),
        metadata=client.auth(),
    )
    codes = [r.error_code for r in response.results]
    assert codes == ["", "INVALID_ARGUMENT", ""]
    assert response.results[2].duplicate
    assert "quantity" in response.results[1].error_message
    too_many = pb.RecordUsageBatchRequest(events=[usage_event() for _ in range(1001)])
    code = await status_of(client.stub.RecordUsageBatch(too_many, metadata=client.auth()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_check_limits_answers_denials_with_reasons(client: Client) -> None:
    no_subscription = await client.stub.CheckLimits(
        pb.CheckLimitsRequest(organization_id=ORG), metadata=client.auth()
    )
    assert not no_subscription.allowed
    assert no_subscription.reason == "no active subscription"
    await grant(client, job_execution="2")
    await client.stub.RecordUsage(
        pb.RecordUsageRequest(event=usage_event("2")), metadata=client.auth()
    )
    check = await client.stub.CheckLimits(
        pb.CheckLimitsRequest(organization_id=ORG, usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION),
        metadata=client.auth(),
    )
    assert not check.allowed
    assert "job_execution" in check.reason
    assert (check.limits[0].limit, check.limits[0].current, check.limits[0].remaining) == (
        "2",
        "2",
        "0",
    )
    unlimited = await client.stub.CheckLimits(
        pb.CheckLimitsRequest(organization_id=ORG, usage_type=common_pb2.USAGE_TYPE_API_CALL),
        metadata=client.auth(),
    )
    assert unlimited.allowed
    assert unlimited.limits[0].limit == ""


async def test_reservation_lifecycle(client: Client) -> None:
    await grant(client, active_workers="3")
    reserve = pb.ReserveUsageRequest(
        organization_id=ORG,
        usage_type=common_pb2.USAGE_TYPE_ACTIVE_WORKERS,
        quantity="2",
        idempotency_key="worker-start-1",
        ttl=Duration(seconds=60),
    )
    granted = await client.stub.ReserveUsage(reserve, metadata=client.auth())
    retried = await client.stub.ReserveUsage(reserve, metadata=client.auth())
    assert granted.allowed
    assert retried.reservation.id == granted.reservation.id
    assert granted.limit.remaining == "1"
    reserve.idempotency_key, reserve.quantity = "worker-start-2", "2"
    denied = await client.stub.ReserveUsage(reserve, metadata=client.auth())
    assert not denied.allowed
    committed = await client.stub.CommitReservation(
        pb.CommitReservationRequest(reservation_id=granted.reservation.id),
        metadata=client.auth(),
    )
    assert committed.record.quantity == "2"
    code = await status_of(
        client.stub.ReleaseReservation(
            pb.ReleaseReservationRequest(reservation_id=granted.reservation.id),
            metadata=client.auth(),
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    missing = await status_of(
        client.stub.CommitReservation(
            pb.CommitReservationRequest(reservation_id=str(uuid.uuid4())), metadata=client.auth()
        )
    )
    assert missing == grpc.StatusCode.NOT_FOUND


async def test_usage_queries(client: Client) -> None:
    await grant(client)
    await client.stub.RecordUsageBatch(
        pb.RecordUsageBatchRequest(
            events=[
                usage_event("3", usage_type=common_pb2.USAGE_TYPE_API_CALL),
                usage_event("7.5", usage_type=common_pb2.USAGE_TYPE_STORAGE),
            ]
        ),
        metadata=client.auth(),
    )
    current = await client.stub.GetCurrentUsage(
        pb.GetCurrentUsageRequest(organization_id=ORG), metadata=client.auth()
    )
    assert (current.usage.api_calls_made, current.usage.storage_used_gb) == ("3", "7.5")
    assert current.usage.period_start.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 1, tzinfo=UTC)
    summary = await client.stub.GetUsageSummary(
        pb.GetUsageSummaryRequest(
            organization_id=ORG,
            start_time=stamp(client.clock.now()),
            end_time=stamp(client.clock.now() + timedelta(hours=2)),
        ),
        metadata=client.auth(),
    )
    by_type = {item.usage_type: item.quantity for item in summary.items}
    assert len(by_type) == 9
    assert by_type[common_pb2.USAGE_TYPE_STORAGE] == "15"
    listed = await client.stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(organization_id=ORG, page_size=1), metadata=client.auth()
    )
    assert listed.total_count == 2
    assert len(listed.records) == 1
    assert listed.next_page_token
    bad = await status_of(
        client.stub.ListUsageRecords(
            pb.ListUsageRecordsRequest(organization_id=ORG, page_token="garbage"),
            metadata=client.auth(),
        )
    )
    assert bad == grpc.StatusCode.INVALID_ARGUMENT
    reversed_range = await status_of(
        client.stub.GetUsageSummary(
            pb.GetUsageSummaryRequest(
                organization_id=ORG,
                start_time=stamp(client.clock.now()),
                end_time=stamp(client.clock.now() - timedelta(hours=1)),
            ),
            metadata=client.auth(),
        )
    )
    assert reversed_range == grpc.StatusCode.INVALID_ARGUMENT


async def test_older_entitlements_are_ignored(client: Client) -> None:
    await grant(client, job_execution="10")
    stale = await client.stub.UpsertEntitlements(
        pb.UpsertEntitlementsRequest(
            organization_id=ORG,
            entitlements=usage_pb2.Entitlements(
                status=usage_pb2.ENTITLEMENT_STATUS_PAST_DUE, version=1
            ),
        ),
        metadata=client.auth(),
    )
    assert stale.entitlements.status == usage_pb2.ENTITLEMENT_STATUS_ACTIVE
    newer = await client.stub.UpsertEntitlements(
        pb.UpsertEntitlementsRequest(
            organization_id=ORG,
            entitlements=usage_pb2.Entitlements(
                status=usage_pb2.ENTITLEMENT_STATUS_PAST_DUE, version=2
            ),
        ),
        metadata=client.auth(),
    )
    assert newer.entitlements.status == usage_pb2.ENTITLEMENT_STATUS_PAST_DUE
    check = await client.stub.CheckLimits(
        pb.CheckLimitsRequest(organization_id=ORG), metadata=client.auth()
    )
    assert check.reason == "payment overdue"


async def test_changed_entitlements_apply_to_the_next_check(client: Client) -> None:
    # On PostgreSQL parsed entitlements are reused between reads: a change must still show.
    request = pb.CheckLimitsRequest(
        organization_id=ORG, usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION
    )
    await grant(client, job_execution="10")
    before = await client.stub.CheckLimits(request, metadata=client.auth())
    await grant(client, version=2, job_execution="20")
    after = await client.stub.CheckLimits(request, metadata=client.auth())
    assert (before.limits[0].limit, after.limits[0].limit) == ("10", "20")


# -- authentication and authorisation -----------------------------------------------------


async def test_missing_forged_and_expired_tokens_are_unauthenticated(client: Client) -> None:
    request = pb.CheckLimitsRequest(organization_id=ORG)
    assert await status_of(client.stub.CheckLimits(request)) == grpc.StatusCode.UNAUTHENTICATED
    forged = issue_token(
        "another-secret-that-is-long-enough!!", "x", ALL_SCOPES, now=client.clock.now()
    )
    code = await status_of(
        client.stub.CheckLimits(request, metadata=(("authorization", f"Bearer {forged}"),))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    expired = issue_token(
        SECRET,
        "x",
        ALL_SCOPES,
        ttl=timedelta(minutes=1),
        now=client.clock.now() - timedelta(hours=1),
    )
    code = await status_of(
        client.stub.CheckLimits(request, metadata=(("authorization", f"Bearer {expired}"),))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [("usage:write", False), ("limits:read", True), ("billing:read", False)],
)
async def test_check_limits_needs_limits_read(client: Client, scope: str, allowed: bool) -> None:
    call = client.stub.CheckLimits(
        pb.CheckLimitsRequest(organization_id=ORG), metadata=client.auth([scope])
    )
    if allowed:
        assert (await call).reason == "no active subscription"
    else:
        assert await status_of(call) == grpc.StatusCode.PERMISSION_DENIED


async def test_entitlements_need_admin(client: Client) -> None:
    code = await status_of(
        client.stub.UpsertEntitlements(
            pb.UpsertEntitlementsRequest(
                organization_id=ORG,
                entitlements=usage_pb2.Entitlements(
                    status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE, version=1
                ),
            ),
            metadata=client.auth(["usage:write", "limits:read", "billing:read", "billing:write"]),
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_organization_bound_token_never_sees_another_organization(client: Client) -> None:
    await grant(client, OTHER_ORG, job_execution="5")
    other = client.auth(organization_id=OTHER_ORG)
    recorded = await client.stub.RecordUsage(
        pb.RecordUsageRequest(event=usage_event("1", organization_id=OTHER_ORG)), metadata=other
    )
    outcome = await client.stub.ReserveUsage(
        pb.ReserveUsageRequest(
            organization_id=OTHER_ORG,
            usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
            quantity="1",
            idempotency_key="r",
        ),
        metadata=other,
    )
    mine = client.auth(organization_id=ORG)
    denied = grpc.StatusCode.PERMISSION_DENIED
    calls = [
        client.stub.RecordUsage(
            pb.RecordUsageRequest(event=usage_event(organization_id=OTHER_ORG)), metadata=mine
        ),
        client.stub.CheckLimits(pb.CheckLimitsRequest(organization_id=OTHER_ORG), metadata=mine),
        client.stub.GetCurrentUsage(
            pb.GetCurrentUsageRequest(organization_id=OTHER_ORG), metadata=mine
        ),
        client.stub.ListUsageRecords(
            pb.ListUsageRecordsRequest(organization_id=OTHER_ORG), metadata=mine
        ),
        client.stub.GetUsageSummary(
            pb.GetUsageSummaryRequest(
                organization_id=OTHER_ORG,
                start_time=stamp(client.clock.now() - timedelta(days=1)),
                end_time=stamp(client.clock.now()),
            ),
            metadata=mine,
        ),
        client.stub.GetUsageSummaries(
            pb.GetUsageSummariesRequest(
                queries=[
                    pb.UsageSummaryQuery(
                        organization_id=organization_id,
                        start_time=stamp(client.clock.now() - timedelta(days=1)),
                        end_time=stamp(client.clock.now()),
                    )
                    for organization_id in (ORG, OTHER_ORG)
                ]
            ),
            metadata=mine,
        ),
        client.stub.ReserveUsage(
            pb.ReserveUsageRequest(
                organization_id=OTHER_ORG,
                usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
                quantity="1",
                idempotency_key="x",
            ),
            metadata=mine,
        ),
    ]
    for call in calls:
        assert await status_of(call) == denied
    # Another organisation's reservation answers as if it did not exist.
    for call in (
        client.stub.CommitReservation(
            pb.CommitReservationRequest(reservation_id=outcome.reservation.id), metadata=mine
        ),
        client.stub.ReleaseReservation(
            pb.ReleaseReservationRequest(reservation_id=outcome.reservation.id), metadata=mine
        ),
    ):
        assert await status_of(call) == grpc.StatusCode.NOT_FOUND
    batch = await client.stub.RecordUsageBatch(
        pb.RecordUsageBatchRequest(events=[usage_event(organization_id=OTHER_ORG), usage_event()]),
        metadata=mine,
    )
    assert [r.error_code for r in batch.results] == ["PERMISSION_DENIED", ""]
    listed = await client.stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(organization_id=OTHER_ORG), metadata=other
    )
    assert [r.id for r in listed.records] == [recorded.record.id]


async def test_ingest_rate_limit_is_resource_exhausted(
    metering_database: Database, clock: ManualClock
) -> None:
    running = await start_service(metering_database, clock, ingest_rate_per_second=3)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = metering_service_pb2_grpc.MeteringServiceStub(channel)
            metadata = Client(stub, clock).auth()
            for _ in range(3):
                await stub.RecordUsage(
                    pb.RecordUsageRequest(event=usage_event()), metadata=metadata
                )
            with pytest.raises(grpc.aio.AioRpcError) as limited:
                await stub.RecordUsage(
                    pb.RecordUsageRequest(event=usage_event()), metadata=metadata
                )
            assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = error_details(limited.value)
            assert details.info is not None
            assert details.info.reason == "RATE_LIMITED"
            assert details.retry is not None  # one token is back after 1/3 s
            assert details.retry.retry_delay.ToTimedelta() == timedelta(microseconds=333333)
            clock.advance(timedelta(seconds=1))  # the bucket refills with time
            await stub.RecordUsage(pb.RecordUsageRequest(event=usage_event()), metadata=metadata)
    finally:
        await running.stop(0)


async def test_an_unreachable_database_is_unavailable_not_internal(clock: ManualClock) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nowhere")
    running = await start_service(database, clock)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            client = Client(metering_service_pb2_grpc.MeteringServiceStub(channel), clock)
            calls: list[Awaitable[Any]] = [
                client.stub.RecordUsage(
                    pb.RecordUsageRequest(event=usage_event()), metadata=client.auth()
                ),
                client.stub.CheckLimits(
                    pb.CheckLimitsRequest(organization_id=ORG), metadata=client.auth()
                ),
            ]
            for call in calls:
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await call
                assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "retry" in (raised.value.details() or "")
    finally:
        await running.stop(0)
        await database.dispose()
