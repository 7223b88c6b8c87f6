"""`model.quote_order` once per distinct request, as the e-commerce bulk paths ask for the same
quotes many times over (never a second tax formula: every quote is the quote engine's). A cache
lives for one run or one batch, so a tariff change is seen by the next one. (A line's rates in force
per day are cached by the tariff model itself.)"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from datetime import date
from typing import Any

from tradewindow.ecommerce import model
from tradewindow.platform.errors import ValidationFailed
from tradewindow.tariff import model as tariff_model


class QuoteCache:
    """`model.quote_order` once per distinct request: the quote depends on the day, the customs
    value and the items' codes, quantities, prices and origins, and on nothing else of the order.
    Bounded, least recently used first out: ~1.5 KB an entry, so at most ~25 MB a process
    whatever the size of the run (a million generated parcels ask ~16,500 distinct quotes per
    batch worker; a festival's popular goods are asked again and again)."""

    def __init__(self, size: int = 16_384) -> None:
        self.size = size
        self.quotes: OrderedDict[Any, Any] = OrderedDict()
        self.hits = self.misses = 0

    def __call__(self, order: model.Order, on_date: date, lookup: Any) -> tariff_model.Quote:
        items = order.items
        if len(items) == 1:     # most orders: a flat key (a 6-tuple never equals a 3-tuple key)
            item = items[0]
            key: tuple = (on_date, order.customs_value, item.tariff_code, item.quantity, item.unit_price, item.origin)
        else:
            key = (on_date, order.customs_value,
                   tuple([(i.tariff_code, i.quantity, i.unit_price, i.origin) for i in items]))
        found = self.quotes.get(key)
        if found is None:
            self.misses += 1
            if len(self.quotes) >= self.size:
                self.quotes.popitem(last=False)
            try:
                # kept without its items' explanations: assess reads the totals and the flag only
                found = dataclasses.replace(model.quote_order(order, on_date, lookup), items=())
            except ValidationFailed as refused:
                found = refused
            self.quotes[key] = found
        else:
            self.hits += 1
            self.quotes.move_to_end(key)
        if isinstance(found, ValidationFailed):
            raise found
        return found
