"""Money: an exact amount in one currency, rounded by one function to that currency's minor unit.

Arithmetic is exact whatever the size of the operands: sums and products run in a context with
unbounded precision that traps any inexact result, so no digit is lost to the default context's 28
significant digits. Only `round_money` rounds, half up, to the currency's minor unit (SPEC §4).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from types import MappingProxyType

from taskforge_common.decimals import decimal_places, format_decimal, parse_decimal
from taskforge_common.errors import InvalidArgument

# ISO 4217 minor units of the currencies the suite bills in; another is one line here.
MINOR_UNITS: Mapping[str, int] = MappingProxyType(
    {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}
)
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
# An amount is at most this many digits either side of the point. Exact arithmetic allocates
# every digit, so Decimal("1E+999999999") + 1 would exhaust memory; billing never comes near.
_MAX_INTEGER_DIGITS = 60
_MAX_PLACES = 120

# Exact arithmetic for money and quantities: unbounded precision, any inexact result trapped.
# Rating and totals run their sums and products in it (`decimal.localcontext(EXACT)`).
EXACT = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, Inexact, Overflow, DivisionByZero],
)
_ROUNDING = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    rounding=ROUND_HALF_UP,
    traps=[InvalidOperation, Overflow],
)


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined or compared."""


def minor_units(currency: str) -> int:
    """Decimal places of `currency` (ISO 4217); ValueError for a malformed or unknown code."""
    if not isinstance(currency, str) or not _CURRENCY_CODE.fullmatch(currency):
        raise ValueError(f"a currency code is 3 upper-case letters, got {currency!r}")
    places = MINOR_UNITS.get(currency)
    if places is None:
        raise ValueError(f"unsupported currency {currency!r}")
    return places


def round_money(amount: Decimal, currency: str = "USD") -> Decimal:
    """Round half up to the minor unit of `currency` (SPEC §4): every money rounding goes here.

    Exact for any finite amount: the quantize runs with unbounded precision, so it never fails
    or rounds twice because the amount has more digits than a context's precision. A result of
    zero is unsigned."""
    places = minor_units(currency)
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"cannot round {amount!r}: money is a finite Decimal")
    rounded = _ROUNDING.quantize(amount, Decimal((0, (1,), -places)))
    return rounded if rounded else rounded.copy_abs()  # never "-0.00" on an invoice


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency. Amounts of different currencies are never added, subtracted or
    ordered (CurrencyMismatch); `==` between them is simply False. Results are exact and
    unrounded until `rounded()`."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        minor_units(self.currency)
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise ValueError(f"a money amount is a finite Decimal, got {self.amount!r}")
        exponent = self.amount.as_tuple().exponent
        assert isinstance(exponent, int), "finite decimals have an integer exponent"
        if -exponent > _MAX_PLACES or (
            self.amount and self.amount.adjusted() >= _MAX_INTEGER_DIGITS
        ):
            raise ValueError(f"money amount {self.amount} is out of range")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal((0, (0,), -minor_units(currency))), currency)

    def _check(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"Money cannot be combined with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot mix {self.currency} and {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(EXACT.add(self.amount, self._check(other).amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(EXACT.subtract(self.amount, self._check(other).amount), self.currency)

    def __neg__(self) -> Money:
        return Money(EXACT.minus(self.amount), self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        # bool is an int, and float is what money must never meet.
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            raise TypeError(f"Money is multiplied by a Decimal, not {type(factor).__name__}")
        return Money(EXACT.multiply(self.amount, Decimal(factor)), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._check(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._check(other).amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._check(other).amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._check(other).amount

    def rounded(self) -> Money:
        return Money(round_money(self.amount, self.currency), self.currency)

    @property
    def is_rounded(self) -> bool:
        """No digit below the currency's minor unit (trailing zeros do not count)."""
        return decimal_places(self.amount) <= minor_units(self.currency)

    def __str__(self) -> str:
        """Plain decimal with exactly the currency's places ("38.50", "1200" for JPY). An
        unrounded amount keeps all its digits: a string never hides a fraction of a cent."""
        if self.is_rounded:
            return format_decimal(round_money(self.amount, self.currency))
        return format_decimal(self.amount)


def sum_money(amounts: Iterable[Money], currency: str) -> Money:
    """The exact sum; `currency` names the result's currency when `amounts` is empty."""
    total = Money.zero(currency)
    for amount in amounts:
        total += amount
    return total


def parse_money(
    text: str,
    field: str,
    currency: str,
    *,
    allow_negative: bool = False,
    max_value: Decimal | None = None,
) -> Money:
    """Parse a request's money string (SPEC §11): exact, at most the currency's minor unit of
    places. Any defect, an unknown currency included, is InvalidArgument naming `field`."""
    try:
        places = minor_units(currency)
    except ValueError as error:
        raise InvalidArgument(f"{field}: {error}", field=field) from None
    amount = parse_decimal(
        text, field, max_places=places, max_value=max_value, allow_negative=allow_negative
    )
    return Money(round_money(amount, currency), currency)
