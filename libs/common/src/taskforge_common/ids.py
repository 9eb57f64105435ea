"""Identifiers: UUIDs whose first 48 bits are the creation time in milliseconds (UUIDv7 layout).

Time-ordered ids land at the end of a B-tree index instead of at random pages, which keeps bulk
inserts fast; the remaining 74 bits are random, so ids stay unguessable and collision-free.
"""

from __future__ import annotations

import os
from datetime import datetime

_VERSION_7 = 0x7 << 76
_VARIANT_RFC_4122 = 0x2 << 62
_RANDOM_B = (1 << 62) - 1  # the 62 random bits after the variant


class _RandomPool:
    """os.urandom bytes fetched in 4 KiB blocks: a system call per id cost 12% of batch ingest."""

    def __init__(self) -> None:
        self._block = b""
        self._offset = 0

    def take(self, count: int) -> bytes:
        if self._offset + count > len(self._block):
            self._block, self._offset = os.urandom(4096), 0
        chunk = self._block[self._offset : self._offset + count]
        self._offset += count
        return chunk


_random = _RandomPool()


class _Sequence:
    """The ms timestamp and 74 random bits of the last id: ids made in one millisecond follow
    the last one by a random step instead of being drawn afresh, so ids of one process increase
    in the order they are made (an audit trail's entries of one change, a batch's records)."""

    def __init__(self) -> None:
        self.now: datetime | None = None
        self.milliseconds = -1
        self.random = 0

    def next(self, now: datetime) -> tuple[int, int]:
        # A batch's ids share one `now`: its millisecond is worked out once.
        if now is not self.now:
            self.now = now
            milliseconds = int(now.timestamp() * 1000) & ((1 << 48) - 1)
            if milliseconds != self.milliseconds:
                self.milliseconds = milliseconds
                return milliseconds, self._fresh()
        step = int.from_bytes(_random.take(2), "big") + 1
        if self.random + step >= _RANDOM_LIMIT:  # never in practice: start afresh
            return self.milliseconds, self._fresh()
        self.random += step
        return self.milliseconds, self.random

    def _fresh(self) -> int:
        # The top bit stays clear so a millisecond always has room for steps after it.
        self.random = int.from_bytes(_random.take(10), "big") & (_RANDOM_LIMIT // 2 - 1)
        return self.random


_RANDOM_LIMIT = 1 << 74
_sequence = _Sequence()


def new_id(now: datetime) -> str:
    """A version-7 UUID for an object created at `now` (the injected clock's time)."""
    milliseconds, random_bits = _sequence.next(now)
    value = (
        (milliseconds << 80)
        | _VERSION_7
        | ((random_bits >> 62) << 64)  # the 12 bits after the version
        | _VARIANT_RFC_4122
        | (random_bits & _RANDOM_B)  # the 62 bits after the variant
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
