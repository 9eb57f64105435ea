"""MeteringService over gRPC: map the request, await the use case, map the result."""

from __future__ import annotations

from typing import Any

import grpc

from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import metering_service_pb2_grpc, usage_pb2
from taskforge_common.grpc.auth import Scope, current_principal
from taskforge_common.grpc.errors import map_errors, status_for
from taskforge_common.meters import UsageType
from taskforge_common.protobuf import duration_field, timestamp_field
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.use_cases import UseCases
from taskforge_metering.transport import mappers, summaries

SERVICE_NAME = "taskforge.metering.v1.MeteringService"

# The scope each RPC requires (SPEC §10). Methods not listed are refused.
METHOD_SCOPES = {
    f"/{SERVICE_NAME}/{method}": scope
    for method, scope in {
        "RecordUsage": Scope.USAGE_WRITE,
        "RecordUsageBatch": Scope.USAGE_WRITE,
        "ReserveUsage": Scope.USAGE_WRITE,
        "CommitReservation": Scope.USAGE_WRITE,
        "ReleaseReservation": Scope.USAGE_WRITE,
        "CheckLimits": Scope.LIMITS_READ,
        "GetCurrentUsage": Scope.BILLING_READ,
        "GetUsageSummary": Scope.BILLING_READ,
        "GetUsageSummaries": Scope.BILLING_READ,
        "ListUsageRecords": Scope.BILLING_READ,
        "UpsertEntitlements": Scope.BILLING_ADMIN,
    }.items()
}

Context = grpc.aio.ServicerContext[Any, Any]


def _caller() -> Caller:
    principal = current_principal()
    return Caller(principal.subject, principal.organization_id)


class MeteringServicer(metering_service_pb2_grpc.MeteringServiceServicer):
    def __init__(self, use_cases: UseCases) -> None:
        self._uc = use_cases

    @map_errors
    async def RecordUsage(
        self, request: pb.RecordUsageRequest, context: Context
    ) -> pb.RecordUsageResponse:
        result = await self._uc.ingest.record(mappers.usage_event_input(request.event), _caller())
        assert result.record is not None
        response = pb.RecordUsageResponse(duplicate=result.duplicate)
        mappers.fill_usage_record(response.record, result.record)
        return response

    @map_errors
    async def RecordUsageBatch(
        self, request: pb.RecordUsageBatchRequest, context: Context
    ) -> pb.RecordUsageBatchResponse:
        events = [mappers.usage_event_input(event) for event in request.events]
        results = await self._uc.ingest.record_batch(events, _caller())
        response = pb.RecordUsageBatchResponse()
        add = response.results.add
        for result in results:
            if result.error is not None:
                error = result.error
                add(
                    error_code=status_for(error).name,
                    error_message=error.message,
                    error_reason=error.reason.value,
                    error_field=error.field,
                )
            else:
                assert result.record is not None
                mappers.fill_usage_record(add(duplicate=result.duplicate).record, result.record)
        return response

    @map_errors
    async def CheckLimits(
        self, request: pb.CheckLimitsRequest, context: Context
    ) -> pb.CheckLimitsResponse:
        decision = await self._uc.limits.check(
            request.organization_id,
            mappers.usage_type_or_none(request.usage_type),
            request.requested_quantity,
            _caller(),
        )
        return pb.CheckLimitsResponse(
            allowed=decision.allowed,
            reason=decision.reason,
            limits=[mappers.limit_status(s) for s in decision.statuses],
        )

    @map_errors
    async def ReserveUsage(
        self, request: pb.ReserveUsageRequest, context: Context
    ) -> pb.ReserveUsageResponse:
        outcome = await self._uc.reservations.reserve(
            request.organization_id,
            mappers.usage_type_or_none(request.usage_type),
            request.quantity,
            request.idempotency_key,
            duration_field(request, "ttl"),
            _caller(),
        )
        response = pb.ReserveUsageResponse(
            allowed=outcome.decision.allowed, reason=outcome.decision.reason
        )
        if outcome.reservation is not None:
            response.reservation.CopyFrom(mappers.reservation(outcome.reservation))
        if outcome.status is not None:
            response.limit.CopyFrom(mappers.limit_status(outcome.status))
        return response

    @map_errors
    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: Context
    ) -> pb.CommitReservationResponse:
        committed = await self._uc.reservations.commit(
            request.reservation_id,
            request.quantity,
            timestamp_field(request, "timestamp"),
            dict(request.metadata),
            _caller(),
        )
        return pb.CommitReservationResponse(
            record=mappers.usage_record(committed.record),
            limit=mappers.limit_status(committed.status),
        )

    @map_errors
    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: Context
    ) -> pb.ReleaseReservationResponse:
        await self._uc.reservations.release(request.reservation_id, _caller())
        return pb.ReleaseReservationResponse()

    @map_errors
    async def GetCurrentUsage(
        self, request: pb.GetCurrentUsageRequest, context: Context
    ) -> pb.GetCurrentUsageResponse:
        usage = await self._uc.queries.current_usage(request.organization_id, _caller())

        def current(usage_type: UsageType) -> str:
            return mappers.quantity_text(usage.snapshot.current(usage_type))

        return pb.GetCurrentUsageResponse(
            usage=usage_pb2.CurrentUsage(
                jobs_executed=current(UsageType.JOB_EXECUTION),
                active_workers=current(UsageType.ACTIVE_WORKERS),
                queues=current(UsageType.QUEUES),
                storage_used_gb=current(UsageType.STORAGE),
                api_calls_made=current(UsageType.API_CALL),
                data_transferred_gb=current(UsageType.DATA_TRANSFER),
                period_start=mappers.to_timestamp(usage.period_start),
                period_end=mappers.to_timestamp(usage.period_end),
            )
        )

    @map_errors
    async def GetUsageSummary(
        self, request: pb.GetUsageSummaryRequest, context: Context
    ) -> pb.GetUsageSummaryResponse:
        quantities = await self._uc.queries.summary(
            request.organization_id,
            timestamp_field(request, "start_time"),
            timestamp_field(request, "end_time"),
            _caller(),
        )
        return pb.GetUsageSummaryResponse(items=summaries.summary_items(quantities))

    @map_errors
    async def GetUsageSummaries(
        self, request: pb.GetUsageSummariesRequest, context: Context
    ) -> pb.GetUsageSummariesResponse:
        answered = await self._uc.queries.summaries(summaries.summary_queries(request), _caller())
        return summaries.summaries_response(answered)

    @map_errors
    async def ListUsageRecords(
        self, request: pb.ListUsageRecordsRequest, context: Context
    ) -> pb.ListUsageRecordsResponse:
        page = await self._uc.queries.list_records(
            request.organization_id,
            timestamp_field(request, "start_time"),
            timestamp_field(request, "end_time"),
            mappers.usage_type_or_none(request.usage_type),
            request.page_size,
            request.page_token,
            _caller(),
        )
        return pb.ListUsageRecordsResponse(
            records=[mappers.usage_record(r) for r in page.records],
            total_count=page.total_count,
            next_page_token=page.next_page_token,
        )

    @map_errors
    async def UpsertEntitlements(
        self, request: pb.UpsertEntitlementsRequest, context: Context
    ) -> pb.UpsertEntitlementsResponse:
        stored = await self._uc.entitlements.upsert(
            mappers.entitlements_from(request.organization_id, request.entitlements), _caller()
        )
        return pb.UpsertEntitlementsResponse(entitlements=mappers.entitlements_message(stored))
