"""Decimal parsing and the one rounding function for money.

Decimals travel as plain strings ("38.50", "0.00001"); floats never appear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from taskforge_common.errors import InvalidArgument

CENT = Decimal("0.01")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def round_money(amount: Decimal) -> Decimal:
    """Round to whole cents, half up (SPEC §4). Every money rounding goes through here."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_decimal(
    value: str,
    field: str,
    *,
    max_places: int | None = None,
    max_value: Decimal | None = None,
    allow_negative: bool = False,
) -> Decimal:
    """Parse a plain decimal string, answering InvalidArgument that names `field` on any defect."""
    text = value.strip()
    if not text:
        raise InvalidArgument(f"{field} is required")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise InvalidArgument(f"{field} must be a plain decimal string like '12.5', got {value!r}")
    number = Decimal(text)
    if not allow_negative and number < 0:
        raise InvalidArgument(f"{field} must not be negative, got {value!r}")
    if max_places is not None and decimal_places(number) > max_places:
        raise InvalidArgument(f"{field} has more than {max_places} decimal places: {value!r}")
    if max_value is not None and abs(number) > max_value:
        raise InvalidArgument(f"{field} must be at most {max_value:f}, got {value!r}")
    return number


def decimal_places(number: Decimal) -> int:
    """Significant decimal places: trailing zeros do not count ("1.500" has 1)."""
    exponent = number.normalize().as_tuple().exponent
    assert isinstance(exponent, int), "finite decimals have an integer exponent"
    return max(0, -exponent)


def format_decimal(number: Decimal) -> str:
    """The wire form: plain notation, no exponent, trailing zeros kept as the value carries them."""
    return f"{number:f}"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency; arithmetic across currencies is refused."""

    amount: Decimal
    currency: str

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def rounded(self) -> Money:
        return Money(round_money(self.amount), self.currency)
