"""The shared bounds of SPEC §11 (taskforge_common.validation, .decimals, .page_tokens), each on
both sides, and the exactness of decimal parsing whatever the rounding context."""

from __future__ import annotations

import base64
import decimal
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskforge_common.decimals import canonical, decimal_places, parse_decimal
from taskforge_common.errors import InvalidArgument
from taskforge_common.page_tokens import PageTokens
from taskforge_common.validation import (
    check_instant,
    check_key,
    duration_from_parts,
    instant_from_parts,
    parse_uuid,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Y2000 = 946_684_800  # 2000-01-01T00:00:00Z in seconds since the epoch
Y2100 = 4_102_444_800  # 2100-01-01T00:00:00Z
ID = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"


@pytest.mark.parametrize(
    ("seconds", "nanos", "accepted"),
    [
        (Y2000, 0, True),
        (Y2000 - 1, 999_999_999, False),
        (Y2100 - 1, 999_999_999, True),
        (Y2100, 0, False),
        (Y2000, -1, False),
        (Y2000, 1_000_000_000, False),
        (-62135596800, 0, False),  # 0001-01-01
        (253402300799, 999_999_999, False),  # 9999-12-31T23:59:59.999999999
        (INT64_MIN, 0, False),
        (INT64_MAX, 0, False),
    ],
)
def test_instants_are_bounded_before_any_conversion(
    seconds: int, nanos: int, accepted: bool
) -> None:
    if accepted:
        instant = instant_from_parts(seconds, nanos, "timestamp")
        assert instant.tzinfo is UTC
        assert datetime(2000, 1, 1, tzinfo=UTC) <= instant < datetime(2100, 1, 1, tzinfo=UTC)
    else:
        with pytest.raises(InvalidArgument) as refused:
            instant_from_parts(seconds, nanos, "event.timestamp")
        assert refused.value.field == "event.timestamp"


def test_an_instant_keeps_its_microseconds() -> None:
    assert instant_from_parts(Y2000, 123_456_789, "t") == datetime(
        2000, 1, 1, 0, 0, 0, 123456, tzinfo=UTC
    )


def test_datetimes_are_bounded_too() -> None:
    assert check_instant(datetime(2000, 1, 1, tzinfo=UTC), "t")
    with pytest.raises(InvalidArgument):
        check_instant(datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "t")
    with pytest.raises(InvalidArgument):
        check_instant(datetime(2100, 1, 1, tzinfo=UTC), "t")
    with pytest.raises(InvalidArgument, match="time zone"):
        check_instant(datetime(2026, 1, 1), "t")  # noqa: DTZ001 - naive on purpose


@pytest.mark.parametrize(
    ("seconds", "nanos", "expected"),
    [
        (1, 0, timedelta(seconds=1)),
        (0, 999_999_999, None),
        (30 * 86_400, 0, timedelta(days=30)),
        (30 * 86_400, 1, None),
        (-1, 0, None),
        (1, -1, None),  # mixed signs are not a Duration
        (0, 1_000_000_000, None),
        (10**15, 0, None),
        (INT64_MAX, 999_999_999, None),
        (INT64_MIN, -999_999_999, None),
    ],
)
def test_durations_run_from_one_second_to_thirty_days(
    seconds: int, nanos: int, expected: timedelta | None
) -> None:
    if expected is None:
        with pytest.raises(InvalidArgument):
            duration_from_parts(seconds, nanos, "ttl")
    else:
        assert duration_from_parts(seconds, nanos, "ttl") == expected


@pytest.mark.parametrize(
    "text",
    [
        ID.replace("-", ""),
        "{" + ID + "}",
        "urn:uuid:" + ID,
        ID.replace("-", "-" * 2, 1)[:36],
        ID[:-1] + "g",
        ID + " ",
        "x" * 1_000_000,
        "",
    ],
)
def test_identifiers_are_uuid_text_only(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_uuid(text, "organization_id")


def test_identifiers_answer_their_canonical_form() -> None:
    assert parse_uuid(ID.upper(), "organization_id") == ID


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        ("k" * 255, True),
        ("k" * 256, False),
        ("job 42/é", True),
        ("", False),
        ("   ", False),
        ("a\nb", False),
        ("a\x07", False),
        ("a\x7f", False),
        ("a\x00", False),
    ],
)
def test_keys_hold_1_to_255_printable_characters(key: str, accepted: bool) -> None:
    if accepted:
        assert check_key(key, "idempotency_key") == key
    else:
        with pytest.raises(InvalidArgument):
            check_key(key, "idempotency_key")


