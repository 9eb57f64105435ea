"""Hypothesis strategies for SubscriptionService requests full of hostile field values, the
SPEC §11 oracle saying which of them must be refused, and bytes that decode as no request.

The field values come from tests/metering/strategies.py (odd and huge strings, Timestamp
extremes, enum oddities, page sizes and crafted page tokens, `mostly`); what is here is
subscriptions-specific: the requests, decimal prices and tax rates, limits, plans and prices.
"""

from __future__ import annotations

from typing import Any, cast

from google.protobuf import message_factory
from google.protobuf.message import Message

_BAD_UTF8 = {
    "lone continuation": b"\x80",
    "0xff": b"\xff",
    "overlong slash": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "beyond U+10FFFF": b"\xf4\x90\x80\x80",
    "cut sequence": b"ab\xc3",
}


def utf8_breaking() -> dict[str, bytes]:
    """Byte strings that are not UTF-8, each a different way."""
    return dict(_BAD_UTF8)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def length_delimited(number: int, data: bytes) -> bytes:
    """Field `number` of wire type 2 (strings, bytes, messages) holding `data`."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def string_paths(message: Message) -> list[tuple[int, ...]]:
    """The field-number paths of every string field of `message`, nested messages of the
    suite's own packages included (limits, plans, prices, bands)."""
    paths: list[tuple[int, ...]] = []
    for field in message.DESCRIPTOR.fields:
        if field.type == field.TYPE_STRING:
            paths.append((field.number,))
        elif field.message_type is not None and field.message_type.full_name.startswith(
            "taskforge."
        ):
            nested: Any = message_factory.GetMessageClass(cast(Any, field.message_type))()
            paths += [(field.number, *path) for path in string_paths(nested)]
    return paths


def with_nested_string(path: tuple[int, ...], data: bytes) -> bytes:
    """A message whose string at `path` holds the raw `data`."""
    for number in reversed(path):
        data = length_delimited(number, data)
    return data
