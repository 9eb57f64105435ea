"""Rating: per-unit, graduated and volume prices, included allowances, windows split by tier
changes; expected amounts are computed here by hand or by integer arithmetic, never by the code
under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskforge_common.meters import UsageType
from taskforge_subscriptions.domain.plans import (
    DEFAULT_METER_PRICES,
    DEFAULT_PLANS,
    ChargeModel,
    MeterPrice,
    PriceBand,
    Tier,
)
from taskforge_subscriptions.domain.rating import WindowUsage, cost, rate_usage

D = Decimal
JOBS = UsageType.JOB_EXECUTION
START = datetime(2026, 3, 1, tzinfo=UTC)
GRADUATED = MeterPrice(
    JOBS,
    model=ChargeModel.GRADUATED,
    bands=(PriceBand(D(1000), D("0.002")), PriceBand(D(5000), D("0.001")), PriceBand(None, D(0))),
)
VOLUME = MeterPrice(
    JOBS,
    model=ChargeModel.VOLUME,
    bands=(PriceBand(D(1000), D("0.002")), PriceBand(None, D("0.001"), flat_fee=D(5))),
)


def piece(quantity: str, price: MeterPrice, day: int = 0, length: int = 1) -> WindowUsage:
    start = START + timedelta(days=day)
    return WindowUsage(JOBS, START, start, start + timedelta(days=length), D(quantity), price)


def test_default_plans_are_spec_section_1() -> None:
    fees = {tier: plan.price_per_month for tier, plan in DEFAULT_PLANS.items()}
    assert fees == {
        Tier.STARTER: D("29.00"),
        Tier.PRO: D("99.00"),
        Tier.ENTERPRISE: D("299.00"),
        Tier.CUSTOM: None,
    }
    enterprise = DEFAULT_PLANS[Tier.ENTERPRISE].limits
    # SPEC §13.4: the seed's 10,000 enterprise API calls (below pro) is corrected.
    assert enterprise[UsageType.API_CALL] == D(10_000_000)
    assert DEFAULT_PLANS[Tier.STARTER].limits[UsageType.ACTIVE_WORKERS] == D(5)
    assert not DEFAULT_PLANS[Tier.STARTER].priority_support
    assert DEFAULT_METER_PRICES[UsageType.STORAGE].unit_price == D("0.0002")
    assert UsageType.ACTIVE_WORKERS not in DEFAULT_METER_PRICES  # limited, never billed


def test_spec_storage_example_rates_to_3_36() -> None:
    # SPEC §2: 16,800 GB-hours × 0.0002 = 3.36.
    storage = DEFAULT_METER_PRICES[UsageType.STORAGE]
    usage = WindowUsage(
        UsageType.STORAGE, START, START, START + timedelta(days=30), D(16800), storage
    )
    [charge] = rate_usage([usage], "USD")
    assert (charge.quantity, charge.amount, charge.unit_price) == (D(16800), D("3.36"), D("0.0002"))


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0"),
        ("1000", "2.000"),  # all in the first band
        ("2500", "3.500"),  # 1000 × 0.002 + 1500 × 0.001
        ("9000", "6.000"),  # 2 + 4000 × 0.001 + 4000 × 0 (the last band is free)
    ],
)
def test_graduated_prices_each_band_separately(quantity: str, expected: str) -> None:
    assert cost(GRADUATED, D(quantity)) == D(expected)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("1000", "2.000"),  # 1000 × 0.002: still the first band (its upper end is inclusive)
        ("1001", "6.001"),  # every unit at 0.001 plus the band's flat 5
    ],
)
def test_volume_prices_every_unit_at_the_band_of_the_total(quantity: str, expected: str) -> None:
    assert cost(VOLUME, D(quantity)) == D(expected)


def test_included_allowance_is_free_each_window() -> None:
    allowance = MeterPrice(JOBS, D("0.001"), included=D(1000))
    [charge] = rate_usage([piece("1500", allowance)], "USD")
    assert charge.amount == D("0.50")  # (1500 − 1000) × 0.001
    assert charge.unit_price is None  # not quantity × one price: the allowance is free
    second_window = WindowUsage(
        JOBS,
        START + timedelta(days=31),
        START + timedelta(days=31),
        START + timedelta(days=61),
        D(1500),
        allowance,
    )
    [both] = rate_usage([piece("1500", allowance), second_window], "USD")
    assert both.amount == D("1.00")  # each window has its own 1,000 free


def test_a_window_split_by_a_tier_change_carries_its_bands_on() -> None:
    # 800 jobs before the change and 400 after on the same graduated price: 1000 at 0.002 and
    # 200 at 0.001 = 2.20, as if unsplit; starting the bands again would give 2.40.
    pieces = [piece("800", GRADUATED, 0, 10), piece("400", GRADUATED, 10, 20)]
    [charge] = rate_usage(pieces, "USD")
    assert charge.amount == D("2.20")
    assert [w.quantity for w in charge.windows] == [D(800), D(400)]


def test_each_piece_is_priced_by_the_plan_in_force() -> None:
    cheap, dear = MeterPrice(JOBS, D("0.001")), MeterPrice(JOBS, D("0.002"))
    [charge] = rate_usage([piece("1000", cheap, 0, 10), piece("1000", dear, 10, 20)], "USD")
    assert charge.amount == D("3.00")  # 1.00 + 2.00
    assert charge.unit_price is None  # two prices: no single unit price to show


def test_meters_without_usage_get_no_line_and_lines_follow_spec_order() -> None:
    api = WindowUsage(
        UsageType.API_CALL,
        START,
        START,
        START + timedelta(days=1),
        D(10),
        DEFAULT_METER_PRICES[UsageType.API_CALL],
    )
    none = piece("0", DEFAULT_METER_PRICES[JOBS])
    jobs = piece("3", DEFAULT_METER_PRICES[JOBS])
    charges = rate_usage([api, none, jobs], "USD")
    assert [c.usage_type for c in charges] == [JOBS, UsageType.API_CALL]


@given(
    quantity_micros=st.integers(min_value=0, max_value=10**18),
    price_micros=st.integers(min_value=0, max_value=10**7),
)
def test_per_unit_lines_round_half_up_exactly(quantity_micros: int, price_micros: int) -> None:
    # Independent arithmetic: amount in 10^-12 units as an integer, rounded half up to cents.
    exact = quantity_micros * price_micros  # × 10^-12
    cents, remainder = divmod(exact, 10**10)
    if remainder * 2 >= 10**10:
        cents += 1
    price = MeterPrice(JOBS, D(price_micros).scaleb(-6))
    charges = rate_usage([piece(str(D(quantity_micros).scaleb(-6)), price)], "USD")
    # A meter with no usage has no line, even when its price is 0.
    assert [c.amount for c in charges] == ([D(cents).scaleb(-2)] if quantity_micros else [])


@given(
    cuts=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=6),
    model=st.sampled_from([GRADUATED, MeterPrice(JOBS, D("0.003"), included=D(700))]),
)
def test_splitting_a_window_never_changes_its_charge(cuts: list[int], model: MeterPrice) -> None:
    whole = rate_usage([piece(str(sum(cuts)), model, 0, 30)], "USD")
    split = rate_usage([piece(str(q), model, day, 1) for day, q in enumerate(cuts)], "USD")
    assert [c.amount for c in split] == [c.amount for c in whole]


@given(a=st.integers(0, 10**7), b=st.integers(0, 10**7))
def test_graduated_cost_never_falls_as_usage_grows(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert cost(GRADUATED, D(low)) <= cost(GRADUATED, D(high))
