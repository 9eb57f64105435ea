"""The answer of an ingested record, filled field by field, is the message protobuf would build
from the same values (the conversions protobuf offers, compared)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.metering.v1 import usage_pb2
from taskforge_common.meters import UsageType
from taskforge_metering.domain.usage import UsageRecord
from taskforge_metering.transport import mappers

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
INSTANTS = [
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 3, 1, 7, tzinfo=timezone(timedelta(hours=-5))),
]


@pytest.mark.parametrize("instant", INSTANTS)
def test_timestamps_are_protobufs_own(instant: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(instant)
    for _ in range(2):  # converted, then answered again from the cache
        message = Timestamp()
        mappers.set_timestamp(message, instant)
        assert message == expected


def test_a_record_is_answered_as_protobuf_builds_it() -> None:
    record = UsageRecord(
        id="01900000-0000-7000-8000-000000000001",
        organization_id=ORG,
        usage_type=UsageType.ACTIVE_WORKERS,
        quantity=Decimal("2.500"),
        timestamp=INSTANTS[1],
        idempotency_key="k",
        metadata={"b": "2", "a": "tab\t"},
        recorded_at=INSTANTS[2],
    )
    expected = usage_pb2.UsageRecord(
        id=record.id,
        organization_id=ORG,
        usage_type=mappers.usage_type_number(UsageType.ACTIVE_WORKERS),
        quantity="2.5",
        idempotency_key="k",
        metadata={"a": "tab\t", "b": "2"},
    )
    expected.timestamp.FromDatetime(INSTANTS[1])
    expected.recorded_at.FromDatetime(INSTANTS[2])
    assert mappers.usage_record(record) == expected
