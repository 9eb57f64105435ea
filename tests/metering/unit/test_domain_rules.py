"""The pure metering rules: periods, event validation, limits, thresholds, time-weighted gauges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from taskforge_common.errors import InvalidArgument, PreconditionFailed
from taskforge_common.meters import UsageType
from taskforge_common.periods import add_months, monthly_window, period_at, period_containing
from taskforge_metering.domain.aggregation import GaugeReading, time_weighted_hours
from taskforge_metering.domain.entitlements import Entitlements, EntitlementStatus
from taskforge_metering.domain.limits import LimitStatus, check_all, check_one
from taskforge_metering.domain.thresholds import crossed_thresholds
from taskforge_metering.domain.usage import UsageEvent, ensure_period_open, new_usage_event

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)

# -- periods (SPEC §3) ------------------------------------------------------------------------


def test_monthly_periods_from_the_31st_are_computed_from_the_anchor() -> None:
    anchor = datetime(2026, 1, 31, 10, tzinfo=UTC)
    ends = [period_at(anchor, 1, k).end for k in range(4)]
    assert ends == [
        datetime(2026, 2, 28, 10, tzinfo=UTC),
        datetime(2026, 3, 31, 10, tzinfo=UTC),
        datetime(2026, 4, 30, 10, tzinfo=UTC),
        datetime(2026, 5, 31, 10, tzinfo=UTC),
    ]


def test_leap_day_anchor_and_quarterly_and_annual_cycles() -> None:
    anchor = datetime(2024, 2, 29, tzinfo=UTC)
    assert period_at(anchor, 12, 0).end == datetime(2025, 2, 28, tzinfo=UTC)
    assert period_at(anchor, 12, 3).start == datetime(2027, 2, 28, tzinfo=UTC)
    assert period_at(anchor, 12, 4).start == datetime(2028, 2, 29, tzinfo=UTC)
    quarter = period_containing(
        datetime(2026, 1, 31, tzinfo=UTC), 3, datetime(2026, 6, 1, tzinfo=UTC)
    )
    assert (quarter.start, quarter.end) == (
        datetime(2026, 4, 30, tzinfo=UTC),
        datetime(2026, 7, 31, tzinfo=UTC),
    )


def test_a_boundary_instant_belongs_to_the_next_period_and_before_anchor_works() -> None:
    anchor = datetime(2026, 1, 15, tzinfo=UTC)
    assert period_containing(anchor, 1, datetime(2026, 2, 15, tzinfo=UTC)).index == 1
    before = period_containing(anchor, 1, datetime(2025, 12, 20, tzinfo=UTC))
    assert (before.index, before.start) == (-1, datetime(2025, 12, 15, tzinfo=UTC))


def test_monthly_limit_windows_inside_an_annual_cycle_and_calendar_months_without_anchor() -> None:
    window = monthly_window(datetime(2026, 1, 31, 10, tzinfo=UTC), NOW)
    assert (window.start, window.end) == (
        datetime(2026, 2, 28, 10, tzinfo=UTC),
        datetime(2026, 3, 31, 10, tzinfo=UTC),
    )
    calendar = monthly_window(None, NOW)
    assert (calendar.start, calendar.end) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )


# Written out here, not taken from `calendar`, so the expectations below owe nothing to the
# code under test.
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1]


def _months_after(anchor: datetime, months: int) -> datetime:
    """`anchor` moved by `months` calendar months, one (year, month) step at a time, the day
    clamped to the target month's length and the time of day kept."""
    year, month = anchor.year, anchor.month
    for _ in range(abs(months)):
        month += 1 if months > 0 else -1
        if month == 13:
            year, month = year + 1, 1
        elif month == 0:
            year, month = year - 1, 12
    return anchor.replace(year=year, month=month, day=min(anchor.day, _days_in(year, month)))


@st.composite
def _anchors(draw: st.DrawFn) -> datetime:
    """Anchors biased to the days that clamp (29th to 31st, leap days, 2000 included)."""
    year = draw(st.integers(min_value=2000, max_value=2060))
    month = draw(st.integers(min_value=1, max_value=12))
    day = draw(st.one_of(st.sampled_from([28, 29, 30, 31]), st.integers(min_value=1, max_value=31)))
    assume(day <= _days_in(year, month))
    at_midnight = draw(st.booleans())
    return datetime(
        year,
        month,
        day,
        0 if at_midnight else draw(st.integers(min_value=0, max_value=23)),
        0 if at_midnight else draw(st.integers(min_value=0, max_value=59)),
        0 if at_midnight else draw(st.integers(min_value=0, max_value=59)),
        0 if at_midnight else draw(st.integers(min_value=0, max_value=999_999)),
        tzinfo=UTC,
    )


