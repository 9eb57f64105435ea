"""Opaque page tokens for cursor pagination over (instant, id) orderings.

A token holds the last row's instant and id and a digest of the query it pages through, in a
fixed binary layout. Decoding checks all of it (length, version, instant bounds, query), so a
crafted or edited token, or one from another query, is refused as INVALID_ARGUMENT and never
reaches the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from datetime import datetime, timedelta

from taskforge_common.errors import InvalidArgument
from taskforge_common.validation import EARLIEST_INSTANT, INSTANT_LIMIT, check_instant

_VERSION = 1
# version, microseconds since EARLIEST_INSTANT, the id's 16 bytes, the query's digest
_LAYOUT = struct.Struct(">BQ16s8s")
_TOKEN_LENGTH = len(base64.urlsafe_b64encode(bytes(_LAYOUT.size)))
_MICROSECOND = timedelta(microseconds=1)
_SPAN_MICROS = (INSTANT_LIMIT - EARLIEST_INSTANT) // _MICROSECOND
_INVALID = "invalid page_token: pass the next_page_token of the previous page unchanged"


def encode_page_token(at: datetime, row_id: str, query: str) -> str:
    """The token of the page after the row (`at`, `row_id`) of `query` (any text that names the
    query's filters: a token is refused for any other)."""
    micros = (check_instant(at, "page cursor") - EARLIEST_INSTANT) // _MICROSECOND
    raw = _LAYOUT.pack(_VERSION, micros, uuid.UUID(row_id).bytes, _digest(query))
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str, query: str) -> tuple[datetime, str]:
    """The cursor (instant, id) of a token `encode_page_token` made for the same `query`."""
    if len(token) != _TOKEN_LENGTH:
        raise InvalidArgument(_INVALID, field="page_token")
    try:
        raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidArgument(_INVALID, field="page_token") from None
    version, micros, id_bytes, digest = _LAYOUT.unpack(raw)
    at = EARLIEST_INSTANT + micros * _MICROSECOND if micros < _SPAN_MICROS else None
    if version != _VERSION or at is None or not hmac.compare_digest(digest, _digest(query)):
        raise InvalidArgument(_INVALID, field="page_token")
    return at, str(uuid.UUID(bytes=id_bytes))


def _digest(query: str) -> bytes:
    return hashlib.blake2b(query.encode(), digest_size=8).digest()
