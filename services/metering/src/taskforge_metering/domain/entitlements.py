"""The metering service's copy of what a subscription allows (API.md Entitlements)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from taskforge_common.meters import UsageType
from taskforge_common.periods import Period, monthly_window


class EntitlementStatus(StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Entitlements:
    """Pushed by the subscriptions service on every change; newer versions replace older ones.

    `limits` holds a maximum per usage type; a usage type without an entry is unlimited.
    """

    organization_id: str
    status: EntitlementStatus
    version: int
    tier: str = ""
    billing_cycle: str = ""
    period_anchor: datetime | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    limits: Mapping[UsageType, Decimal] = field(default_factory=dict)
    usage_closed_before: datetime | None = None

    def limit_for(self, usage_type: UsageType) -> Decimal | None:
        return self.limits.get(usage_type)

    def supersedes(self, other: Entitlements | None) -> bool:
        return other is None or self.version > other.version


def usage_window(entitlements: Entitlements | None, instant: datetime) -> Period:
    """The monthly window that limits count in: from the subscription's anchor when there is one,
    else calendar months (usage without a subscription is still stored by its timestamp)."""
    anchor = entitlements.period_anchor if entitlements else None
    return monthly_window(anchor, instant)