@settings(max_examples=300, deadline=None)
@given(
    anchor=_anchors(),
    months=st.sampled_from([1, 3, 12]),
    boundary=st.integers(min_value=-40, max_value=40),
    nudge=st.sampled_from([timedelta(0), -timedelta(microseconds=1), timedelta(microseconds=1)]),
    offset=st.one_of(
        st.none(), st.timedeltas(min_value=timedelta(days=-1500), max_value=timedelta(days=1500))
    ),
)
def test_periods_contain_their_instant_and_tile_without_gaps(
    anchor: datetime,
    months: int,
    boundary: int,
    nudge: timedelta,
    offset: timedelta | None,
) -> None:
    """Period k is [anchor + k·m months, anchor + (k+1)·m months), each bound computed from the
    anchor (SPEC §3); the expected bounds come from `_months_after`, not `add_months`. The
    instant is a period boundary (± 1 µs) or anywhere within ±1,500 days of the anchor.
    Caught: `add_months` clamping to `min(day, 30)`; the leap rule of the following year; each
    end chained from the (clamped) start."""
    if offset is None:
        instant = _months_after(anchor, boundary * months) + nudge
    else:
        instant = anchor + offset
    period = period_containing(anchor, months, instant)
    expected_start = _months_after(anchor, period.index * months)
    expected_end = _months_after(anchor, (period.index + 1) * months)
    assert (period.start, period.end) == (expected_start, expected_end)
    assert expected_start <= instant < expected_end
    if offset is None:  # a boundary starts its own period; 1 µs before, the previous one
        assert period.index == boundary - (1 if nudge < timedelta(0) else 0)
    following = period_at(anchor, months, period.index + 1)
    assert (following.start, following.end) == (
        expected_end,
        _months_after(anchor, (period.index + 2) * months),
    )
    assert add_months(anchor, boundary * months) == _months_after(anchor, boundary * months)


# -- usage events (SPEC §2, §11) --------------------------------------------------------------


def event(**overrides: Any) -> UsageEvent:
    fields: dict[str, Any] = {
        "organization_id": ORG,
        "usage_type": UsageType.JOB_EXECUTION,
        "quantity": "1",
        "timestamp": None,
        "idempotency_key": "k",
        "metadata": {},
        "now": NOW,
    }
    fields.update(overrides)
    return new_usage_event(**fields)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": "Infinity"}, "quantity"),
        ({"quantity": "1e3"}, "quantity"),
        ({"quantity": "1_000"}, "quantity"),
        ({"quantity": ""}, "quantity"),
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": "0.0000001"}, "quantity"),
        ({"quantity": "1000000000000.000001"}, "quantity"),
        ({"organization_id": "acme"}, "organization_id"),
        ({"organization_id": ""}, "organization_id"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "x" * 256}, "idempotency_key"),
        ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
        ({"metadata": {"k": "v" * 1100}}, "metadata"),
        ({"metadata": {"": "v"}}, "metadata"),
        ({"timestamp": NOW + timedelta(minutes=6)}, "timestamp"),
        ({"idempotency_key": "job\x00"}, "idempotency_key"),
        ({"metadata": {"queue": "a\x00b"}}, "metadata"),
        ({"metadata": {"q\x00": "a"}}, "metadata"),
    ],
)
def test_every_bad_input_class_is_invalid_argument_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgument, match=field):
        event(**overrides)


def test_good_quantities_at_the_edges() -> None:
    assert event(quantity="1.5000000").quantity == Decimal("1.5")
    assert event(quantity="0").quantity == 0
    assert event(quantity="1000000000000").quantity == Decimal(10) ** 12


def test_fingerprint_is_the_payload_as_sent() -> None:
    first = event()
    retried = event(now=NOW + timedelta(minutes=3))
    assert first.fingerprint == retried.fingerprint
    assert first.timestamp != retried.timestamp
    for change in ({"quantity": "2"}, {"metadata": {"a": "b"}}, {"usage_type": UsageType.API_CALL}):
        assert event(**change).fingerprint != first.fingerprint
    assert event(quantity="1.0").fingerprint == first.fingerprint


def test_closed_periods_reject_earlier_usage() -> None:
    ensure_period_open(NOW, None)
    ensure_period_open(NOW, NOW)
    with pytest.raises(PreconditionFailed, match="closed billing period"):
        ensure_period_open(NOW - timedelta(seconds=1), NOW)


# -- limits (SPEC §7) -------------------------------------------------------------------------


