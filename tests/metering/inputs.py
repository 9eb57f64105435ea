"""Inputs to the metering use cases, shaped as the transport hands them over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_parts(instant: datetime) -> tuple[int, int]:
    """(seconds, nanos) of the protobuf Timestamp of `instant`."""
    seconds, micros = divmod((instant - _EPOCH) // timedelta(microseconds=1), 1_000_000)
    return seconds, micros * 1000
