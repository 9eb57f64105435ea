"""Decimal parsing: plain strings only, exact, within the bounds a field sets."""

from __future__ import annotations

from decimal import Decimal

import pytest

from taskforge_common.decimals import format_decimal, parse_decimal
from taskforge_common.errors import InvalidArgument


@pytest.mark.parametrize("text", ["", " ", "NaN", "Infinity", "1e3", "1_000", "0x10", "1.", ".5"])
def test_only_plain_decimals_parse(text: str) -> None:
    with pytest.raises(InvalidArgument, match="amount"):
        parse_decimal(text, "amount")


def test_parse_limits_and_signs() -> None:
    assert parse_decimal("-1.25", "amount", allow_negative=True) == Decimal("-1.25")
    with pytest.raises(InvalidArgument, match="negative"):
        parse_decimal("-1", "amount")
    with pytest.raises(InvalidArgument, match="decimal places"):
        parse_decimal("0.001", "amount", max_places=2)
    assert parse_decimal("0.100", "amount", max_places=1) == Decimal("0.1")
    with pytest.raises(InvalidArgument, match="at most"):
        parse_decimal("10.01", "amount", max_value=Decimal(10))


@pytest.mark.parametrize(
    ("number", "text"), [("38.50", "38.50"), ("1E+3", "1000"), ("1E-7", "0.0000001")]
)
def test_the_wire_form_is_plain_and_keeps_trailing_zeros(number: str, text: str) -> None:
    assert format_decimal(Decimal(number)) == text