def entitlements(status: EntitlementStatus = EntitlementStatus.ACTIVE) -> Entitlements:
    return Entitlements(
        organization_id=ORG,
        status=status,
        version=1,
        limits={UsageType.JOB_EXECUTION: Decimal(10), UsageType.QUEUES: Decimal(2)},
    )


def test_denials_without_subscription_or_when_past_due() -> None:
    status = LimitStatus(UsageType.JOB_EXECUTION, Decimal(10), Decimal(0), Decimal(0))
    assert check_one(None, status, Decimal(1)).reason == "no active subscription"
    none = entitlements(EntitlementStatus.NONE)
    assert check_one(none, status, Decimal(1)).reason == "no active subscription"
    past_due = entitlements(EntitlementStatus.PAST_DUE)
    decision = check_one(past_due, status, Decimal(1))
    assert (decision.allowed, decision.reason) == (False, "payment overdue")


def test_current_plus_reserved_plus_requested_up_to_the_limit_is_allowed() -> None:
    granted = entitlements()
    status = LimitStatus(UsageType.JOB_EXECUTION, Decimal(10), Decimal(7), Decimal(2))
    assert check_one(granted, status, Decimal(1)).allowed
    denied = check_one(granted, status, Decimal("1.000001"))
    assert not denied.allowed
    assert "job_execution limit exceeded" in denied.reason
    assert status.remaining == Decimal(1)
    over = LimitStatus(UsageType.JOB_EXECUTION, Decimal(10), Decimal(12), Decimal(0))
    assert over.remaining == 0
    assert over.exceeded


def test_absent_limit_is_unlimited() -> None:
    status = LimitStatus(UsageType.API_CALL, None, Decimal(10) ** 12, Decimal(0))
    decision = check_one(entitlements(), status, Decimal(10) ** 12)
    assert decision.allowed
    assert status.remaining is None


def test_every_limit_at_once_lists_what_is_exceeded() -> None:
    statuses = {
        UsageType.QUEUES: LimitStatus(UsageType.QUEUES, Decimal(2), Decimal(3), Decimal(0)),
        UsageType.JOB_EXECUTION: LimitStatus(
            UsageType.JOB_EXECUTION, Decimal(10), Decimal(10), Decimal(0)
        ),
    }
    decision = check_all(entitlements(), statuses)
    assert not decision.allowed
    assert [s.usage_type for s in decision.statuses] == [UsageType.JOB_EXECUTION, UsageType.QUEUES]
    assert "queues limit exceeded" in decision.reason
    assert "job_execution" not in decision.reason


# -- thresholds (SPEC §8) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "limit", "expected"),
    [
        ("0", "7", "10", []),
        ("7", "8", "10", ["0.8"]),
        ("7", "12", "10", ["0.8", "1"]),
        ("8", "9", "10", []),
        ("9", "10", "10", ["1"]),
        ("12", "15", "10", []),
        ("0", "1", "0", ["0.8", "1"]),
        ("0", "100", None, []),
    ],
)
def test_thresholds_are_reached_once(
    before: str, after: str, limit: str | None, expected: list[str]
) -> None:
    crossed = crossed_thresholds(Decimal(before), Decimal(after), Decimal(limit) if limit else None)
    assert crossed == [Decimal(e) for e in expected]


# -- time-weighted gauges (SPEC §2) -----------------------------------------------------------


def test_the_storage_example_of_the_spec() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    readings = [
        GaugeReading(start + timedelta(hours=240), Decimal(30)),
        GaugeReading(start, Decimal(10)),  # unsorted on purpose
    ]
    hours = time_weighted_hours(None, readings, start, start + timedelta(hours=720))
    assert hours == Decimal(16800)
    assert hours * Decimal("0.0002") == Decimal("3.36")


def test_level_before_the_range_holds_and_outside_readings_are_ignored() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = start + timedelta(hours=10)
    readings = [
        GaugeReading(start - timedelta(hours=1), Decimal(99)),
        GaugeReading(start + timedelta(hours=5), Decimal(0)),
        GaugeReading(end, Decimal(99)),
    ]
    assert time_weighted_hours(Decimal(4), readings, start, end) == Decimal(20)
    assert time_weighted_hours(None, [], start, end) == 0


def test_fractional_seconds_round_half_up_to_six_places() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    one_second = time_weighted_hours(Decimal(1), [], start, start + timedelta(seconds=1))
    assert one_second == Decimal("0.000278")  # 1/3600 = 0.0002777…
    tiny = time_weighted_hours(Decimal(1), [], start, start + timedelta(microseconds=1))
    assert tiny == Decimal("0.000000")
