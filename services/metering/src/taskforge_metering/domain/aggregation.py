"""Billable quantities over a time range (SPEC §2): counters sum, gauges integrate over time.

A gauge level holds from its report until the next report, so storage is billed in GB-hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from taskforge_common.periods import exact_seconds
from taskforge_metering.domain.usage import QUANTITY_PLACES

SECONDS_PER_HOUR = Decimal(3600)
_QUANTUM = Decimal(1).scaleb(-QUANTITY_PLACES)


@dataclass(frozen=True, slots=True)
class GaugeReading:
    at: datetime
    level: Decimal


def time_weighted_hours(
    level_before: Decimal | None,
    readings: Sequence[GaugeReading],
    start: datetime,
    end: datetime,
) -> Decimal:
    """∫ level dt over [start, end) in level-hours, rounded half up to 6 decimal places.

    `level_before` is the last level reported before `start` (none: nothing was stored yet);
    `readings` are the reports inside the range in the order they happened.
    """
    if end <= start:
        return Decimal(0)
    level_seconds = Decimal(0)
    level = level_before or Decimal(0)
    since = start
    for reading in sorted(readings, key=lambda r: r.at):
        if reading.at < start or reading.at >= end:
            continue
        level_seconds += level * exact_seconds(reading.at - since)
        level, since = reading.level, reading.at
    level_seconds += level * exact_seconds(end - since)
    return (level_seconds / SECONDS_PER_HOUR).quantize(_QUANTUM, rounding=ROUND_HALF_UP)