def test_decimals_of_40_characters_parse_and_41_do_not() -> None:
    forty = "1" * 33 + ".123456"
    assert len(forty) == 40
    assert parse_decimal(forty, "quantity") == Decimal(forty)
    with pytest.raises(InvalidArgument, match="longer than 40"):
        parse_decimal("1" + forty, "quantity")


@given(
    integer=st.text(alphabet="0123456789", min_size=1, max_size=20),
    fraction=st.text(alphabet="0123456789", max_size=18),
    precision=st.integers(min_value=1, max_value=28),
)
def test_decimal_parsing_never_depends_on_the_context(
    integer: str, fraction: str, precision: int
) -> None:
    """Under any context precision the parsed value is the text's exact value, and its decimal
    places are counted from the digits (the old code normalised, rounding to 28 digits)."""
    text = integer + ("." + fraction if fraction else "")
    significant = fraction.rstrip("0")
    with decimal.localcontext(prec=precision):
        parsed = parse_decimal(text, "quantity")
        places = decimal_places(parsed)
    assert parsed == Decimal(text)
    assert places == len(significant)
    assert str(canonical(parsed)) == str(parsed)


@pytest.mark.parametrize(
    ("spelling", "canonical_text"),
    [
        ("1", "1"),
        ("1.0", "1"),
        ("1.000000", "1"),
        ("01", "1"),
        ("0.000", "0"),
        ("-0", "0"),
        ("2.500", "2.5"),
        ("1E+2", "100"),
        ("100", "100"),
    ],
)
def test_equal_numbers_have_one_canonical_form(spelling: str, canonical_text: str) -> None:
    assert f"{canonical(Decimal(spelling)):f}" == canonical_text


def test_the_silently_rounded_quantity_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="decimal places"):
        parse_decimal("1.0000000000000000000000000001", "quantity", max_places=6)


TOKENS = PageTokens(b"sixteen bytes or more of key")


def test_page_tokens_round_trip_for_their_query_only() -> None:
    at = datetime(2026, 3, 1, 12, 30, 0, 123456, tzinfo=UTC)
    token = TOKENS.encode(at, ID, "org|jobs")
    assert TOKENS.decode(token, "org|jobs") == (at, ID)
    with pytest.raises(InvalidArgument, match="invalid page_token"):
        TOKENS.decode(token, "org|calls")


def test_page_tokens_of_another_key_are_refused() -> None:
    """Replicas share the key derived from the deployment's secret; another secret's tokens
    are refused."""
    token = PageTokens.from_secret("the secret of this deployment, long").encode(
        datetime(2026, 3, 1, tzinfo=UTC), ID, "q"
    )
    again = PageTokens.from_secret("the secret of this deployment, long")
    assert again.decode(token, "q")[1] == ID
    with pytest.raises(InvalidArgument):
        PageTokens.from_secret("the secret of another deployment").decode(token, "q")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        base64.urlsafe_b64encode(b"9999-12-31T23:59:59-23:59|x").decode(),
        base64.urlsafe_b64encode(bytes(41)).decode(),
        "=" * 56,
        "é" * 56,
        "\x00" * 56,
        "A" * 10_000,
    ],
)
def test_crafted_page_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid page_token") as refused:
        TOKENS.decode(token, "org|jobs")
    assert refused.value.field == "page_token"


def test_any_edit_of_a_page_token_is_refused() -> None:
    """Tamper-evident: flipping any bit of the cursor (instant, id) or of the MAC is refused."""
    token = TOKENS.encode(datetime(2026, 3, 1, tzinfo=UTC), ID, "q")
    raw = base64.urlsafe_b64decode(token)
    for position in range(len(raw)):
        for bit in (0x01, 0x80):
            edited = bytearray(raw)
            edited[position] ^= bit
            with pytest.raises(InvalidArgument):
                TOKENS.decode(base64.urlsafe_b64encode(bytes(edited)).decode(), "q")
