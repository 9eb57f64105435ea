"""Money: per-currency precision, the one rounding function checked against integer arithmetic,
exact sums, and currencies that never mix."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskforge_common.errors import InvalidArgument
from taskforge_common.money import (
    MINOR_UNITS,
    CurrencyMismatch,
    Money,
    minor_units,
    parse_money,
    round_money,
    sum_money,
)

currencies = st.sampled_from(sorted(MINOR_UNITS))
# Finite decimals far beyond the default context's 28 digits, often exactly half-way between two
# minor units (a last digit 5 just below a currency's minor unit).
amounts = st.builds(
    lambda sign, coefficient, exponent: Decimal(
        (sign, tuple(map(int, str(coefficient))), exponent)
    ),
    st.integers(0, 1),
    st.one_of(st.integers(0, 10**45), st.integers(0, 10**40).map(lambda n: n * 10 + 5)),
    st.one_of(st.integers(-40, 5), st.integers(-4, -1)),
)


def units_of(amount: Decimal, places: int) -> int:
    """|amount| as an integer count of 10**-places (exact, no decimal context involved)."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    assert exponent + places >= 0
    coefficient: int = int("".join(map(str, digits))) * 10 ** (exponent + places)
    return coefficient


def signed_units(amount: Decimal, places: int) -> int:
    return -units_of(amount, places) if amount.is_signed() else units_of(amount, places)


def half_up(amount: Decimal, places: int) -> tuple[int, int]:
    """`amount` rounded half up to `places`, as (sign, integer count of minor units), computed
    from the digits with integers alone."""
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exponent + places  # the coefficient counts units of 10**-places times 10**shift
    if shift >= 0:
        units = coefficient * 10**shift
    else:
        units, remainder = divmod(coefficient, 10**-shift)
        if 2 * remainder >= 10**-shift:
            units += 1
    return sign if units else 0, units


@given(amounts, currencies)
def test_rounding_is_half_up_to_the_minor_unit_exactly(amount: Decimal, currency: str) -> None:
    places = minor_units(currency)
    rounded = round_money(amount, currency)
    assert rounded.as_tuple().exponent == -places
    sign, units = half_up(amount, places)
    assert (rounded.is_signed(), units_of(rounded, places)) == (bool(sign), units)


@given(amounts, currencies)
def test_rounding_ignores_the_decimal_context(amount: Decimal, currency: str) -> None:
    with localcontext() as context:
        context.prec = 3
        in_context = round_money(amount, currency)
    assert in_context.as_tuple() == round_money(amount, currency).as_tuple()


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("35.005", "USD", "35.01"),
        ("35.004999", "USD", "35.00"),
        ("-0.005", "USD", "-0.01"),
        ("-0.004", "USD", "0.00"),
        ("3.5", "EUR", "3.50"),
        ("1199.5", "JPY", "1200"),
        ("0.0005", "KWD", "0.001"),
        ("12345678901234567890123456789.005", "USD", "12345678901234567890123456789.01"),
    ],
)
def test_rounding_examples(amount: str, currency: str, rounded: str) -> None:
    result = Money(Decimal(amount), currency).rounded()
    assert str(result) == rounded
    assert result.is_rounded


def test_the_proration_example_of_the_spec() -> None:
    fraction = Decimal(1339200) / Decimal(2678400)
    amount = (Money(Decimal(99), "USD") - Money(Decimal(29), "USD")) * fraction
    tax = (amount.rounded() * Decimal("0.10")).rounded()
    assert [str(m) for m in (amount.rounded(), tax, amount.rounded() + tax)] == [
        "35.00",
        "3.50",
        "38.50",
    ]


@given(st.lists(amounts, max_size=30), currencies)
def test_sums_are_exact(values: list[Decimal], currency: str) -> None:
    total = sum_money((Money(value, currency) for value in values), currency)
    # every generated amount is a whole number of 10**-40
    assert signed_units(total.amount, 40) == sum(signed_units(value, 40) for value in values)
    assert total.currency == currency


@given(st.lists(amounts.map(lambda a: round_money(a, "USD")), max_size=30))
def test_a_sum_of_rounded_amounts_loses_no_cent(values: list[Decimal]) -> None:
    total = sum_money((Money(value, "USD") for value in values), "USD")
    assert total.is_rounded
    assert signed_units(total.amount, 2) == sum(signed_units(value, 2) for value in values)


