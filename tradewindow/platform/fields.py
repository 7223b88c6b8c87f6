"""Reading a JSON object received at the edge, collecting every problem instead of stopping at
the first (a filing that fails is answered with all its errors at once). Pure.

    problems = Problems()
    fields = FieldReader(raw, "items[0]", problems)
    fields.refuse_unknown(ITEM_FIELDS)
    value = fields.amount("value", required=True, positive=True)
    ...
    problems.raise_if_any()
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from tradewindow.platform.errors import Problems
from tradewindow.platform.money import parse_decimal

ONE = Decimal(1)
# Every amount and quantity is stored as a 64-bit integer of its smallest unit (fen, a thousandth
# of a kilogram), and totals add many of them: a figure of a quadrillion or more is a typing or
# encoding error ("1e30"), refused here so that it can neither overflow a column nor make Decimal
# arithmetic (28 digits) raise far from the edge.
MAX_AMOUNT = Decimal(10) ** 15


class FieldReader:
    """Reads one JSON object, adding a problem for each bad field instead of stopping."""

    def __init__(self, raw: Mapping[str, object], path: str, problems: Problems) -> None:
        self.raw = raw
        self.base = path
        self.problems = problems

    def path(self, name: str) -> str:
        return f"{self.base}.{name}" if self.base else name

    def given(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def add(self, name: str, code: str, message: str) -> None:
        self.problems.add(self.path(name) if name else self.base, code, message)

    def refuse_unknown(self, allowed: frozenset[str]) -> None:
        for name in sorted(set(self.raw) - allowed):
            self.add(name, "unknown_field", f"{name!r} is not a field of this object.")

    def text(self, name: str, *, required: bool = False, max_length: int | None = None) -> str | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                self.add(name, "required", f"{name} is required.")
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(name, "not_a_string", f"{name} must be a non-empty string.")
            return None
        if max_length is not None and len(value.strip()) > max_length:
            self.add(name, "too_long", f"{name} has at most {max_length} characters.")
            return None
        return value.strip()

    def choice(self, name: str, choices: frozenset[str] | set[str], *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        if value is not None and value not in choices:
            self.add(name, "invalid_choice", f"{name} is one of: {', '.join(sorted(choices))}.")
            return None
        return value

    def amount(self, name: str, *, required: bool = False, positive: bool = False) -> Decimal | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                self.add(name, "required", f"{name} is required.")
            return None
        number = parse_decimal(value)
        if number is None:
            self.add(name, "not_a_number",
                     f"{name} must be a decimal number written as a string, like \"12.50\".")
            return None
        if number < 0:
            self.add(name, "negative_amount", f"{name} must not be negative.")
            return None
        if number >= MAX_AMOUNT:
            self.add(name, "too_large", f"{name} must be less than 1,000,000,000,000,000.")
            return None
        if positive and number == 0:
            self.add(name, "not_positive", f"{name} must be greater than zero.")
            return None
        return number.copy_abs()    # "-0" is zero, not a negative zero printed as "-0.00"

    def rate(self, name: str, *, below_one: bool = False) -> Decimal | None:
        number = self.amount(name)
        if number is not None and (number > ONE or (below_one and number == ONE)):
            limit = "below 1" if below_one else "between 0 and 1"
            self.add(name, "rate_out_of_range",
                     f"{name} is a fraction {limit} (0.13 means 13 %).")
            return None
        return number

    def day(self, name: str, *, required: bool = False) -> date | None:
        text = self.text(name, required=required)
        if text is None:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.add(name, "invalid_date", f"{name} is a date written YYYY-MM-DD.")
            return None

    def obj(self, name: str, *, required: bool = False) -> Mapping[str, object] | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                self.add(name, "required", f"{name} is required.")
            return None
        if not isinstance(value, Mapping):
            self.add(name, "not_an_object", f"{name} must be an object.")
            return None
        return value

    def items(self, name: str, *, required: bool = False, max_items: int = 1000) -> list[object] | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                self.add(name, "required", f"{name} is required.")
            return None
        if not isinstance(value, list):
            self.add(name, "not_a_list", f"{name} must be a list.")
            return None
        if required and not value:
            self.add(name, "empty", f"{name} must not be empty.")
            return None
        if len(value) > max_items:
            self.add(name, "too_many", f"{name} has at most {max_items} entries.")
            return None
        return value
