"""Tariff: the national schedule (lines and their measures), trade agreements, exchange rates and
the duty / consumption tax / VAT quote engine (DESIGN.md §4.2)."""
