"""Protobuf ↔ domain for GetUsageSummary and GetUsageSummaries: one mapping of a summary's
items, so the two RPCs answer a range alike."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2
from taskforge_common.meters import UsageType
from taskforge_common.protobuf import timestamp_field
from taskforge_metering.application.queries import (
    SummaryQuery,
    UsageSummary,
    check_summary_count,
)
from taskforge_metering.transport import mappers


def summary_queries(request: pb.GetUsageSummariesRequest) -> list[SummaryQuery]:
    """The queries, their instants checked against SPEC §11's bounds (errors name
    `queries[i].start_time`); the rest is checked by the use case."""
    check_summary_count(len(request.queries))  # before reading a million of them
    return [
        SummaryQuery(
            query.organization_id,
            timestamp_field(query, "start_time", f"queries[{index}].start_time"),
            timestamp_field(query, "end_time", f"queries[{index}].end_time"),
        )
        for index, query in enumerate(request.queries)
    ]


def summary_items(quantities: Mapping[UsageType, Decimal]) -> list[usage_pb2.UsageSummaryItem]:
    return [
        usage_pb2.UsageSummaryItem(
            usage_type=mappers.usage_type_number(usage_type),
            quantity=mappers.quantity_text(quantity),
        )
        for usage_type, quantity in quantities.items()
    ]


def summaries_response(summaries: list[UsageSummary]) -> pb.GetUsageSummariesResponse:
    response = pb.GetUsageSummariesResponse()
    for summary in summaries:
        message = response.summaries.add(
            organization_id=summary.organization_id,
            items=summary_items(summary.quantities),
        )
        mappers.set_timestamp(message.start_time, summary.start)
        mappers.set_timestamp(message.end_time, summary.end)
    return response
