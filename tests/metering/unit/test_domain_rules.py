"""The pure metering rules: periods, event validation, limits, thresholds, time-weighted gauges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskforge_common.errors import InvalidArgument, PreconditionFailed
from taskforge_common.periods import add_months, monthly_window, period_at, period_containing
from taskforge_metering.domain.aggregation import GaugeReading, time_weighted_hours
from taskforge_metering.domain.entitlements import Entitlements, EntitlementStatus
from taskforge_metering.domain.limits import LimitStatus, check_all, check_one
from taskforge_metering.domain.meters import UsageType
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


@settings(max_examples=200, deadline=None)
@given(
    anchor=st.datetimes(
        # hypothesis takes naive bounds and applies `timezones` to the drawn values
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2060, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    offset=st.timedeltas(min_value=timedelta(days=-2000), max_value=timedelta(days=2000)),
    months=st.sampled_from([1, 3, 12]),
)
def test_periods_contain_their_instant_and_tile_without_gaps(
    anchor: datetime, offset: timedelta, months: int
) -> None:
    instant = anchor + offset
    period = period_containing(anchor, months, instant)
    assert period.contains(instant)
    assert period.start == add_months(anchor, period.index * months)
    following = period_at(anchor, months, period.index + 1)
    assert following.start == period.end


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
