"""The defects of the metering hardening review, each through a real grpc.aio server on
PostgreSQL and SQLite: bad input answers INVALID_ARGUMENT (never INTERNAL), fails only the
request (or the event) that carried it, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import base64
import gc
import tracemalloc
import uuid
from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2
from taskforge_common.grpc.errors import error_details
from tests.metering.service_client import (
    ORG,
    OTHER_ORG,
    Client,
    grant,
    stamp,
    status_of,
    usage_event,
)

YEAR_ONE = Timestamp(seconds=-62135596800)  # 0001-01-01T00:00:00Z
LAST_INSTANT = Timestamp(seconds=253402300799, nanos=999_999_999)  # 9999-12-31T23:59:59.999999999Z


def jobs_reservation(
    quantity: str, key: str, ttl: Duration | None = None
) -> pb.ReserveUsageRequest:
    return pb.ReserveUsageRequest(
        organization_id=ORG,
        usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
        quantity=quantity,
        idempotency_key=key,
        ttl=ttl,
    )


async def recorded(client: Client, organization_id: str) -> int:
    listed = await client.stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(organization_id=organization_id), metadata=client.auth()
    )
    return listed.total_count


async def test_a_year_one_event_fails_alone_and_never_its_group(client: Client) -> None:
    await grant(client, organization_id=ORG, job_execution="1000")
    await grant(client, organization_id=OTHER_ORG, job_execution="1000")
    bad = usage_event(organization_id=OTHER_ORG)
    bad.timestamp.CopyFrom(YEAR_ONE)

    async def bad_call() -> grpc.StatusCode:
        return await status_of(
            client.stub.RecordUsage(pb.RecordUsageRequest(event=bad), metadata=client.auth())
        )

    # Valid calls of one organisation interleaved with the bad event of another: they share
    # group-commit transactions.
    valid = [
        client.stub.RecordUsage(pb.RecordUsageRequest(event=usage_event()), metadata=client.auth())
        for _ in range(75)
    ]
    answers, codes = await asyncio.gather(
        asyncio.gather(*valid), asyncio.gather(*(bad_call() for _ in range(25)))
    )
    assert all(not answer.duplicate for answer in answers)
    assert set(codes) == {grpc.StatusCode.INVALID_ARGUMENT}
    assert (await recorded(client, ORG), await recorded(client, OTHER_ORG)) == (75, 0)

    batch = await client.stub.RecordUsageBatch(
        pb.RecordUsageBatchRequest(events=[usage_event(), bad, usage_event()]),
        metadata=client.auth(),
    )
    assert [r.error_code for r in batch.results] == ["", "INVALID_ARGUMENT", ""]
    assert batch.results[1].error_field == "events[1].timestamp"
    assert batch.results[1].error_reason == "INVALID_FIELD"


async def test_a_year_one_commit_is_invalid_argument(client: Client) -> None:
    await grant(client, job_execution="10")
    reserved = await client.stub.ReserveUsage(
        jobs_reservation("1", "r"),
        metadata=client.auth(),
    )
    code = await status_of(
        client.stub.CommitReservation(
            pb.CommitReservationRequest(reservation_id=reserved.reservation.id, timestamp=YEAR_ONE),
            metadata=client.auth(),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert await recorded(client, ORG) == 0


@pytest.mark.parametrize("field", ["period_anchor", "usage_closed_before", "current_period_end"])
@pytest.mark.parametrize("instant", [YEAR_ONE, LAST_INSTANT], ids=["year-1", "year-9999"])
async def test_extreme_entitlement_times_are_refused_and_break_nothing(
    client: Client, field: str, instant: Timestamp
) -> None:
    await grant(client, job_execution="10")
    entitlements = usage_pb2.Entitlements(status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE, version=9)
    getattr(entitlements, field).CopyFrom(instant)
    code = await status_of(
        client.stub.UpsertEntitlements(
            pb.UpsertEntitlementsRequest(organization_id=ORG, entitlements=entitlements),
            metadata=client.auth(),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # Nothing was stored: the organisation keeps its version 1 and works.
    await client.stub.RecordUsage(
        pb.RecordUsageRequest(event=usage_event()), metadata=client.auth()
    )
    check = await client.stub.CheckLimits(
        pb.CheckLimitsRequest(organization_id=ORG, usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION),
        metadata=client.auth(),
    )
    assert (check.allowed, check.limits[0].current) == (True, "1")


async def test_oversized_but_valid_looking_strings_are_refused(client: Client) -> None:
    await grant(client, job_execution="10")
    huge_quantity = "0" * 1_000_000 + "1"
    huge_org = ORG.replace("-", "-" * 1000)
    for request in (
        pb.CheckLimitsRequest(
            organization_id=ORG,
            usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
            requested_quantity=huge_quantity,
        ),
        pb.CheckLimitsRequest(organization_id=huge_org),
        pb.CheckLimitsRequest(organization_id=ORG.upper().replace("-", "")),
    ):
        code = await status_of(client.stub.CheckLimits(request, metadata=client.auth()))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    # Exactly 40 characters is a quantity; 41 is not.
    forty = "0" * 32 + "1.000000"
    assert len(forty) == 40
    allowed = await client.stub.CheckLimits(
        pb.CheckLimitsRequest(
            organization_id=ORG,
            usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
            requested_quantity=forty,
        ),
        metadata=client.auth(),
    )
    assert allowed.allowed
    code = await status_of(
        client.stub.CheckLimits(
            pb.CheckLimitsRequest(
                organization_id=ORG,
                usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION,
                requested_quantity="0" + forty,
            ),
            metadata=client.auth(),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_quantities_are_never_rounded(client: Client) -> None:
    code = await status_of(
        client.stub.RecordUsage(
            pb.RecordUsageRequest(event=usage_event("1.0000000000000000000000000001")),
            metadata=client.auth(),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert await recorded(client, ORG) == 0


async def test_reservation_ttls_out_of_range_are_invalid_argument(client: Client) -> None:
    await grant(client, job_execution="10")
    for ttl in (
        Duration(seconds=10**15),
        Duration(seconds=-1),
        Duration(seconds=0, nanos=999_999_999),
        Duration(seconds=30 * 86_400, nanos=1),
        Duration(seconds=1, nanos=-1),
    ):
        code = await status_of(
            client.stub.ReserveUsage(
                jobs_reservation("1", str(uuid.uuid4()), ttl),
                metadata=client.auth(),
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT, ttl
    longest = await client.stub.ReserveUsage(
        jobs_reservation("1", "longest", Duration(seconds=30 * 86_400)),
        metadata=client.auth(),
    )
    expires = longest.reservation.expires_at.ToDatetime() - client.clock.now().replace(tzinfo=None)
    assert expires == timedelta(days=30)


@pytest.mark.parametrize(
    "token",
    [
        base64.urlsafe_b64encode(b"9999-12-31T23:59:59-23:59|x").decode(),
        base64.urlsafe_b64encode(b"0001-01-01T00:00:00+23:59|x").decode(),
        base64.urlsafe_b64encode(b"2026-03-01T00:00:00+00:00|\x00").decode(),
        "garbage",
        "A" * 44,
        "\x00" * 44,
    ],
)
async def test_crafted_page_tokens_are_invalid_argument(client: Client, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await client.stub.ListUsageRecords(
            pb.ListUsageRecordsRequest(organization_id=ORG, page_token=token),
            metadata=client.auth(),
        )
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid page_token" in (failure.value.details() or "")


async def test_a_page_token_pages_only_the_query_that_issued_it(client: Client) -> None:
    await client.stub.RecordUsageBatch(
        pb.RecordUsageBatchRequest(events=[usage_event() for _ in range(3)]),
        metadata=client.auth(),
    )
    first = await client.stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(organization_id=ORG, page_size=1), metadata=client.auth()
    )
    second = await client.stub.ListUsageRecords(
        pb.ListUsageRecordsRequest(
            organization_id=ORG, page_size=1, page_token=first.next_page_token
        ),
        metadata=client.auth(),
    )
    assert second.records[0].id != first.records[0].id
    other_query = pb.ListUsageRecordsRequest(
        organization_id=ORG,
        usage_type=common_pb2.USAGE_TYPE_API_CALL,
        page_token=first.next_page_token,
    )
    assert (
        await status_of(client.stub.ListUsageRecords(other_query, metadata=client.auth()))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_racing_reservations_with_one_key_never_answer_internal(client: Client) -> None:
    await grant(client, job_execution="100", api_call="100", data_transfer="100")
    types = [
        common_pb2.USAGE_TYPE_JOB_EXECUTION,
        common_pb2.USAGE_TYPE_API_CALL,
        common_pb2.USAGE_TYPE_DATA_TRANSFER,
    ]

    async def reserve(usage_type: common_pb2.UsageType) -> tuple[str, int]:
        try:
            answer = await client.stub.ReserveUsage(
                pb.ReserveUsageRequest(
                    organization_id=ORG,
                    usage_type=usage_type,
                    quantity="1",
                    idempotency_key="one-key",
                ),
                metadata=client.auth(),
            )
        except grpc.aio.AioRpcError as error:
            return error.code().name, usage_type
        return answer.reservation.id, usage_type

    outcomes = await asyncio.gather(*(reserve(types[n % 3]) for n in range(30)))
    ids = {answer for answer, _ in outcomes if answer != "ALREADY_EXISTS"}
    assert len(ids) == 1, outcomes  # one reservation; the others' payload differs
    winner = {usage_type for answer, usage_type in outcomes if answer in ids}
    assert len(winner) == 1
    assert all(answer == "ALREADY_EXISTS" for answer, t in outcomes if t not in winner)


async def test_a_commit_retried_with_another_quantity_is_refused(client: Client) -> None:
    await grant(client, job_execution="10")
    reserved = await client.stub.ReserveUsage(
        jobs_reservation("4", "job-1"),
        metadata=client.auth(),
    )
    commit = pb.CommitReservationRequest(reservation_id=reserved.reservation.id, quantity="12")
    first = await client.stub.CommitReservation(commit, metadata=client.auth())
    assert (first.limit.current, first.limit.exceeded) == ("12", True)
    again = await client.stub.CommitReservation(commit, metadata=client.auth())
    assert again.record.id == first.record.id
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await client.stub.CommitReservation(
            pb.CommitReservationRequest(reservation_id=reserved.reservation.id, quantity="4"),
            metadata=client.auth(),
        )
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already committed with quantity 12" in (failure.value.details() or "")


async def test_entitlements_compare_organisation_ids_in_canonical_form(client: Client) -> None:
    entitlements = usage_pb2.Entitlements(
        status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
        version=1,
        period_anchor=stamp(client.clock.now()),
    )
    bound = client.auth(organization_id=ORG)
    stored = await client.stub.UpsertEntitlements(
        pb.UpsertEntitlementsRequest(organization_id=ORG.upper(), entitlements=entitlements),
        metadata=bound,
    )
    assert stored.entitlements.version == 1
    code = await status_of(
        client.stub.UpsertEntitlements(
            pb.UpsertEntitlementsRequest(organization_id=OTHER_ORG, entitlements=entitlements),
            metadata=bound,
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_made_up_method_names_cost_nothing_lasting(client: Client) -> None:
    """3,000 calls to distinct 4,000-character method names, with and without a token, answer
    UNIMPLEMENTED and leave nothing behind: the tracing interceptor cached them, which kept
    over 12 MB for these; what else the process allocates meanwhile stays far below."""
    channel = client.channel
    assert channel is not None

    async def call(n: int) -> grpc.StatusCode:
        path = f"/x{n}.{'m' * 4000}/M"
        metadata = client.auth() if n % 2 else ()
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await channel.unary_unary(path, None, None)(b"", metadata=metadata)
        return failure.value.code()

    await asyncio.gather(*(call(n) for n in range(50)))  # warm up whatever grpc allocates once
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, 3000, 100):
            codes = await asyncio.gather(*(call(n) for n in range(start + 50, start + 150)))
            assert set(codes) == {grpc.StatusCode.UNIMPLEMENTED}
        gc.collect()  # what the calls left as garbage is not kept
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 3_000_000, f"{grown} bytes kept after 3,000 made-up method names"


async def test_errors_carry_a_reason_and_the_offending_field(client: Client) -> None:
    """What a program acts on: the reason of each error and, for bad input, the field's path."""
    await grant(client, job_execution="10")
    bad = usage_event()
    bad.timestamp.CopyFrom(YEAR_ONE)
    with pytest.raises(grpc.aio.AioRpcError) as year_one:
        await client.stub.RecordUsage(pb.RecordUsageRequest(event=bad), metadata=client.auth())
    details = error_details(year_one.value)
    assert details.info is not None
    assert (details.info.reason, details.info.domain) == ("INVALID_FIELD", "billing.taskforge")
    assert details.bad_request is not None
    assert [v.field for v in details.bad_request.field_violations] == ["event.timestamp"]

    await client.stub.RecordUsage(
        pb.RecordUsageRequest(event=usage_event(key="k")), metadata=client.auth()
    )
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await client.stub.RecordUsage(
            pb.RecordUsageRequest(event=usage_event("2", key="k")), metadata=client.auth()
        )
    reused_info = error_details(reused.value).info
    assert reused_info is not None
    assert reused_info.reason == "IDEMPOTENCY_KEY_REUSED"

    reserved = await client.stub.ReserveUsage(jobs_reservation("1", "r"), metadata=client.auth())
    await client.stub.ReleaseReservation(
        pb.ReleaseReservationRequest(reservation_id=reserved.reservation.id),
        metadata=client.auth(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as released:
        await client.stub.CommitReservation(
            pb.CommitReservationRequest(reservation_id=reserved.reservation.id),
            metadata=client.auth(),
        )
    released_info = error_details(released.value).info
    assert released_info is not None
    assert (released.value.code(), released_info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESERVATION_NOT_ACTIVE",
    )
