"""GetCurrentUsage, GetUsageSummary and GetUsageSummaries, ListUsageRecords."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from taskforge_common.clock import Clock
from taskforge_common.errors import BillingError, InvalidArgument
from taskforge_common.meters import METERS, MeterKind, UsageType
from taskforge_common.page_tokens import PageTokens
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ports import (
    RangeUsage,
    UnitOfWorkFactory,
    UsageRange,
    UsageSnapshot,
)
from taskforge_metering.domain.aggregation import time_weighted_hours
from taskforge_metering.domain.entitlements import usage_window
from taskforge_metering.domain.usage import UsageRecord, parse_organization_id

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_SUMMARY_QUERIES = 1000


@dataclass(frozen=True, slots=True)
class CurrentUsage:
    """Usage in the current monthly window (counters) and current levels (gauges)."""

    snapshot: UsageSnapshot
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True, slots=True)
class SummaryQuery:
    """One organisation and range to summarise, as the caller sent them (None: unset)."""

    organization_id: str
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """The billable quantity of every meter of one organisation over [start, end), in the
    order of `METERS`: counters summed, gauges integrated over time (storage in GB-hours)."""

    organization_id: str
    start: datetime
    end: datetime
    quantities: dict[UsageType, Decimal]


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
        """Billable quantity of every meter over [start, end): GetUsageSummary, which is
        GetUsageSummaries of one query (its fields named without a prefix)."""
        usage_range = _usage_range(SummaryQuery(organization_id, start, end))
        caller.ensure_access(usage_range.organization_id)
        (summary,) = await self._summarise([usage_range])
        return summary.quantities

    async def summaries(
        self, queries: Sequence[SummaryQuery], caller: Caller
    ) -> list[UsageSummary]:
        """One summary per query, in order, each what `summary` answers for it. Every query is
        checked before any is read: one bad query (INVALID_ARGUMENT naming `queries[i]`) or
        one of an organisation the caller may not reach (PERMISSION_DENIED) fails the call."""
        check_summary_count(len(queries))
        ranges: list[UsageRange] = []
        for index, query in enumerate(queries):
            try:
                ranges.append(_usage_range(query))
            except BillingError as error:
                raise error.at(f"queries[{index}]") from None
        for usage_range in ranges:
            caller.ensure_access(usage_range.organization_id)
        return await self._summarise(ranges)

    async def _summarise(self, ranges: Sequence[UsageRange]) -> list[UsageSummary]:
        # A billing run may ask for one range twice: each distinct range is read once.
        distinct = list(dict.fromkeys(ranges))
        async with self._unit_of_work.reader() as uow:
            stored = await uow.store.usage_in_ranges(distinct)
        summaries = {
            usage_range: _billable(usage_range, usage)
            for usage_range, usage in zip(distinct, stored, strict=True)
        }
        return [summaries[usage_range] for usage_range in ranges]

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


def check_summary_count(count: int) -> None:
    """GetUsageSummaries takes one to `MAX_SUMMARY_QUERIES` queries."""
    if count == 0:
        raise InvalidArgument("queries must hold at least one query", field="queries")
    if count > MAX_SUMMARY_QUERIES:
        raise InvalidArgument(
            f"a call holds at most {MAX_SUMMARY_QUERIES} queries, got {count}", field="queries"
        )


def _usage_range(query: SummaryQuery) -> UsageRange:
    """The checked range of a query; errors name its fields without a prefix."""
    organization_id = parse_organization_id(query.organization_id)
    start, end = query.start, query.end
    if start is None or end is None:
        raise InvalidArgument(
            "start_time and end_time are required",
            field="start_time" if start is None else "end_time",
        )
    if end <= start:
        raise InvalidArgument("end_time must be after start_time", field="end_time")
    return UsageRange(organization_id, start, end)


def _billable(usage_range: UsageRange, usage: RangeUsage) -> UsageSummary:
    """Every meter's billable quantity over the range from what storage holds about it."""
    start, end = usage_range.start, usage_range.end
    quantities: dict[UsageType, Decimal] = {}
    for usage_type, meter in METERS.items():
        if meter.kind is MeterKind.COUNTER:
            quantities[usage_type] = usage.counters.get(usage_type, Decimal(0))
        else:
            quantities[usage_type] = time_weighted_hours(
                usage.levels_before.get(usage_type),
                usage.readings.get(usage_type, ()),
                start,
                end,
            )
    return UsageSummary(usage_range.organization_id, start, end, quantities)
