"""CheckLimits (SPEC §7): reads the committed totals, so every acknowledged write is seen."""

from __future__ import annotations

from decimal import Decimal

from taskforge_common.clock import Clock
from taskforge_common.meters import UsageType
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ports import UnitOfWorkFactory, UsageSnapshot
from taskforge_metering.domain.entitlements import Entitlements
from taskforge_metering.domain.limits import LimitDecision, LimitStatus, check_all, check_one
from taskforge_metering.domain.usage import parse_organization_id, parse_quantity


class LimitChecks:
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def check(
        self,
        organization_id: str,
        usage_type: UsageType | None,
        requested_quantity: str,
        caller: Caller,
    ) -> LimitDecision:
        """One usage type (current + reserved + requested ≤ limit), or every limit when None."""
        org = parse_organization_id(organization_id)
        requested = parse_quantity(requested_quantity or "1", "requested_quantity")
        caller.ensure_access(org)
        now = self._clock.now()
        async with self._unit_of_work.reader() as uow:
            granted, snapshot = await uow.store.limit_view(org, now, usage_type)
        if usage_type is not None:
            return check_one(granted, status_of(granted, snapshot, usage_type), requested)
        limited = granted.limits if granted else {}
        return check_all(granted, {u: status_of(granted, snapshot, u) for u in limited})


def status_of(
    entitlements: Entitlements | None, snapshot: UsageSnapshot, usage_type: UsageType
) -> LimitStatus:
    return LimitStatus(
        usage_type=usage_type,
        limit=entitlements.limit_for(usage_type) if entitlements else None,
        current=snapshot.current(usage_type),
        reserved=snapshot.reserved.get(usage_type, Decimal(0)),
    )
