"""Values made JSON-safe for outbox payloads and audit snapshots, one way everywhere.

A JSON column or body holds only what survives a round trip unchanged: decimals become exact
strings (a JSON number would be read back as a float), instants ISO-8601 UTC with a Z.
Floats are refused: money and quantities are never floats, and one appearing here is a bug.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TypeAlias
from uuid import UUID

from taskforge_common.clock import ensure_utc
from taskforge_common.decimals import format_decimal

JsonValue: TypeAlias = "bool | int | str | list[JsonValue] | dict[str, JsonValue] | None"


def to_json_safe(value: object) -> JsonValue:
    """`value` as plain JSON data: Decimal → "12.50", datetime → "2026-01-31T00:00:00Z",
    date → "2026-01-31", UUID → its text, enum → its value, dataclass → dict of its fields,
    tuple → list. TypeError for anything else (floats, sets, non-string keys); ValueError for
    non-finite decimals and naive datetimes."""
    if isinstance(value, Enum):  # before str and int: StrEnum and IntEnum members are both
        return to_json_safe(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite decimal")
        return format_decimal(value)
    if isinstance(value, datetime):
        return ensure_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        safe: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys are strings, not {type(key).__name__}")
            safe[key] = to_json_safe(item)
        return safe
    if isinstance(value, list | tuple):
        return [to_json_safe(item) for item in value]
    if isinstance(value, float):
        raise TypeError("floats are refused: use Decimal for money and quantities")
    raise TypeError(f"{type(value).__name__} is not JSON-safe")
