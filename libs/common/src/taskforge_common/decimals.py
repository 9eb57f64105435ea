"""Decimal parsing and formatting, exact whatever the length; money itself is in `money`.

Decimals travel as plain strings ("38.50", "0.00001"); floats never appear.
"""

from __future__ import annotations

import re
from decimal import Decimal

from taskforge_common.errors import InvalidArgument

# SPEC §11: every decimal string of every field is at most this long.
MAX_DECIMAL_LENGTH = 40
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def parse_decimal(
    value: str,
    field: str,
    *,
    max_places: int | None = None,
    max_value: Decimal | None = None,
    allow_negative: bool = False,
) -> Decimal:
    """Parse a plain decimal string, answering InvalidArgument that names `field` on any defect.

    Exact whatever its length: the text is checked and converted without a rounding context
    (`Decimal(text)` is exact; comparisons are exact), so nothing is silently rounded."""
    if len(value) > MAX_DECIMAL_LENGTH:
        raise InvalidArgument(
            f"{field} is longer than {MAX_DECIMAL_LENGTH} characters", field=field
        )
    text = value.strip()
    if not text:
        raise InvalidArgument(f"{field} is required", field=field)
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise InvalidArgument(
            f"{field} must be a plain decimal string like '12.5', got {value!r}", field=field
        )
    number = canonical(Decimal(text))
    if not allow_negative and number < 0:
        raise InvalidArgument(f"{field} must not be negative, got {value!r}", field=field)
    if max_places is not None and decimal_places(number) > max_places:
        raise InvalidArgument(
            f"{field} has more than {max_places} decimal places: {value!r}", field=field
        )
    if max_value is not None and abs(number) > max_value:
        raise InvalidArgument(f"{field} must be at most {max_value:f}, got {value!r}", field=field)
    return number


def canonical(number: Decimal) -> Decimal:
    """The same value without trailing fractional zeros or a positive exponent ("2.500" → 2.5,
    1E+2 → 100, -0 → 0). Built from the digits, not with `normalize()`, which rounds to the
    context's precision (28 digits by default)."""
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{number} is not a finite decimal")
    if not any(digits):
        return Decimal(0)
    if exponent > 0:
        digits, exponent = digits + (0,) * exponent, 0
    kept = len(digits)
    while exponent < 0 and digits[kept - 1] == 0:
        kept -= 1
        exponent += 1
    return Decimal((sign, digits[:kept], exponent))


def decimal_places(number: Decimal) -> int:
    """Significant decimal places: trailing zeros do not count ("1.500" has 1)."""
    exponent = canonical(number).as_tuple().exponent
    assert isinstance(exponent, int), "canonical decimals are finite"
    return max(0, -exponent)


def format_decimal(number: Decimal) -> str:
    """The wire form: plain notation, no exponent, trailing zeros kept as the value carries them."""
    return f"{number:f}"
