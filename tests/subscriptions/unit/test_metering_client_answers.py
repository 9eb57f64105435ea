"""The metering client's reading of answers metering should never give, and of the statuses it
retries: a stub stands in for the channel (the real metering is in the integration tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2
from taskforge_common.errors import Reason, Unavailable
from taskforge_subscriptions.application.usage import UsageQuery
from taskforge_subscriptions.clients.metering import MeteringCallError, MeteringClient

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
START = datetime(2026, 3, 1, tzinfo=UTC)
QUERY = UsageQuery(ORG, START, START + timedelta(days=1))


class Stub:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def _call(self, *_: object, **__: object) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    GetUsageSummaries = GetCurrentUsage = CheckLimits = _call


def failing(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "down", "")


async def client_answering(answer: Any) -> MeteringClient:
    client = MeteringClient(grpc.aio.insecure_channel("127.0.0.1:9"), deadline=1)
    client._stub = Stub(answer)  # type: ignore[assignment]
    return client


def summary(quantity: str) -> pb.UsageSummary:
    item = usage_pb2.UsageSummaryItem(
        usage_type=common_pb2.USAGE_TYPE_JOB_EXECUTION, quantity=quantity
    )
    return pb.UsageSummary(organization_id=ORG, items=[item])


async def test_a_well_formed_answer_is_read() -> None:
    client = await client_answering(pb.GetUsageSummariesResponse(summaries=[summary("12.5")]))
    [quantities] = await client.summaries([QUERY])
    assert [str(q) for q in quantities.values()] == ["12.5"]


@pytest.mark.parametrize(
    "answer",
    [
        pb.GetUsageSummariesResponse(summaries=[]),  # fewer summaries than queries
        pb.GetUsageSummariesResponse(summaries=[summary("x")]),  # not a decimal
    ],
    ids=["too few", "not a decimal"],
)
async def test_a_malformed_answer_is_metering_s_fault_not_the_caller_s(answer: Any) -> None:
    client = await client_answering(answer)
    with pytest.raises(MeteringCallError):
        await client.summaries([QUERY])


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED],
)
async def test_a_metering_that_does_not_answer_in_time_is_unavailable(
    code: grpc.StatusCode,
) -> None:
    client = await client_answering(failing(code))
    with pytest.raises(Unavailable) as down:
        await client.summaries([QUERY])
    assert down.value.reason is Reason.PEER_UNAVAILABLE
    with pytest.raises(Unavailable):
        await client.standing(ORG)


async def test_a_malformed_standing_is_metering_s_fault() -> None:
    client = await client_answering(
        pb.GetCurrentUsageResponse(usage=usage_pb2.CurrentUsage(jobs_executed="lots"))
    )
    with pytest.raises(MeteringCallError):
        await client.standing(ORG)
