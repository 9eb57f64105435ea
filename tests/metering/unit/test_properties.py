"""Property tests of the pure metering rules whose expected values are computed here, with
integers and fractions, independently of the code under test. Each docstring's "Caught:" names
the deliberate breakage it was checked against."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from taskforge_common.meters import UsageType
from taskforge_common.periods import monthly_window
from taskforge_metering.domain.aggregation import GaugeReading, time_weighted_hours
from taskforge_metering.domain.limits import LimitStatus
from taskforge_metering.domain.thresholds import crossed_thresholds
from taskforge_metering.domain.usage import new_usage_event

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
START = datetime(2026, 3, 1, tzinfo=UTC)
MICROS_PER_HOUR = 3_600_000_000

# -- time-weighted gauges (SPEC §2) -----------------------------------------------------------

# Levels with up to 6 decimal places; offsets on a 900 µs grid reach exact halves of the sixth
# decimal place of an hour (1 × 1,800 µs = 0.0000005 h), where rounding modes differ.
levels = st.one_of(
    st.integers(min_value=0, max_value=50).map(Decimal),
    st.decimals(min_value=0, max_value=100, places=6, allow_nan=False, allow_infinity=False),
)
offsets = st.one_of(
    st.just(0),  # exactly at the range's start
    st.integers(min_value=-20, max_value=60).map(lambda n: n * 900),
    st.integers(min_value=-36_000_000, max_value=72_000_000),
)


def _hours_rounded_half_up(level_micros: Fraction) -> Decimal:
    """level·µs as level-hours, rounded half up to 6 places with integer arithmetic."""
    millionths = level_micros * 1_000_000 / MICROS_PER_HOUR
    whole = (millionths.numerator * 2 + millionths.denominator) // (millionths.denominator * 2)
    return Decimal(whole).scaleb(-6)


@settings(max_examples=300, deadline=None)
@given(
    before=st.one_of(st.none(), levels),
    readings=st.lists(st.tuples(offsets, levels), max_size=8, unique_by=lambda r: r[0]),
    length=st.one_of(
        st.integers(min_value=1, max_value=60).map(lambda n: n * 900),
        st.integers(min_value=1, max_value=40_000_000),
    ),
)
def test_the_storage_integral_is_the_step_function_summed_exactly(
    before: Decimal | None, readings: list[tuple[int, Decimal]], length: int
) -> None:
    """∫ level dt over [start, start + length) (µs offsets): a level holds from its report
    until the next; reports before the range or at/after its end are ignored; the level before
    the range (none: 0) holds until the first report inside it. Summed here segment by
    segment in Fractions, rounded half up with integers.
    Caught: readings exactly at `start` skipped; half-even rounding; microseconds dropped
    from the durations."""
    end = length
    inside = sorted((at, Fraction(level)) for at, level in readings if 0 <= at < end)
    level, since, total = Fraction(before or 0), 0, Fraction(0)
    for at, new_level in inside:
        total += level * (at - since)
        level, since = new_level, at
    total += level * (end - since)

    def instant(micros: int) -> datetime:
        return START + timedelta(microseconds=micros)

    shuffled = [GaugeReading(instant(at), lvl) for at, lvl in reversed(readings)]
    answered = time_weighted_hours(before, shuffled, START, instant(end))
    assert answered == _hours_rounded_half_up(total)


# -- thresholds (SPEC §8) ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    limit=st.one_of(st.none(), st.integers(min_value=0, max_value=40).map(Decimal)),
    increments=st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=12).map(Decimal),
            st.decimals(min_value=0, max_value=5, places=2, allow_nan=False),
        ),
        max_size=12,
    ),
)
def test_a_counter_reaches_each_threshold_once_in_order(
    limit: Decimal | None, increments: list[Decimal]
) -> None:
    """A counter growing step by step reports 80 % and 100 % each once, at the first step whose
    total is > 0 and ≥ limit × 80/100 (resp. ≥ limit), in that order; never without a limit.
    Expected with Fractions: total·100 ≥ limit·percent.
    Caught: `>` for `>=` (a total exactly at 80 % or at the limit reports nothing); the
    `before` test dropped (a threshold reported at every later step)."""
    reported: list[tuple[int, Decimal]] = []
    expected: list[tuple[int, Decimal]] = []
    total = Decimal(0)
    for step, increment in enumerate(increments):
        before, total = total, total + increment
        reported += [(step, t) for t in crossed_thresholds(before, total, limit)]
        if limit is None:
            continue
        for percent in (80, 100):
            reached = total > 0 and Fraction(total) * 100 >= Fraction(limit) * percent
            if reached and all(t != Decimal(percent) / 100 for _, t in expected):
                expected.append((step, Decimal(percent) / 100))
    assert reported == expected


# -- monthly windows without a subscription (SPEC §3, §13.13) ---------------------------------


@settings(max_examples=200, deadline=None)
@given(
    year=st.integers(min_value=2000, max_value=2098),
    month=st.integers(min_value=1, max_value=12),
    into=st.one_of(
        st.just(timedelta(0)),
        st.just(-timedelta(microseconds=1)),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=27)),
    ),
)
def test_without_an_anchor_windows_are_calendar_months(
    year: int, month: int, into: timedelta
) -> None:
    """The window of an instant is [1st of its month, 1st of the next), computed here from
    (year, month): a month's first instant opens its window, 1 µs before it is the previous
    month's.
    Caught: calendar windows counted from the 2nd (`CALENDAR_ANCHOR` 1970-01-02)."""
    first = datetime(year, month, 1, tzinfo=UTC)
    instant = first + into
    y, m = (instant.year, instant.month)
    next_y, next_m = (y + 1, 1) if m == 12 else (y, m + 1)
    window = monthly_window(None, instant)
    assert (window.start, window.end) == (
        datetime(y, m, 1, tzinfo=UTC),
        datetime(next_y, next_m, 1, tzinfo=UTC),
    )
    assert window.start <= instant < window.end


# -- limits (SPEC §7) -------------------------------------------------------------------------


def _spelled(value: Decimal, extra_zeros: int, leading_zeros: int) -> str:
    """`value` written with extra trailing fractional zeros and leading zeros."""
    text = f"{value:f}"
    if extra_zeros:
        text += ("" if "." in text else ".") + "0" * extra_zeros
    return "0" * leading_zeros + text


quantities = st.decimals(min_value=0, max_value=1000, places=3, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.one_of(st.none(), quantities),
    current=quantities,
    reserved=quantities,
    requested=quantities,
)
def test_a_limit_admits_exactly_what_fits(
    limit: Decimal | None, current: Decimal, reserved: Decimal, requested: Decimal
) -> None:
    """allowed ⇔ current + reserved + requested ≤ limit (always without a limit); remaining =
    max(0, limit − current − reserved); exceeded ⇔ current > limit. Expected with Fractions.
    Caught: `exceeded` as `current >= limit`; `admits` without the reservations."""
    status = LimitStatus(UsageType.JOB_EXECUTION, limit, current, reserved)
    if limit is None:
        assert status.admits(requested)
        assert (status.remaining, status.exceeded) == (None, False)
        return
    f_limit, f_used = Fraction(limit), Fraction(current) + Fraction(reserved)
    assert status.admits(requested) is (f_used + Fraction(requested) <= f_limit)
    assert status.remaining is not None
    assert Fraction(status.remaining) == max(Fraction(0), f_limit - f_used)
    assert status.exceeded is (Fraction(current) > f_limit)


# -- idempotency (SPEC §12) -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    first=st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False),
    second=st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False),
    same=st.booleans(),
    spelling=st.tuples(
        st.integers(min_value=0, max_value=4), st.integers(min_value=0, max_value=4)
    ),
    other_spelling=st.tuples(
        st.integers(min_value=0, max_value=4), st.integers(min_value=0, max_value=4)
    ),
)
def test_equal_quantities_however_spelled_are_the_same_payload(
    first: Decimal,
    second: Decimal,
    same: bool,
    spelling: tuple[int, int],
    other_spelling: tuple[int, int],
) -> None:
    """Two events with one key: the same payload (equal fingerprints) exactly when their
    quantities are equal numbers (Decimal equality), whatever the spelling ("1", "1.0",
    "01", "1.000000").
    Caught: the fingerprint over the quantity as spelled."""
    if same:
        second = first
    texts = (_spelled(first, *spelling), _spelled(second, *other_spelling))

    def fingerprint(text: str) -> str:
        return new_usage_event(
            organization_id=ORG,
            usage_type=UsageType.API_CALL,
            quantity=text,
            timestamp=None,
            idempotency_key="k",
            metadata={},
            now=START,
        ).fingerprint

    assert (Decimal(texts[0]), Decimal(texts[1])) == (first, second)
    assert (fingerprint(texts[0]) == fingerprint(texts[1])) is (first == second)
