"""Money: the one place that rounds and converts (DESIGN.md §3: Decimal in code, integer minor
units in the database, ROUND_HALF_UP to the fen for each tax line, never a float)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradewindow.platform.money import (
    CNY,
    FEN,
    Money,
    fen,
    format_amount,
    from_minor_units,
    minor_unit_exponent,
    parse_decimal,
    round_money,
    to_minor_units,
)

amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False,
                      allow_infinity=False, places=6)
minor_units = st.integers(min_value=-(10**15), max_value=10**15)
currencies = st.sampled_from(["CNY", "USD", "EUR", "JPY", "KRW", "KWD", "BHD"])


# --- rounding to the fen -------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "expected"), [
    ("0.005", "0.01"), ("0.004", "0.00"), ("1.015", "1.02"), ("2.675", "2.68"),
    ("-0.005", "-0.01"), ("-1.015", "-1.02"), ("53846.245", "53846.25"), ("10", "10.00"),
])
def test_fen_rounds_half_up_away_from_zero(amount, expected):
    assert fen(Decimal(amount)) == Decimal(expected)
    assert str(fen(Decimal(amount))) == expected


@given(amounts)
def test_fen_is_within_half_a_fen_and_a_half_fen_goes_up(amount):
    rounded = fen(amount)
    assert rounded.as_tuple().exponent == -2
    difference = abs(rounded - amount)
    assert difference <= FEN / 2
    if difference == FEN / 2:           # exactly half way: away from zero
        assert abs(rounded) > abs(amount)


@given(amounts)
def test_fen_is_idempotent_and_agrees_with_round_money_in_cny(amount):
    assert fen(fen(amount)) == fen(amount)
    assert round_money(amount, CNY) == fen(amount)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_an_amount_exactly_between_two_fen_rounds_up_in_magnitude(cents):
    half_way = Decimal(cents).scaleb(-2) + Decimal("0.005") * (1 if cents >= 0 else -1)
    expected = Decimal(cents + (1 if cents >= 0 else -1)).scaleb(-2)
    assert fen(half_way) == expected


# --- minor units ---------------------------------------------------------------------------------

def test_minor_unit_exponents_follow_iso_4217():
    assert minor_unit_exponent("CNY") == 2
    assert minor_unit_exponent("JPY") == 0
    assert minor_unit_exponent("KWD") == 3


@pytest.mark.parametrize(("amount", "currency", "units"), [
    ("12.34", "CNY", 1234), ("-0.01", "CNY", -1), ("1500", "JPY", 1500), ("1.234", "KWD", 1234),
    ("0", "CNY", 0), ("12.340", "CNY", 1234), ("7", "KWD", 7000),
])
def test_to_minor_units_converts_whole_minor_units(amount, currency, units):
    assert to_minor_units(Decimal(amount), currency) == units
    assert from_minor_units(units, currency) == Decimal(amount)


@given(minor_units, currencies)
def test_minor_units_round_trip(units, currency):
    amount = from_minor_units(units, currency)
    assert amount.as_tuple().exponent == -minor_unit_exponent(currency)
    assert to_minor_units(amount, currency) == units
    assert isinstance(to_minor_units(amount, currency), int)


@given(amounts, currencies)
def test_any_rounded_amount_is_storable_and_comes_back_unchanged(amount, currency):
    rounded = round_money(amount, currency)
    assert from_minor_units(to_minor_units(rounded, currency), currency) == rounded


@pytest.mark.parametrize(("amount", "currency"), [
    ("0.001", "CNY"), ("12.345", "CNY"), ("1.5", "JPY"), ("0.0001", "KWD"), ("-0.005", "CNY"),
])
def test_to_minor_units_refuses_an_amount_finer_than_the_minor_unit(amount, currency):
    with pytest.raises(ValueError, match="whole number of minor units"):
        to_minor_units(Decimal(amount), currency)


def test_format_amount_gives_the_currency_decimals():
    assert format_amount(Decimal("53846.245")) == "53846.25"
    assert format_amount(Decimal("1500.4"), "JPY") == "1500"
    assert format_amount(Decimal("1.2"), "KWD") == "1.200"


# --- parsing -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("12.34", Decimal("12.34")), (" 7 ", Decimal("7")), ("-0.5", Decimal("-0.5")), (12, Decimal(12)),
    ("1e3", Decimal("1000")), (Decimal("3.14"), Decimal("3.14")),
])
def test_parse_decimal_accepts_strings_and_exact_numbers(text, expected):
    assert parse_decimal(text) == expected


@pytest.mark.parametrize("text", [
    1.5, 0.1, float("nan"), float("inf"), True, False, "NaN", "nan", "sNaN", "Infinity", "-inf",
    "", "   ", "abc", "1,000.00", "12.3.4", None, [], {}, "0x10",
])
def test_parse_decimal_refuses_floats_non_finite_values_and_garbage(text):
    assert parse_decimal(text) is None


@given(st.floats())
def test_parse_decimal_never_accepts_a_float(value):
    assert parse_decimal(value) is None


@given(amounts)
def test_parse_decimal_reads_back_what_str_writes(amount):
    assert parse_decimal(str(amount)) == amount


# --- Money ---------------------------------------------------------------------------------------

def test_money_adds_and_subtracts_in_one_currency():
    total = Money(Decimal("10.05")) + Money(Decimal("0.95"))
    assert total == Money(Decimal("11.00"), CNY)
    assert Money(Decimal("5"), "USD") - Money(Decimal("7.5"), "USD") == Money(Decimal("-2.5"), "USD")


@pytest.mark.parametrize("operation", [lambda a, b: a + b, lambda a, b: a - b])
def test_money_refuses_to_combine_currencies(operation):
    with pytest.raises(ValueError, match="cannot combine CNY with USD"):
        operation(Money(Decimal("1")), Money(Decimal("1"), "USD"))


def test_money_refuses_a_float_amount():
    with pytest.raises(TypeError):
        Money(1.5)  # type: ignore[arg-type]


def test_money_rounds_stores_and_prints_in_its_currency():
    assert Money(Decimal("1.005")).rounded() == Money(Decimal("1.01"))
    assert Money(Decimal("1.2345"), "KWD").rounded().minor_units() == 1235
    assert Money.from_minor_units(1500, "JPY") == Money(Decimal("1500"), "JPY")
    assert str(Money(Decimal("53846.245"))) == "53846.25 CNY"
    with pytest.raises(ValueError):
        Money(Decimal("1.005")).minor_units()


@given(minor_units, minor_units, currencies)
def test_money_addition_agrees_with_minor_unit_addition(a, b, currency):
    total = Money.from_minor_units(a, currency) + Money.from_minor_units(b, currency)
    assert total.minor_units() == a + b