@given(amounts, currencies, currencies)
def test_currencies_never_mix(amount: Decimal, first: str, second: str) -> None:
    left, right = Money(amount, first), Money(amount, second)
    if first == second:
        assert left - right == Money.zero(first)
        assert left <= right
        return
    assert left != right
    for combine in (
        lambda: left + right,
        lambda: left - right,
        lambda: left < right,
        lambda: left <= right,
        lambda: left > right,
        lambda: left >= right,
        lambda: sum_money([left, right], first),
    ):
        with pytest.raises(CurrencyMismatch, match=f"cannot mix {first} and {second}"):
            combine()


def test_arithmetic() -> None:
    total = Money(Decimal("29.00"), "USD") + Money(Decimal("0.005"), "USD")
    assert not total.is_rounded
    assert str(total) == "29.005"  # an unrounded amount is shown whole
    assert total.rounded() == Money(Decimal("29.01"), "USD")
    assert -total == Money(Decimal("-29.005"), "USD")
    assert 3 * Money(Decimal("0.10"), "EUR") == Money(Decimal("0.30"), "EUR")
    assert Money(Decimal("0.10"), "EUR") * Decimal("0.5") == Money(Decimal("0.05"), "EUR")
    assert str(Money.zero("BHD")) == "0.000"
    assert str(Money(Decimal("38.5"), "USD")) == "38.50"
    assert Money(Decimal("1.0"), "USD") == Money(Decimal("1.00"), "USD")
    assert max(Money(Decimal(1), "USD"), Money(Decimal(2), "USD")).amount == 2
    assert sum_money([], "JPY") == Money.zero("JPY")


@pytest.mark.parametrize("factor", [0.5, True, "2", None])
def test_money_is_multiplied_by_decimals_only(factor: object) -> None:
    with pytest.raises(TypeError, match="multiplied by a Decimal"):
        _ = Money(Decimal(1), "USD") * factor  # type: ignore[operator]


def test_money_is_combined_with_money_only() -> None:
    with pytest.raises(TypeError, match="cannot be combined"):
        _ = Money(Decimal(1), "USD") + Decimal(1)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        (Decimal(1), "usd", "3 upper-case letters"),
        (Decimal(1), "US", "3 upper-case letters"),
        (Decimal(1), "XYZ", "unsupported currency"),
        (Decimal("NaN"), "USD", "finite Decimal"),
        (Decimal("Infinity"), "USD", "finite Decimal"),
        (1.5, "USD", "finite Decimal"),
        (Decimal("1E+999999"), "USD", "out of range"),
        (Decimal("0E-999999"), "USD", "out of range"),
    ],
)
def test_invalid_money_is_refused(amount: object, currency: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Money(amount, currency)  # type: ignore[arg-type]


def test_round_money_refuses_unknown_currencies_and_non_finite_amounts() -> None:
    with pytest.raises(ValueError, match="unsupported currency"):
        round_money(Decimal(1), "ABC")
    with pytest.raises(ValueError, match="finite Decimal"):
        round_money(Decimal("NaN"))


def test_parse_money_allows_the_currency_s_places_only() -> None:
    assert str(parse_money("38.5", "amount", "USD")) == "38.50"
    assert str(parse_money("1200", "amount", "JPY")) == "1200"
    assert str(parse_money("1.250", "amount", "KWD")) == "1.250"
    assert parse_money("-2", "amount", "USD", allow_negative=True) == Money(Decimal(-2), "USD")
    with pytest.raises(InvalidArgument, match="more than 2 decimal places"):
        parse_money("0.001", "amount", "USD")
    with pytest.raises(InvalidArgument, match="more than 0 decimal places"):
        parse_money("1.5", "amount", "JPY")
    with pytest.raises(InvalidArgument, match="negative"):
        parse_money("-1", "amount", "USD")
    with pytest.raises(InvalidArgument, match="at most 100"):
        parse_money("100.01", "amount", "USD", max_value=Decimal(100))
    with pytest.raises(InvalidArgument, match="unsupported currency") as refused:
        parse_money("1", "amount", "XYZ")
    assert refused.value.field == "amount"
