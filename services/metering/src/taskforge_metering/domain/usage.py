"""Usage events: validation (SPEC §2, §11) and the payload fingerprint behind idempotency (§12)."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from taskforge_common.decimals import format_decimal, parse_decimal
from taskforge_common.errors import InvalidArgument, PreconditionFailed
from taskforge_metering.domain.meters import UsageType

MAX_QUANTITY = Decimal(10) ** 12
QUANTITY_PLACES = 6
MAX_METADATA_KEYS = 16
MAX_METADATA_BYTES = 1024
MAX_IDEMPOTENCY_KEY_LENGTH = 255
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


@functools.lru_cache(maxsize=65536)  # the same organisations call again and again
def parse_organization_id(value: str, field_name: str = "organization_id") -> str:
    """Organisation ids are UUIDs; answer their canonical lower-case form."""
    if not value:
        raise InvalidArgument(f"{field_name} is required")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(f"{field_name} must be a UUID, got {value!r}") from None


@functools.lru_cache(maxsize=4096)  # most quantities repeat ("1")
def parse_quantity(value: str, field_name: str = "quantity") -> Decimal:
    """A quantity: decimal ≥ 0 with at most 6 decimal places and at most 1e12."""
    return canonical_quantity(
        parse_decimal(value, field_name, max_places=QUANTITY_PLACES, max_value=MAX_QUANTITY)
    )


def canonical_quantity(quantity: Decimal) -> Decimal:
    """Without trailing zeros or exponent: 2.000000 (as NUMERIC returns it) becomes 2."""
    return quantity.normalize() + Decimal(0)  # + 0 turns 1E+2 back into 100


def _reject_nul(text: str, field_name: str) -> None:
    # Databases cannot store NUL in text; caught here it fails one event, not a whole batch.
    if "\x00" in text:
        raise InvalidArgument(f"{field_name} must not contain NUL characters")


def validate_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if not metadata:
        return {}
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidArgument(f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS}")
    # One pass over the joined text: size and NUL checks per event sit on the ingest hot path.
    joined = "".join(f"{key}{value}" for key, value in metadata.items())
    size = len(joined.encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidArgument(f"metadata is {size} bytes; at most {MAX_METADATA_BYTES} in all")
    if "" in metadata:
        raise InvalidArgument("metadata keys must not be empty")
    _reject_nul(joined, "metadata")
    return dict(metadata)


def validate_idempotency_key(value: str) -> str:
    if not value.strip():
        raise InvalidArgument("idempotency_key is required")
    if len(value) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidArgument(f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_LENGTH}")
    _reject_nul(value, "idempotency_key")
    return value


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
    amount = parse_quantity(quantity)
    key = validate_idempotency_key(idempotency_key)
    meta = validate_metadata(metadata)
    if timestamp is not None and timestamp > now + MAX_CLOCK_SKEW:
        raise InvalidArgument(
            f"timestamp {timestamp.isoformat()} is in the future (now {now.isoformat()})"
        )
    # The fingerprint takes the timestamp as sent, so a retry of an event without a timestamp
    # is the same payload even though "now" has moved on.
    fingerprint = payload_fingerprint(org, usage_type, amount, timestamp, meta)
    return UsageEvent(org, usage_type, amount, timestamp or now, key, meta, fingerprint)


def payload_fingerprint(
    organization_id: str,
    usage_type: UsageType,
    quantity: Decimal,
    timestamp: datetime | None,
    metadata: Mapping[str, str],
) -> str:
    # Unit and record separators cannot occur in the validated fields' canonical forms.
    parts = [
        organization_id,
        usage_type.value,
        format_decimal(quantity.normalize()),
        timestamp.isoformat() if timestamp else "",
    ]
    parts += [f"{key}\x1e{value}" for key, value in sorted(metadata.items())]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def ensure_period_open(timestamp: datetime, usage_closed_before: datetime | None) -> None:
    """Usage of a period whose invoice is finalized can no longer be counted (SPEC §4)."""
    if usage_closed_before is not None and timestamp < usage_closed_before:
        raise PreconditionFailed(
            f"usage at {timestamp.isoformat()} belongs to a closed billing period "
            f"(usage before {usage_closed_before.isoformat()} is already invoiced)"
        )
