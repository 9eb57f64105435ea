"""Opaque, tamper-evident page tokens for cursor pagination over (instant, id) orderings.

A token holds the last row's instant and id in a fixed binary layout, with a keyed MAC over
them and the query it pages through. Decoding checks all of it (length, version, MAC, instant
bounds), so a crafted or edited token, or one from another query, is refused as
INVALID_ARGUMENT and never reaches the database. The key is shared by every replica (derived
from the deployment's token secret), so a token from one process pages on in another.
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
# version, microseconds since EARLIEST_INSTANT, the id's 16 bytes
_CURSOR = struct.Struct(">BQ16s")
_MAC_SIZE = 16
_TOKEN_LENGTH = len(base64.urlsafe_b64encode(bytes(_CURSOR.size + _MAC_SIZE)))
_MICROSECOND = timedelta(microseconds=1)
_SPAN_MICROS = (INSTANT_LIMIT - EARLIEST_INSTANT) // _MICROSECOND
_INVALID = "invalid page_token: pass the next_page_token of the previous page unchanged"


class PageTokens:
    """Issues and checks the page tokens of one deployment."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a page token key has at least 16 bytes")
        self._key = key[:64]  # blake2b takes keys of up to 64 bytes

    @classmethod
    def from_secret(cls, secret: str) -> PageTokens:
        """Tokens keyed by a key derived from `secret`, so the secret itself signs nothing else."""
        return cls(hmac.new(secret.encode(), b"taskforge page tokens", hashlib.sha256).digest())

    def encode(self, at: datetime, row_id: str, query: str) -> str:
        """The token of the page after the row (`at`, `row_id`) of `query` (any text naming the
        query's filters: the token is refused for any other)."""
        micros = (check_instant(at, "page cursor") - EARLIEST_INSTANT) // _MICROSECOND
        cursor = _CURSOR.pack(_VERSION, micros, uuid.UUID(row_id).bytes)
        return base64.urlsafe_b64encode(cursor + self._mac(cursor, query)).decode()

    def decode(self, token: str, query: str) -> tuple[datetime, str]:
        """The cursor (instant, id) of a token `encode` made for the same `query`."""
        if len(token) != _TOKEN_LENGTH:
            raise InvalidArgument(_INVALID, field="page_token")
        try:
            raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise InvalidArgument(_INVALID, field="page_token") from None
        cursor, mac = raw[: _CURSOR.size], raw[_CURSOR.size :]
        if not hmac.compare_digest(mac, self._mac(cursor, query)):
            raise InvalidArgument(_INVALID, field="page_token")
        version, micros, id_bytes = _CURSOR.unpack(cursor)
        if version != _VERSION or micros >= _SPAN_MICROS:  # signed by a future layout
            raise InvalidArgument(_INVALID, field="page_token")
        return EARLIEST_INSTANT + micros * _MICROSECOND, str(uuid.UUID(bytes=id_bytes))

    def _mac(self, cursor: bytes, query: str) -> bytes:
        digest = hashlib.blake2b(key=self._key, digest_size=_MAC_SIZE)
        digest.update(cursor)
        digest.update(query.encode())
        return digest.digest()
