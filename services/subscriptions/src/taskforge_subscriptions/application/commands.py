"""The requests the use cases carry out, already validated and in domain types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from taskforge_common.meters import UsageType
from taskforge_subscriptions.domain.plans import BillingCycle, Tier


@dataclass(frozen=True, slots=True)
class CreateSubscription:
    organization_id: str
    tier: Tier
    cycle: BillingCycle
    auto_renew: bool
    # Admin only: a back-dated start (the anchor); None means now.
    start_time: datetime | None = None
    # Custom tier only (admin): the fee per month and the limits.
    custom_price_per_month: Decimal | None = None
    custom_limits: Mapping[UsageType, Decimal] = field(default_factory=dict)
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeTier:
    organization_id: str
    tier: Tier
    # Admin only: when the change takes effect; None means now.
    effective_time: datetime | None = None
    custom_price_per_month: Decimal | None = None
    custom_limits: Mapping[UsageType, Decimal] = field(default_factory=dict)
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class CancelSubscription:
    organization_id: str
    # True: at the current period's end; False: at once (admin), crediting the unused fee.
    at_period_end: bool
    effective_time: datetime | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunBillingCycle:
    # Admin only: the instant to bill as of; None means now.
    as_of: datetime | None = None
    request_id: str | None = None
