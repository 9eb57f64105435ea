"""Plans and the price book (SPEC §1, §2): what a tier costs per month, what it allows, and what
each meter's usage costs on it.

The price book is data: these are the defaults the first migration seeds and operators edit
afterwards. A meter's price is a charge model over the billable quantity of one usage window.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from taskforge_common.meters import UsageType

DEFAULT_CURRENCY = "USD"


class Tier(StrEnum):
    STARTER = "starter"
    PRO = "pro"
    ENTERPRISE = "enterprise"
    # Price and limits set per subscription by an operator.
    CUSTOM = "custom"


class BillingCycle(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUALLY = "annually"

    @property
    def months(self) -> int:
        return _CYCLE_MONTHS[self]


_CYCLE_MONTHS = {BillingCycle.MONTHLY: 1, BillingCycle.QUARTERLY: 3, BillingCycle.ANNUALLY: 12}


class ChargeModel(StrEnum):
    # quantity × unit price.
    PER_UNIT = "per_unit"
    # Each band prices the units that fall inside it (like income tax brackets).
    GRADUATED = "graduated"
    # The band the whole quantity falls in prices every unit.
    VOLUME = "volume"


@dataclass(frozen=True, slots=True)
class PriceBand:
    """Units up to `up_to` (inclusive; None: no upper end) cost `unit_price` each, plus
    `flat_fee` once when any unit falls in the band (graduated) or the quantity does (volume)."""

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class MeterPrice:
    """The price of one meter on one plan. `included` units per usage window are free; the
    charge model prices the rest. Per-unit prices use `unit_price`; banded ones `bands`,
    ordered by `up_to`, the last one open-ended."""

    usage_type: UsageType
    unit_price: Decimal = Decimal(0)
    model: ChargeModel = ChargeModel.PER_UNIT
    bands: tuple[PriceBand, ...] = ()
    included: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.unit_price < 0 or self.included < 0:
            raise ValueError("prices and included quantities are never negative")
        if self.model is ChargeModel.PER_UNIT:
            if self.bands:
                raise ValueError("a per-unit price has no bands")
            return
        if not self.bands or self.bands[-1].up_to is not None:
            raise ValueError("banded prices need bands, the last one without an upper end")
        limits = [band.up_to for band in self.bands[:-1] if band.up_to is not None]
        if len(limits) != len(self.bands) - 1:
            raise ValueError("only the last band is open-ended")
        if limits[:1] and limits[0] <= 0:
            raise ValueError("the first band ends above 0")
        if any(lower >= upper for lower, upper in itertools.pairwise(limits)):
            raise ValueError("band upper ends must be strictly increasing")
        if any(band.unit_price < 0 or band.flat_fee < 0 for band in self.bands):
            raise ValueError("band prices are never negative")


@dataclass(frozen=True, slots=True)
class Plan:
    """A tier as sold: fee per month (None for custom: set per subscription), limits (a usage
    type without an entry is unlimited), features and meter prices (a meter without a price is
    not billed)."""

    tier: Tier
    currency: str
    price_per_month: Decimal | None
    limits: Mapping[UsageType, Decimal] = field(default_factory=dict)
    priority_support: bool = False
    custom_domains: bool = False
    prices: Mapping[UsageType, MeterPrice] = field(default_factory=dict)

    def cycle_fee(self, cycle: BillingCycle, price_per_month: Decimal | None = None) -> Decimal:
        """price per month × months in the cycle (SPEC §1); custom plans take the subscription's
        own price."""
        monthly = self.price_per_month if price_per_month is None else price_per_month
        if monthly is None:
            raise ValueError(f"the {self.tier} plan has no price of its own")
        return monthly * cycle.months


def _per_unit(prices: Mapping[UsageType, str]) -> dict[UsageType, MeterPrice]:
    return {t: MeterPrice(t, Decimal(p)) for t, p in prices.items()}


# SPEC §2: the default unit prices, the same on every plan. Active workers and queues are
# limited but not billed.
DEFAULT_METER_PRICES = _per_unit(
    {
        UsageType.JOB_EXECUTION: "0.001",
        UsageType.JOB_PROCESSING_TIME: "0.00001",
        UsageType.WORKER_HOURS: "0.02",
        UsageType.API_CALL: "0.00001",
        UsageType.DATA_TRANSFER: "0.05",
        UsageType.QUEUE_STORAGE: "0.0001",
        UsageType.STORAGE: "0.0002",  # per GB-hour, time-weighted
    }
)


def _limits(
    jobs: int, workers: int, queues: int, storage_gb: int, api_calls: int, transfer_gb: int
) -> dict[UsageType, Decimal]:
    return {
        UsageType.JOB_EXECUTION: Decimal(jobs),
        UsageType.ACTIVE_WORKERS: Decimal(workers),
        UsageType.QUEUES: Decimal(queues),
        UsageType.STORAGE: Decimal(storage_gb),
        UsageType.API_CALL: Decimal(api_calls),
        UsageType.DATA_TRANSFER: Decimal(transfer_gb),
    }


# SPEC §1 (with the seed's enterprise API-call limit corrected, §13.4).
DEFAULT_PLANS: dict[Tier, Plan] = {
    plan.tier: plan
    for plan in (
        Plan(
            Tier.STARTER,
            DEFAULT_CURRENCY,
            Decimal("29.00"),
            _limits(10_000, 5, 10, 10, 100_000, 100),
            prices=DEFAULT_METER_PRICES,
        ),
        Plan(
            Tier.PRO,
            DEFAULT_CURRENCY,
            Decimal("99.00"),
            _limits(100_000, 20, 50, 100, 1_000_000, 1_000),
            priority_support=True,
            custom_domains=True,
            prices=DEFAULT_METER_PRICES,
        ),
        Plan(
            Tier.ENTERPRISE,
            DEFAULT_CURRENCY,
            Decimal("299.00"),
            _limits(1_000_000, 100, 200, 1_000, 10_000_000, 10_000),
            priority_support=True,
            custom_domains=True,
            prices=DEFAULT_METER_PRICES,
        ),
        Plan(
            Tier.CUSTOM,
            DEFAULT_CURRENCY,
            None,
            priority_support=True,
            custom_domains=True,
            prices=DEFAULT_METER_PRICES,
        ),
    )
}
