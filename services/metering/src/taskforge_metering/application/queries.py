"""GetCurrentUsage, GetUsageSummary, ListUsageRecords."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from taskforge_common.clock import Clock
from taskforge_common.errors import InvalidArgument
from taskforge_common.meters import METERS, MeterKind, UsageType
from taskforge_common.page_tokens import PageTokens
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ports import UnitOfWorkFactory, UsageSnapshot
from taskforge_metering.domain.aggregation import time_weighted_hours
from taskforge_metering.domain.entitlements import usage_window
from taskforge_metering.domain.usage import UsageRecord, parse_organization_id

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class CurrentUsage:
    """Usage in the current monthly window (counters) and current levels (gauges)."""

    snapshot: UsageSnapshot
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True, slots=True)
class RecordPage:
    records: list[UsageRecord]
    total_count: int
    next_page_token: str


class UsageQueries:
    def __init__(
        self, unit_of_work: UnitOfWorkFactory, clock: Clock, page_tokens: PageTokens
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._page_tokens = page_tokens

    async def current_usage(self, organization_id: str, caller: Caller) -> CurrentUsage:
        org = parse_organization_id(organization_id)
        caller.ensure_access(org)
        now = self._clock.now()
        async with self._unit_of_work.reader() as uow:
            granted, snapshot = await uow.store.limit_view(org, now)
        window = usage_window(granted, now)
        return CurrentUsage(snapshot, window.start, window.end)

    async def summary(
        self,
        organization_id: str,
        start: datetime | None,
        end: datetime | None,
        caller: Caller,
    ) -> dict[UsageType, Decimal]:
        """Billable quantity of every meter over [start, end): counters summed, gauges
        integrated over time (storage in GB-hours)."""
        org = parse_organization_id(organization_id)
        if start is None or end is None:
            raise InvalidArgument(
                "start_time and end_time are required",
                field="start_time" if start is None else "end_time",
            )
        if end <= start:
            raise InvalidArgument("end_time must be after start_time", field="end_time")
        caller.ensure_access(org)
        summary: dict[UsageType, Decimal] = {}
        async with self._unit_of_work.reader() as uow:
            counters = await uow.store.sum_counters(org, start, end)
            for usage_type, meter in METERS.items():
                if meter.kind is MeterKind.COUNTER:
                    summary[usage_type] = counters.get(usage_type, Decimal(0))
                else:
                    before, readings = await uow.store.gauge_history(org, usage_type, start, end)
                    summary[usage_type] = time_weighted_hours(before, readings, start, end)
        return summary

    async def list_records(
        self,
        organization_id: str,
        start: datetime | None,
        end: datetime | None,
        usage_type: UsageType | None,
        page_size: int,
        page_token: str,
        caller: Caller,
    ) -> RecordPage:
        org = parse_organization_id(organization_id)
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative", field="page_size")
        if page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be at most {MAX_PAGE_SIZE}", field="page_size")
        if start is not None and end is not None and end <= start:
            raise InvalidArgument("end_time must be after start_time", field="end_time")
        query = _query_text(org, usage_type, start, end)
        after = self._page_tokens.decode(page_token, query) if page_token else None
        caller.ensure_access(org)
        size = page_size or DEFAULT_PAGE_SIZE
        async with self._unit_of_work.reader() as uow:
            total = await uow.store.count_records(org, usage_type, start, end)
            records = await uow.store.list_records(org, usage_type, start, end, after, size + 1)
        next_token = ""
        if len(records) > size:
            records = records[:size]
            next_token = self._page_tokens.encode(records[-1].timestamp, records[-1].id, query)
        return RecordPage(records, total, next_token)


def _query_text(
    organization_id: str,
    usage_type: UsageType | None,
    start: datetime | None,
    end: datetime | None,
) -> str:
    """What a page token is bound to: a token pages through the query that issued it only."""
    parts = (organization_id, usage_type, start, end)
    return "|".join("" if part is None else str(part) for part in parts)
