"""Every use case of the metering service, built over one unit-of-work factory and clock."""

from __future__ import annotations

from dataclasses import dataclass

from taskforge_common.clock import Clock
from taskforge_common.page_tokens import PageTokens
from taskforge_metering.application.entitlements import EntitlementUpdates
from taskforge_metering.application.ingest import UsageIngest
from taskforge_metering.application.limits import LimitChecks
from taskforge_metering.application.ports import UnitOfWorkFactory
from taskforge_metering.application.queries import UsageQueries
from taskforge_metering.application.rate_limit import IngestRateLimiter
from taskforge_metering.application.reservations import Reservations


@dataclass(frozen=True, slots=True)
class UseCases:
    ingest: UsageIngest
    limits: LimitChecks
    reservations: Reservations
    entitlements: EntitlementUpdates
    queries: UsageQueries

    @classmethod
    def build(
        cls,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        ingest_rate_per_second: int,
        page_tokens: PageTokens,
    ) -> UseCases:
        return cls(
            ingest=UsageIngest(
                unit_of_work, clock, IngestRateLimiter(clock, ingest_rate_per_second)
            ),
            limits=LimitChecks(unit_of_work, clock),
            reservations=Reservations(unit_of_work, clock),
            entitlements=EntitlementUpdates(unit_of_work, clock),
            queries=UsageQueries(unit_of_work, clock, page_tokens),
        )
