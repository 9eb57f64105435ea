"""A usage event's payload identity: what makes two events "the same payload" (SPEC §12)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from taskforge_common.errors import InvalidArgument
from taskforge_common.meters import UsageType
from taskforge_metering.domain.usage import UsageEvent, new_usage_event

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
NOW = datetime(2026, 3, 10, tzinfo=UTC)


def event(quantity: str = "1", **metadata: str) -> UsageEvent:
    return new_usage_event(
        organization_id=ORG,
        usage_type=UsageType.JOB_EXECUTION,
        quantity=quantity,
        timestamp=None,
        idempotency_key="k",
        metadata=metadata,
        now=NOW,
    )


def test_metadata_values_cannot_run_into_each_other() -> None:
    """The fingerprint joins parts with \\x1e and \\x1f: a value holding them could make
    {"a": "x\\x1fb\\x1ey"} the same payload as {"a": "x", "b": "y"}. They are refused."""
    with pytest.raises(InvalidArgument, match="control characters"):
        event(a="x\x1fb\x1ey")
    assert event(a="x", b="y").fingerprint != event(a="x").fingerprint


@pytest.mark.parametrize("value", ["\x00", "\x07", "\x1b[31m", "\x7f"])
def test_control_characters_in_metadata_values_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgument):
        event(note=value)


def test_tabs_and_line_breaks_in_metadata_values_are_kept() -> None:
    assert event(note="line one\nline two\ttab\r").metadata["note"].count("\n") == 1


@pytest.mark.parametrize("spelling", ["1", "1.0", "1.000000", "01", "001.000"])
def test_equal_quantities_spelled_differently_are_one_payload(spelling: str) -> None:
    assert event(spelling).fingerprint == event("1").fingerprint


@pytest.mark.parametrize(
    ("quantity", "timestamp", "metadata", "stored"),
    [
        (
            "100",
            datetime(2026, 3, 1, 12, tzinfo=UTC),
            {"queue": "default"},
            "8fac6b37a57cb545baa577510a892316dc5ec404b53472fa0afc70c7f00b37da",
        ),
        ("2.500", None, {}, "a0fa58d995c2be13a7c216a8af625f303a2010cebb2dfa18d5777843d7e703b8"),
    ],
)
def test_fingerprints_match_those_stored_by_earlier_releases(
    quantity: str, timestamp: datetime | None, metadata: dict[str, str], stored: str
) -> None:
    """A retry of an event stored before an upgrade must still be the same payload: these
    digests were computed by the release of 2026-11-25 (commit f5590b6)."""
    retried = new_usage_event(
        organization_id=ORG,
        usage_type=UsageType.JOB_EXECUTION,
        quantity=quantity,
        timestamp=timestamp,
        idempotency_key="k",
        metadata=metadata,
        now=NOW,
    )
    assert retried.fingerprint == stored
