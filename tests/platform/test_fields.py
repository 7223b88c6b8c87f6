"""Reading fields at the edge: every bad value is a problem with its field's path, never an
exception from deeper down, and an amount is one the system can store."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradewindow.platform.errors import Problems
from tradewindow.platform.fields import MAX_AMOUNT, FieldReader


def _amount(value: object, positive: bool = False) -> tuple[Decimal | None, list[tuple[str, str]]]:
    problems = Problems()
    number = FieldReader({"value": value}, "items[0]", problems).amount("value", positive=positive)
    return number, [(p.path, p.code) for p in problems.items]


def test_an_amount_of_a_quadrillion_or_more_is_refused_as_too_large():
    for written in ("1e30", "1E+15", "1000000000000000", "9" * 40, "1000000000000000.00"):
        assert _amount(written) == (None, [("items[0].value", "too_large")]), written
    assert _amount("999999999999999.99") == (Decimal("999999999999999.99"), [])


def test_a_negative_zero_is_read_as_zero():
    number, problems = _amount("-0.00")
    assert problems == [] and number == 0 and not number.is_signed() and str(number) == "0.00"


@settings(max_examples=400, deadline=None)
@given(value=st.text(max_size=40) | st.decimals(allow_nan=True, allow_infinity=True).map(str)
       | st.integers().map(str) | st.floats() | st.integers(), positive=st.booleans())
def test_any_value_is_an_amount_the_database_can_store_or_one_problem(value, positive):
    number, problems = _amount(value, positive)
    if number is None:
        assert len(problems) == 1 and problems[0][0] == "items[0].value"
    else:
        assert problems == [] and 0 <= number < MAX_AMOUNT and not number.is_signed()
        assert number > 0 or not positive
        # Its fen fit a 64-bit column, with room for dozens of the largest added up.
        assert int(number.scaleb(2)) < 2**63 // 64
