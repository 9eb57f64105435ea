"""Decimal parsing, the one money rounding function and currency-checked Money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from taskforge_common.decimals import Money, format_decimal, parse_decimal, round_money
from taskforge_common.errors import InvalidArgument


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [("35.005", "35.01"), ("35.004999", "35.00"), ("-0.005", "-0.01"), ("3.5", "3.50")],
)
def test_money_rounds_half_up_to_cents(amount: str, rounded: str) -> None:
    result = round_money(Decimal(amount))
    assert result == Decimal(rounded)
    assert format_decimal(result) == rounded


def test_the_proration_example_of_the_spec() -> None:
    fraction = Decimal(1339200) / Decimal(2678400)
    amount = round_money((Decimal(99) - Decimal(29)) * fraction)
    tax = round_money(amount * Decimal("0.10"))
    assert (amount, tax, amount + tax) == (Decimal("35.00"), Decimal("3.50"), Decimal("38.50"))


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


def test_money_refuses_mixed_currencies() -> None:
    total = Money(Decimal("29.00"), "USD") + Money(Decimal("0.005"), "USD")
    assert total.rounded() == Money(Decimal("29.01"), "USD")
    assert (total - Money(Decimal("29"), "USD")).amount == Decimal("0.005")
    with pytest.raises(ValueError, match="cannot mix USD and EUR"):
        _ = Money(Decimal(1), "USD") + Money(Decimal(1), "EUR")
