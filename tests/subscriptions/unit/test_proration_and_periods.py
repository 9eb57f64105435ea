"""Proration to the second, the segments that tile a period, and which periods a run closes.
Expected values come from SPEC's worked examples or from exact rational arithmetic done here."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskforge_common.periods import Period
from taskforge_subscriptions.domain.billing import tier_change, unused_fee
from taskforge_subscriptions.domain.plans import BillingCycle, Tier
from taskforge_subscriptions.domain.proration import (
    ChangeDirection,
    FeeSegment,
    prorated_difference,
    segment_violations,
)
from taskforge_subscriptions.domain.subscriptions import (
    PlanSegment,
    Subscription,
    SubscriptionStatus,
    fee_segments,
    periods_to_close,
    usage_pieces,
)

D = Decimal
MARCH = Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), 0)


def subscription(anchor: datetime, cycle: BillingCycle, **changes: object) -> Subscription:
    values: dict[str, object] = {
        "id": "s",
        "organization_id": "o",
        "tier": Tier.STARTER,
        "status": SubscriptionStatus.ACTIVE,
        "cycle": cycle,
        "auto_renew": True,
        "cancel_at_period_end": False,
        "price_per_month": D("29.00"),
        "currency": "USD",
        "limits": {},
        "anchor": anchor,
        "period_index": 0,
        "created_at": anchor,
        "updated_at": anchor,
    }
    values.update(changes)
    return Subscription(**values)  # type: ignore[arg-type]


def test_spec_section_5_upgrade_and_downgrade() -> None:
    at = datetime(2026, 3, 16, 12, tzinfo=UTC)  # 1,339,200 s of 2,678,400 remain: 0.5
    up = tier_change(Tier.STARTER, D(29), Tier.PRO, D(99), MARCH, at, "USD")
    assert (up.direction, up.amount.amount, up.description) == (
        ChangeDirection.UPGRADE,
        D("35.00"),
        "Upgrade starter → pro (prorated)",
    )
    down = tier_change(Tier.PRO, D(99), Tier.STARTER, D(29), MARCH, at, "USD")
    assert (down.direction, down.amount.amount) == (ChangeDirection.DOWNGRADE, D("35.00"))
    assert tier_change(Tier.PRO, D(99), Tier.CUSTOM, D(99), MARCH, at, "USD").direction is (
        ChangeDirection.LATERAL
    )


def test_proration_rounds_half_up_at_the_cent() -> None:
    # 0.01 × 1/2 = 0.005 exactly: half up gives 0.01 (banker's rounding would give 0.00).
    half = datetime(2026, 3, 16, 12, tzinfo=UTC)
    assert prorated_difference(D("29.00"), D("29.01"), MARCH, half, "USD") == D("0.01")


def test_a_change_outside_the_period_is_refused() -> None:
    with pytest.raises(ValueError, match="inside the current period"):
        prorated_difference(D(29), D(99), MARCH, MARCH.end, "USD")


def test_unused_fee_at_an_immediate_cancellation() -> None:
    # 10 of 31 days remain: 29 × 10/31 = 9.354… → 9.35.
    at = datetime(2026, 3, 22, tzinfo=UTC)
    assert unused_fee(D(29), MARCH, at, "USD").amount == D("9.35")


instants = st.integers(min_value=1, max_value=MARCH.seconds - 1).map(
    lambda s: MARCH.start + timedelta(seconds=s)
)
fees = st.integers(min_value=0, max_value=100_000).map(lambda c: D(c).scaleb(-2))


@given(
    changes=st.lists(st.tuples(instants, fees), min_size=1, max_size=5, unique_by=lambda c: c[0])
)
def test_changes_bill_each_stretch_once_at_its_own_fee(
    changes: list[tuple[datetime, Decimal]],
) -> None:
    """fee₀ + Σ ±(prorated differences) equals Σ fee_i × |stretch_i| / |period| to within half
    a cent per change (each change is rounded once), computed with exact fractions."""
    changes.sort()
    fee = D("29.00")
    billed = Fraction(fee)
    boundaries = [MARCH.start]
    fees_in_force = [fee]
    for at, new_fee in changes:
        change = tier_change(Tier.PRO, fee, Tier.PRO, new_fee, MARCH, at, "USD")
        sign = {ChangeDirection.UPGRADE: 1, ChangeDirection.DOWNGRADE: -1}.get(change.direction, 0)
        billed += sign * Fraction(change.amount.amount)
        boundaries.append(at)
        fees_in_force.append(new_fee)
        fee = new_fee
    boundaries.append(MARCH.end)
    total = Fraction((MARCH.end - MARCH.start) // timedelta(microseconds=1))
    expected = sum(
        Fraction(f) * Fraction((b - a) // timedelta(microseconds=1)) / total
        for f, a, b in zip(fees_in_force, boundaries, boundaries[1:], strict=False)
    )
    assert abs(billed - expected) <= Fraction(len(changes), 200)


@given(cuts=st.lists(instants, max_size=5, unique=True), quarterly=st.booleans())
def test_usage_pieces_tile_the_period(cuts: list[datetime], quarterly: bool) -> None:
    anchor = datetime(2026, 1, 31, 10, tzinfo=UTC)
    months = 3 if quarterly else 1
    period = Period(
        anchor,
        datetime(2026, 4, 30, 10, tzinfo=UTC)
        if quarterly
        else datetime(2026, 2, 28, 10, tzinfo=UTC),
        0,
    )
    bounds = sorted({anchor, *[c for c in cuts if anchor < c < period.end], period.end})
    segments = [
        PlanSegment(a, None if b == period.end else b, Tier.PRO, D(99))
        for a, b in itertools.pairwise(bounds)
    ]
    pieces = usage_pieces(anchor, period.start, period.end, segments)
    assert pieces[0].start == period.start
    assert pieces[-1].end == period.end
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    # Monthly windows from the anchor: a piece never crosses the 28th of Feb or 31st of Mar.
    window_starts = {p.window_start for p in pieces}
    assert window_starts <= {
        anchor,
        datetime(2026, 2, 28, 10, tzinfo=UTC),
        datetime(2026, 3, 31, 10, tzinfo=UTC),
    }
    assert not segment_violations(period, fee_segments(period, segments, months))


def test_segment_violations_name_gaps_and_overlaps() -> None:
    mid = datetime(2026, 3, 10, tzinfo=UTC)
    later = datetime(2026, 3, 12, tzinfo=UTC)
    gap = [
        FeeSegment(MARCH.start, mid, D(29), "starter"),
        FeeSegment(later, MARCH.end, D(99), "pro"),
    ]
    assert any("gap" in p for p in segment_violations(MARCH, gap))
    overlap = [
        FeeSegment(MARCH.start, later, D(29), "starter"),
        FeeSegment(mid, MARCH.end, D(99), "pro"),
    ]
    assert any("overlap" in p for p in segment_violations(MARCH, overlap))
    assert segment_violations(MARCH, [FeeSegment(MARCH.start, MARCH.end, D(29), "starter")]) == []


def test_a_run_catches_up_a_year_of_periods_in_order() -> None:
    anchor = datetime(2025, 1, 31, 10, tzinfo=UTC)
    periods = list(
        periods_to_close(
            subscription(anchor, BillingCycle.MONTHLY), datetime(2026, 1, 31, 10, tzinfo=UTC)
        )
    )
    assert len(periods) == 12
    assert [p.end.day for p in periods[:4]] == [28, 31, 30, 31]  # clamped from the anchor
    assert periods[-1].end == datetime(2026, 1, 31, 10, tzinfo=UTC)  # an end at as_of is due


def test_a_period_that_does_not_renew_is_the_last_one_closed() -> None:
    anchor = datetime(2025, 1, 1, tzinfo=UTC)
    ending = subscription(anchor, BillingCycle.QUARTERLY, auto_renew=False)
    assert [p.index for p in periods_to_close(ending, datetime(2026, 1, 1, tzinfo=UTC))] == [0]
    canceled = subscription(anchor, BillingCycle.MONTHLY, status=SubscriptionStatus.CANCELED)
    assert list(periods_to_close(canceled, datetime(2026, 1, 1, tzinfo=UTC))) == []


def test_leap_february_from_a_31st_anchor() -> None:
    anchor = datetime(2028, 1, 31, 10, tzinfo=UTC)
    ends = [
        p.end
        for p in periods_to_close(
            subscription(anchor, BillingCycle.MONTHLY), datetime(2028, 5, 31, 10, tzinfo=UTC)
        )
    ]
    assert ends == [
        datetime(2028, 2, 29, 10, tzinfo=UTC),
        datetime(2028, 3, 31, 10, tzinfo=UTC),
        datetime(2028, 4, 30, 10, tzinfo=UTC),
        datetime(2028, 5, 31, 10, tzinfo=UTC),
    ]
