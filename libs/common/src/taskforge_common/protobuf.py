"""Well-known protobuf types to Python values, through the bounds of `validation`."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from taskforge_common.validation import duration_from_parts, instant_from_parts


def timestamp_field(message: Message, name: str, path: str = "") -> datetime | None:
    """The instant in `message.<name>` (None when unset); `path` names it in errors."""
    if not message.HasField(name):
        return None
    value: Timestamp = getattr(message, name)
    return instant_from_parts(value.seconds, value.nanos, path or name)


def duration_field(message: Message, name: str, path: str = "") -> timedelta | None:
    """The duration in `message.<name>` (None when unset); `path` names it in errors."""
    if not message.HasField(name):
        return None
    value: Duration = getattr(message, name)
    return duration_from_parts(value.seconds, value.nanos, path or name)
