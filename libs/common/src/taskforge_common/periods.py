"""Anniversary billing periods (SPEC §3, §7): calendar months counted from an anchor instant.

Every boundary is computed from the anchor, never by chaining one period's end into the next, so a
period anchored on the 31st ends on the 28th of February and on the 31st of March again.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from taskforge_common.clock import ensure_utc

# Usage with no subscription is still stored by timestamp; it falls into calendar months.
CALENDAR_ANCHOR = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """The half-open interval [start, end) of period number `index` counted from the anchor."""

    start: datetime
    end: datetime
    index: int

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


def exact_seconds(delta: timedelta) -> Decimal:
    """The length of `delta` in seconds, exact to the microsecond (no float on the way)."""
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` moved by whole calendar months, the day clamped to the target month's length."""
    anchor = ensure_utc(anchor)
    month_index = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(month_index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def period_at(anchor: datetime, months_per_period: int, index: int) -> Period:
    """Period number `index` (negative before the anchor) of `months_per_period` months."""
    if months_per_period <= 0:
        raise ValueError("a period has at least one month")
    return Period(
        start=add_months(anchor, index * months_per_period),
        end=add_months(anchor, (index + 1) * months_per_period),
        index=index,
    )


def period_containing(anchor: datetime, months_per_period: int, instant: datetime) -> Period:
    """The period of `months_per_period` months from `anchor` that contains `instant`."""
    anchor = ensure_utc(anchor)
    instant = ensure_utc(instant)
    elapsed_months = (instant.year - anchor.year) * 12 + (instant.month - anchor.month)
    # The month difference is exact or one too many (clamping and time of day only move
    # boundaries later within a month), so step back at most once or twice.
    index = elapsed_months // months_per_period
    period = period_at(anchor, months_per_period, index)
    while instant < period.start:
        index -= 1
        period = period_at(anchor, months_per_period, index)
    while instant >= period.end:
        index += 1
        period = period_at(anchor, months_per_period, index)
    return period


def monthly_window(anchor: datetime | None, instant: datetime) -> Period:
    """The one-month limit window containing `instant`: monthly limits reset on the anchor's day
    also inside quarterly and annual cycles; without an anchor, calendar months."""
    return period_containing(anchor or CALENDAR_ANCHOR, 1, instant)
