"""Usage events: validation (SPEC §2, §11) and the payload fingerprint behind idempotency (§12)."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from taskforge_common.decimals import format_decimal, parse_decimal
from taskforge_common.errors import InvalidArgument, PreconditionFailed, Reason
from taskforge_common.meters import UsageType
from taskforge_common.validation import check_instant, check_key, parse_uuid

MAX_QUANTITY = Decimal(10) ** 12
QUANTITY_PLACES = 6
MAX_METADATA_KEYS = 16
MAX_METADATA_BYTES = 1024
# Clocks of callers drift; an event stamped further ahead than this is a caller bug.
MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """A validated usage event. `fingerprint` identifies its payload as the caller sent it."""

    organization_id: str
    usage_type: UsageType
    quantity: Decimal
    timestamp: datetime
    idempotency_key: str
    metadata: Mapping[str, str]
    fingerprint: str


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """A stored usage event."""

    id: str
    organization_id: str
    usage_type: UsageType
    quantity: Decimal
    timestamp: datetime
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    recorded_at: datetime | None = None


def parse_organization_id(value: str, field_name: str = "organization_id") -> str:
    """Organisation ids are UUIDs; answer their canonical lower-case form."""
    return parse_uuid(value, field_name)


def parse_quantity(value: str, field_name: str = "quantity") -> Decimal:
    """A quantity: decimal ≥ 0 with at most 6 decimal places and at most 1e12."""
    return _cached_quantity(value, field_name)[0]


# Most quantities repeat ("1"). A refused value is never stored: lru_cache keeps only calls
# that return, so a long or malformed string cannot grow the cache.
@functools.lru_cache(maxsize=4096)
def _cached_quantity(value: str, field_name: str) -> tuple[Decimal, str]:
    """The quantity and its canonical text, which the payload fingerprint takes."""
    quantity = parse_decimal(value, field_name, max_places=QUANTITY_PLACES, max_value=MAX_QUANTITY)
    return quantity, format_decimal(quantity)


# Control characters other than tab and line breaks: databases cannot store NUL, and the
# payload fingerprint separates its parts with \x1e and \x1f, which must not occur inside one.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def validate_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if not metadata:
        return {}
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidArgument(
            f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS}", field="metadata"
        )
    # One pass over the keys' and values' text: size and NUL checks per event sit on the ingest
    # hot path. Neither check depends on the order of the characters.
    joined = "".join(metadata) + "".join(metadata.values())
    size = len(joined) if joined.isascii() else len(joined.encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"metadata is {size} bytes; at most {MAX_METADATA_BYTES} in all", field="metadata"
        )
    for key in metadata:
        if not key or not key.isprintable():
            raise InvalidArgument(
                "metadata keys must be non-empty printable text", field=f"metadata[{key!r}]"
            )
    if _CONTROL_CHARACTERS.search(joined):
        raise InvalidArgument(
            "metadata values must not hold control characters (tab and line breaks may)",
            field="metadata",
        )
    return dict(metadata)


def validate_idempotency_key(value: str) -> str:
    return check_key(value, "idempotency_key")


def new_usage_event(
    *,
    organization_id: str,
    usage_type: UsageType,
    quantity: str,
    timestamp: datetime | None,
    idempotency_key: str,
    metadata: Mapping[str, str],
    now: datetime,
) -> UsageEvent:
    """Validate a usage event as the caller sent it; a missing timestamp means `now`."""
    org = parse_organization_id(organization_id)
    amount, amount_text = _cached_quantity(quantity, "quantity")
    key = validate_idempotency_key(idempotency_key)
    meta = validate_metadata(metadata)
    if timestamp is not None:
        check_instant(timestamp, "timestamp")
        if timestamp > now + MAX_CLOCK_SKEW:
            raise InvalidArgument(
                f"timestamp {timestamp.isoformat()} is more than {MAX_CLOCK_SKEW} ahead of the "
                f"server's clock (now {now.isoformat()})",
                field="timestamp",
            )
    # The fingerprint takes the timestamp as sent, so a retry of an event without a timestamp
    # is the same payload even though "now" has moved on.
    fingerprint = _fingerprint(org, usage_type, amount_text, timestamp, meta)
    return UsageEvent(org, usage_type, amount, timestamp or now, key, meta, fingerprint)


def payload_fingerprint(
    organization_id: str,
    usage_type: UsageType,
    quantity: Decimal,
    timestamp: datetime | None,
    metadata: Mapping[str, str],
) -> str:
    """The identity of a validated payload (`quantity` canonical, as parsing answers it).
    Unit and record separators cannot occur in the validated fields, so parts never run
    together."""
    return _fingerprint(organization_id, usage_type, format_decimal(quantity), timestamp, metadata)


def _fingerprint(
    organization_id: str,
    usage_type: UsageType,
    quantity_text: str,
    timestamp: datetime | None,
    metadata: Mapping[str, str],
) -> str:
    """SHA-256 of organisation, type, quantity, timestamp and the sorted metadata pairs
    (key \\x1e value), joined by \\x1f, in hex. The digests of earlier releases must stay the
    same for the same payload: a retry stored before an upgrade is still the same event."""
    text = (
        f"{organization_id}\x1f{usage_type.value}\x1f{quantity_text}\x1f"
        f"{timestamp.isoformat() if timestamp else ''}"
    )
    if metadata:
        text += "".join([f"\x1f{key}\x1e{value}" for key, value in sorted(metadata.items())])
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_period_open(timestamp: datetime, usage_closed_before: datetime | None) -> None:
    """Usage of a period whose invoice is finalized can no longer be counted (SPEC §4)."""
    if usage_closed_before is not None and timestamp < usage_closed_before:
        raise PreconditionFailed(
            f"usage at {timestamp.isoformat()} belongs to a closed billing period "
            f"(usage before {usage_closed_before.isoformat()} is already invoiced)",
            reason=Reason.USAGE_PERIOD_CLOSED,
        )
