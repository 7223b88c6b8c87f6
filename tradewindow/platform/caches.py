"""Per-process caches of slowly changing data (tariff snapshot, calendar, lane rules, tallies)
register here, so that whoever changes data behind the services' back — a test emptying the
database, an operator restoring a backup — can drop them all at once."""

from __future__ import annotations

from collections.abc import Callable

_clearers: list[Callable[[], None]] = []


def register(clear: Callable[[], None]) -> None:
    if clear not in _clearers:
        _clearers.append(clear)


def clear_all() -> None:
    for clear in _clearers:
        clear()
