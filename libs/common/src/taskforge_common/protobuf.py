"""Well-known protobuf types to Python values, through the bounds of `validation`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Generic, TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.common.v1 import common_pb2
from taskforge_common.errors import InvalidArgument
from taskforge_common.meters import UsageType
from taskforge_common.validation import duration_from_parts, instant_from_parts

_Enum = TypeVar("_Enum", bound=Enum)


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


class ProtoEnum(Generic[_Enum]):
    """A protobuf enum and the Python enum of the same values: proto `TIER_PRO` is
    `Tier.PRO`, the member named like the proto value without its prefix. UNSPECIFIED (0) maps
    to None; a number the proto does not define is InvalidArgument naming the field."""

    def __init__(self, proto: EnumTypeWrapper, python: type[_Enum], prefix: str) -> None:
        self._from_number: dict[int, _Enum] = {
            number: python[name.removeprefix(prefix)]
            for name, number in proto.items()
            if number != 0
        }
        self._to_number = {member: number for number, member in self._from_number.items()}
        self._what = prefix.rstrip("_").lower().replace("_", " ")

    @property
    def by_number(self) -> Mapping[int, _Enum]:
        """Every member by its proto number (UNSPECIFIED left out)."""
        return self._from_number

    def optional(self, number: int, field: str) -> _Enum | None:
        if number == 0:
            return None
        try:
            return self._from_number[number]
        except KeyError:
            raise InvalidArgument(
                f"{field} {number} is not a known {self._what}", field=field
            ) from None

    def required(self, number: int, field: str) -> _Enum:
        value = self.optional(number, field)
        if value is None:
            raise InvalidArgument(f"{field} is required", field=field)
        return value

    def number(self, value: _Enum) -> Any:
        """The proto number of `value`; typed Any because each generated enum has a value type
        of its own (`common_pb2.Tier.ValueType`) that an int is not accepted as."""
        return self._to_number[value]


# The usage types of common.proto, for every service that maps them.
USAGE_TYPE = ProtoEnum(common_pb2.UsageType, UsageType, "USAGE_TYPE_")
