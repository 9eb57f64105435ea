"""The ingest hot path against the release before its CPU work (2026-12-01): the fingerprint
and metadata validation written out here as they were, compared on generated events. A retry
stored by the earlier release must still be the same payload, and a bad event must fail with
the same error."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from taskforge_common.decimals import format_decimal
from taskforge_common.errors import BillingError, InvalidArgument
from taskforge_common.meters import UsageType
from taskforge_metering.domain.usage import (
    MAX_METADATA_BYTES,
    MAX_METADATA_KEYS,
    new_usage_event,
    payload_fingerprint,
    validate_metadata,
)

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
NOW = datetime(2026, 3, 10, tzinfo=UTC)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def released_fingerprint(
    organization_id: str,
    usage_type: UsageType,
    quantity: Decimal,
    timestamp: datetime | None,
    metadata: Mapping[str, str],
) -> str:
    parts = [
        organization_id,
        usage_type.value,
        format_decimal(quantity),
        timestamp.isoformat() if timestamp else "",
    ]
    parts += [f"{key}\x1e{value}" for key, value in sorted(metadata.items())]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def released_validate_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if not metadata:
        return {}
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidArgument(
            f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS}", field="metadata"
        )
    joined = "".join(f"{key}{value}" for key, value in metadata.items())
    size = len(joined.encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"metadata is {size} bytes; at most {MAX_METADATA_BYTES} in all", field="metadata"
        )
    for key in metadata:
        if not key or not key.isprintable():
            raise InvalidArgument(
                "metadata keys must be non-empty printable text", field=f"metadata[{key!r}]"
            )
    if _CONTROL.search(joined):
        raise InvalidArgument(
            "metadata values must not hold control characters (tab and line breaks may)",
            field="metadata",
        )
    return dict(metadata)


def outcome(call: object) -> object:
    """What a call answers, or the error it raises as (type, message, field, reason)."""
    assert callable(call)
    try:
        return call()
    except BillingError as error:
        return (type(error), error.message, error.field, error.reason)


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)
metadata = st.dictionaries(texts, texts, max_size=20) | st.dictionaries(
    st.text("abcdefghij", min_size=1, max_size=8), st.text(max_size=400), max_size=4
)
quantities = st.one_of(
    st.sampled_from(["1", "1.0", "001.500", "0", "1000000000000", "0.000001", "2.5000000"]),
    st.decimals(min_value=0, max_value=10**12, places=6, allow_nan=False).map(str),
    st.text("0123456789.-e ", max_size=45),
)
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
timestamps = st.none() | st.integers(0, (NOW - _EARLIEST) // timedelta(microseconds=1)).map(
    lambda micros: _EARLIEST + timedelta(microseconds=micros)
)


@given(metadata)
@example({"a": "x\x1fb\x1ey"})
@example({"": "x"})
@example({"k\x00": "v"})
@example({"k": "é" * 600})
@example({f"k{n}": "v" for n in range(17)})
def test_metadata_checks_answer_as_released(values: dict[str, str]) -> None:
    assert outcome(lambda: validate_metadata(values)) == outcome(
        lambda: released_validate_metadata(values)
    )


@given(quantities, timestamps, metadata, st.sampled_from(list(UsageType)))
def test_events_answer_as_released(
    quantity: str,
    timestamp: datetime | None,
    values: dict[str, str],
    usage_type: UsageType,
) -> None:
    def validated() -> object:
        event = new_usage_event(
            organization_id=ORG,
            usage_type=usage_type,
            quantity=quantity,
            timestamp=timestamp,
            idempotency_key="k",
            metadata=values,
            now=NOW,
        )
        return (event.quantity, event.metadata, event.fingerprint)

    def released() -> object:
        event = new_usage_event(
            organization_id=ORG,
            usage_type=usage_type,
            quantity=quantity,
            timestamp=timestamp,
            idempotency_key="k",
            metadata=values,
            now=NOW,
        )
        digest = released_fingerprint(
            ORG, usage_type, event.quantity, timestamp, released_validate_metadata(values)
        )
        return (event.quantity, event.metadata, digest)

    assert outcome(validated) == outcome(released)


@given(metadata, timestamps)
def test_payload_fingerprint_is_the_released_digest(
    values: dict[str, str], timestamp: datetime | None
) -> None:
    quantity = Decimal("2.5")
    assert payload_fingerprint(
        ORG, UsageType.JOB_EXECUTION, quantity, timestamp, values
    ) == released_fingerprint(ORG, UsageType.JOB_EXECUTION, quantity, timestamp, values)


def test_a_timestamp_with_microseconds_keeps_them_in_the_digest() -> None:
    at = NOW - timedelta(microseconds=1)
    assert payload_fingerprint(ORG, UsageType.STORAGE, Decimal(1), at, {}) == released_fingerprint(
        ORG, UsageType.STORAGE, Decimal(1), at, {}
    )
