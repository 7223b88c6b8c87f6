"""Money: Decimal in code, integer minor units (fen for CNY) in the database.

This module is the one place that converts and rounds. Every tax line is rounded half-up to the
fen (China customs convention), and the next line is computed from the rounded figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CNY = "CNY"
FEN = Decimal("0.01")

# ISO 4217 minor-unit exponents that differ from the usual two decimals.
_EXPONENT_EXCEPTIONS = {
    "JPY": 0, "KRW": 0, "VND": 0, "ISK": 0, "CLP": 0, "PYG": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}


def minor_unit_exponent(currency: str) -> int:
    return _EXPONENT_EXCEPTIONS.get(currency, 2)


def quantum(currency: str = CNY) -> Decimal:
    return Decimal(1).scaleb(-minor_unit_exponent(currency))


def fen(amount: Decimal) -> Decimal:
    """Round an amount of CNY half-up to the fen."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def round_money(amount: Decimal, currency: str = CNY) -> Decimal:
    """Round half-up to the currency's minor unit."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str = CNY) -> int:
    """Decimal amount -> integer minor units for storage. Refuses amounts finer than the minor
    unit: rounding must have happened, explicitly, in the domain."""
    scaled = amount.scaleb(minor_unit_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of minor units")
    return int(scaled)


def from_minor_units(units: int, currency: str = CNY) -> Decimal:
    return Decimal(units).scaleb(-minor_unit_exponent(currency)).quantize(quantum(currency))


def parse_decimal(text: object) -> Decimal | None:
    """A finite Decimal from a string or number, or None when it is not one.
    Floats are refused: they cannot carry an exact amount."""
    if isinstance(text, bool | float):
        return None
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def format_amount(amount: Decimal, currency: str = CNY) -> str:
    """Amounts leave the system as decimal strings with the currency's decimals ("53846.25")."""
    return str(round_money(amount, currency))


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str = CNY

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount must be a Decimal")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def rounded(self) -> Money:
        return Money(round_money(self.amount, self.currency), self.currency)

    def minor_units(self) -> int:
        return to_minor_units(self.amount, self.currency)

    @classmethod
    def from_minor_units(cls, units: int, currency: str = CNY) -> Money:
        return cls(from_minor_units(units, currency), currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __str__(self) -> str:
        return f"{format_amount(self.amount, self.currency)} {self.currency}"


def apportion(total: Decimal, weights: list[Decimal], currency: str = CNY) -> list[Decimal]:
    """Split `total` over `weights` in whole minor units, so the parts add up to the total
    exactly (largest remainder: the rounding left-overs go to the largest fractions, ties to the
    earlier share). Used to spread freight and insurance over a declaration's items by value."""
    if not weights:
        return []
    weight_sum = sum(weights, Decimal(0))
    units = to_minor_units(round_money(total, currency), currency)
    if weight_sum == 0:
        weights, weight_sum = [Decimal(1)] * len(weights), Decimal(len(weights))
    exact = [Decimal(units) * w / weight_sum for w in weights]
    floors = [int(e) for e in exact]
    left = units - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [from_minor_units(u, currency) for u in floors]
