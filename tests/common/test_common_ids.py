"""Time-ordered UUIDv7-style ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from taskforge_common.ids import new_id


def test_ids_are_version_7_uuids_ordered_by_creation_time() -> None:
    start = datetime(2026, 3, 10, 12, tzinfo=UTC)
    ids = [new_id(start + timedelta(milliseconds=n)) for n in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == ids[0]
    milliseconds = int(start.timestamp() * 1000)
    assert int(ids[0].replace("-", "")[:12], 16) == milliseconds


def test_ids_of_the_same_millisecond_differ_in_their_random_bits() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    ids = {new_id(now) for _ in range(10_000)}  # crosses several random-pool refills
    assert len(ids) == 10_000
    assert len({i[:13] for i in ids}) == 1


def test_ids_made_in_one_millisecond_increase_in_the_order_they_are_made() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    ids = [new_id(now) for _ in range(5_000)]
    assert ids == sorted(ids)
    # The system clock gives a new datetime on each call, within one millisecond too.
    apart = [new_id(now + timedelta(microseconds=n % 1000)) for n in range(5_000)]
    assert apart == sorted(apart)
    assert all(uuid.UUID(i).version == 7 for i in ids[:10])
