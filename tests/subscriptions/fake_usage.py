"""A stand-in for the metering service in unit tests: usage recorded per organisation, meter
and instant, summed over half-open ranges as metering does. The real service is used by the
integration and scenario tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from taskforge_common.meters import UsageType
from taskforge_subscriptions.application.usage import UsageQuery, UsageStanding


@dataclass
class FakeUsage:
    events: list[tuple[str, UsageType, datetime, Decimal]] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)  # queries per summaries call

    def record(
        self, organization_id: str, usage_type: UsageType, at: datetime, quantity: str
    ) -> None:
        self.events.append((organization_id, usage_type, at, Decimal(quantity)))

    async def summaries(self, queries: Sequence[UsageQuery]) -> list[Mapping[UsageType, Decimal]]:
        self.calls.append(len(queries))
        answers: list[Mapping[UsageType, Decimal]] = []
        for query in queries:
            totals: dict[UsageType, Decimal] = {}
            for org, usage_type, at, quantity in self.events:
                if org == query.organization_id and query.start <= at < query.end:
                    totals[usage_type] = totals.get(usage_type, Decimal(0)) + quantity
            answers.append(totals)
        return answers

    async def standing(self, organization_id: str) -> UsageStanding:
        return UsageStanding({}, None, None, [])
