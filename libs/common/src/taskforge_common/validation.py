"""The bounds of SPEC §11 that hold for every field of every RPC, in every service.

Each check answers InvalidArgument naming the field, and each runs before the value is used,
stored or cached, so no request can carry a value that fails later, deeper in, for itself or
for the callers it shares a transaction or a cache with. Pure: no protobuf, no grpc
(`taskforge_common.protobuf` applies these to messages).
"""

from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime, timedelta

from taskforge_common.errors import InvalidArgument

EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
INSTANT_LIMIT = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
SHORTEST_DURATION = timedelta(seconds=1)
LONGEST_DURATION = timedelta(days=30)
MAX_KEY_LENGTH = 255

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NANOS_PER_SECOND = 1_000_000_000
_EARLIEST_SECONDS = int((EARLIEST_INSTANT - _EPOCH).total_seconds())
_LIMIT_SECONDS = int((INSTANT_LIMIT - _EPOCH).total_seconds())
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_UUID_LENGTH = 36
_SHORTEST_NANOS = SHORTEST_DURATION // timedelta(microseconds=1) * 1000
_LONGEST_NANOS = LONGEST_DURATION // timedelta(microseconds=1) * 1000


def check_instant(instant: datetime, field: str) -> datetime:
    """An aware instant in [2000-01-01, 2100-01-01) UTC."""
    if instant.tzinfo is None:
        raise InvalidArgument(f"{field} must carry a time zone", field=field)
    if not EARLIEST_INSTANT <= instant < INSTANT_LIMIT:
        raise _out_of_range(field)
    return instant


def instant_from_parts(seconds: int, nanos: int, field: str) -> datetime:
    """The instant of a protobuf Timestamp's fields, checked before any conversion (a datetime
    cannot hold every Timestamp). Storage keeps microseconds: finer digits are dropped."""
    if not 0 <= nanos < _NANOS_PER_SECOND:
        raise InvalidArgument(f"{field}.nanos must be from 0 to 999999999", field=field)
    if not _EARLIEST_SECONDS <= seconds < _LIMIT_SECONDS:
        raise _out_of_range(field)
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def _out_of_range(field: str) -> InvalidArgument:
    return InvalidArgument(
        f"{field} must be from {EARLIEST_INSTANT:%Y-%m-%d} to before "
        f"{INSTANT_LIMIT:%Y-%m-%d} (UTC)",
        field=field,
    )


def duration_from_parts(seconds: int, nanos: int, field: str) -> timedelta:
    """The length of a protobuf Duration's fields, from 1 second to 30 days."""
    if not -_NANOS_PER_SECOND < nanos < _NANOS_PER_SECOND or (seconds * nanos < 0):
        raise InvalidArgument(f"{field} is not a valid duration", field=field)
    total_nanos = seconds * _NANOS_PER_SECOND + nanos
    if not _SHORTEST_NANOS <= total_nanos <= _LONGEST_NANOS:
        raise InvalidArgument(
            f"{field} must be from {SHORTEST_DURATION.total_seconds():g} second to "
            f"{LONGEST_DURATION.days} days",
            field=field,
        )
    return timedelta(microseconds=total_nanos // 1000)


def parse_uuid(value: str, field: str) -> str:
    """A UUID as text (8-4-4-4-12 hex digits, any case), in its canonical lower-case form."""
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    if len(value) != _UUID_LENGTH:  # checked first: nothing longer reaches the cache
        raise InvalidArgument(f"{field} must be a UUID", field=field)
    return _canonical_uuid(value, field)


@functools.lru_cache(maxsize=16_384)  # the same organisations call again and again
def _canonical_uuid(value: str, field: str) -> str:
    if not _UUID_TEXT.fullmatch(value):
        raise InvalidArgument(f"{field} must be a UUID, got {value!r}", field=field)
    return str(uuid.UUID(value))


def check_key(value: str, field: str) -> str:
    """An idempotency key or request id: 1–255 printable characters, not all blank."""
    if not value.strip():
        raise InvalidArgument(f"{field} is required", field=field)
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidArgument(f"{field} is longer than {MAX_KEY_LENGTH} characters", field=field)
    if not value.isprintable():
        raise InvalidArgument(f"{field} must hold printable characters only", field=field)
    return value
