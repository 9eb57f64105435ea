"""Identifiers: UUIDs whose first 48 bits are the creation time in milliseconds (UUIDv7 layout).

Time-ordered ids land at the end of a B-tree index instead of at random pages, which keeps bulk
inserts fast; the remaining 74 bits are random, so ids stay unguessable and collision-free.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime


def new_id(now: datetime) -> str:
    """A version-7 UUID for an object created at `now` (the injected clock's time)."""
    milliseconds = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = (milliseconds << 80) | (random_bits & ((1 << 80) - 1))
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))
