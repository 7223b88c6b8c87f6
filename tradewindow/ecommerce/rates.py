"""The tariff as the e-commerce paths read it many times over: a tariff line's rates in force
computed once per day, and `model.quote_order` once per distinct request (never a second tax
formula: every quote is the quote engine's). Both live for one run or one batch, so a tariff
change is seen by the next one."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from tradewindow.ecommerce import model
from tradewindow.platform.errors import ValidationFailed
from tradewindow.tariff import model as tariff_model


class QuoteCache:
    """`model.quote_order` once per distinct request: the quote depends on the day, the customs
    value and the items' codes, quantities, prices and origins, and on nothing else of the order.
    Bounded: cleared when full."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self.quotes: dict[Any, Any] = {}
        self.hits = self.misses = 0

    def __call__(self, order: model.Order, on_date: date, lookup: Any) -> tariff_model.Quote:
        key = (on_date, order.customs_value,
               tuple((i.tariff_code, i.quantity, i.unit_price, i.origin) for i in order.items))
        found = self.quotes.get(key)
        if found is None:
            self.misses += 1
            if len(self.quotes) >= self.size:
                self.quotes.clear()
            try:
                # kept without its items' explanations: assess reads the totals and the flag only
                found = dataclasses.replace(model.quote_order(order, on_date, lookup), items=())
            except ValidationFailed as refused:
                found = refused
            self.quotes[key] = found
        else:
            self.hits += 1
        if isinstance(found, ValidationFailed):
            raise found
        return found


class _Line:
    """A tariff line whose rates in force are computed once per day (`model.assess` asks for
    them for every item)."""

    __slots__ = ("_by_day", "_measures", "line")

    def __init__(self, measures: tariff_model.LineMeasures) -> None:
        self._measures, self.line, self._by_day = measures, measures.line, {}

    def in_force(self, day: date) -> tariff_model.RatesInForce:
        found = self._by_day.get(day)
        if found is None:
            found = self._by_day[day] = self._measures.in_force(day)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._measures, name)


class TariffLines:
    """The lookup `model.assess` reads: the tariff's lines, each wrapped once."""

    def __init__(self, lookup: Any = None) -> None:
        self.lookup: Any = lookup
        self.lines: dict[str, _Line | None] = {}

    def line(self, code: str) -> _Line | None:
        if code not in self.lines:
            found = self.lookup.line(code)
            self.lines[code] = _Line(found) if found is not None else None
        return self.lines[code]

    def agreements(self) -> Any:
        return self.lookup.agreements()

    def exchange_rate(self, currency: str, day: date) -> Any:
        return self.lookup.exchange_rate(currency, day)
