"""Bonded zones: account books, lots, moves between locations (DESIGN.md §4.3)."""
