"""to_json_safe: every value outbox payloads and audit snapshots hold survives JSON unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from uuid import UUID

import pytest

from taskforge_common.jsonsafe import to_json_safe
from taskforge_common.money import Money


class Tier(StrEnum):
    PRO = "pro"


class Colour(Enum):
    RED = 1


class Level(IntEnum):
    HIGH = 3


@dataclass(frozen=True)
class Snapshot:
    tier: Tier
    price: Money
    starts: date
    tags: tuple[str, ...]


def test_values_become_plain_json() -> None:
    value = {
        "price": Decimal("38.50"),
        "tiny": Decimal("1E-7"),
        "at": datetime(2026, 1, 31, 7, 0, 0, 250000, tzinfo=timezone(timedelta(hours=7))),
        "id": UUID("0190f1a2-0000-7000-8000-000000000001"),
        "enums": [Colour.RED, Level.HIGH, Tier.PRO],
        "plain": [None, True, 3, "text"],
        "snapshot": Snapshot(Tier.PRO, Money(Decimal("99.00"), "USD"), date(2026, 2, 1), ("a",)),
    }
    safe = to_json_safe(value)
    assert safe == {
        "price": "38.50",
        "tiny": "0.0000001",
        "at": "2026-01-31T00:00:00.250000Z",
        "id": "0190f1a2-0000-7000-8000-000000000001",
        "enums": [1, 3, "pro"],
        "plain": [None, True, 3, "text"],
        "snapshot": {
            "tier": "pro",
            "price": {"amount": "99.00", "currency": "USD"},
            "starts": "2026-02-01",
            "tags": ["a"],
        },
    }
    assert json.loads(json.dumps(safe)) == safe
    assert type(safe["enums"][2]) is str  # type: ignore[index]


def test_whole_seconds_have_no_fraction() -> None:
    assert to_json_safe(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0.1, TypeError, "floats are refused"),
        ({"x": [1.5]}, TypeError, "floats are refused"),
        ({1: "a"}, TypeError, "keys are strings"),
        ({"a"}, TypeError, "set is not JSON-safe"),
        (b"raw", TypeError, "bytes is not JSON-safe"),
        (Decimal("NaN"), ValueError, "not a finite decimal"),
        (datetime(2026, 1, 1), ValueError, "naive datetime"),  # noqa: DTZ001
    ],
)
def test_what_json_cannot_hold_exactly_is_refused(
    value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        to_json_safe(value)
