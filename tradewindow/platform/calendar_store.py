"""The working-day calendar as data: read and amended in `calendar_days`."""

from __future__ import annotations

from datetime import date
from time import monotonic

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from tradewindow.platform import caches
from tradewindow.platform.calendar import HOLIDAY, WORKDAY, WorkingCalendar
from tradewindow.platform.errors import ValidationFailed
from tradewindow.platform.tables import calendar_days


def load_calendar(conn: Connection) -> WorkingCalendar:
    rows = conn.execute(select(calendar_days.c.day, calendar_days.c.kind)).all()
    return WorkingCalendar(
        holidays=frozenset(d for d, kind in rows if kind == HOLIDAY),
        make_up_workdays=frozenset(d for d, kind in rows if kind == WORKDAY),
    )


def set_calendar_day(conn: Connection, day: date, kind: str | None, name: str, by: str) -> None:
    """Declare a day a holiday or a make-up working day, or (kind None) an ordinary day again."""
    if kind not in (HOLIDAY, WORKDAY, None):
        raise ValidationFailed(f"kind must be {HOLIDAY!r}, {WORKDAY!r} or null", "invalid_choice", "kind")
    if kind == WORKDAY and day.weekday() < 5:
        raise ValidationFailed("Only a Saturday or Sunday can be a make-up working day.",
                               "not_a_weekend_day", "day")
    _cached.clear()
    conn.execute(delete(calendar_days).where(calendar_days.c.day == day))
    if kind is not None:
        conn.execute(calendar_days.insert().values(day=day, kind=kind, name=name, updated_by=by))


def calendar_entries(conn: Connection, year: int) -> list[dict]:
    rows = conn.execute(select(calendar_days).where(
        calendar_days.c.day >= date(year, 1, 1), calendar_days.c.day <= date(year, 12, 31),
    ).order_by(calendar_days.c.day)).mappings()
    return [dict(r) for r in rows]


# Lodging a declaration needs the calendar for its tasks' deadlines; reading ~130 rows each time
# would be most of the work. Amendments made in this process clear the cache at once; those made
# by another process take effect here within CACHE_SECONDS.
CACHE_SECONDS = 60.0
_cached: dict[int, tuple[float, WorkingCalendar]] = {}
caches.register(_cached.clear)


def cached_calendar(conn: Connection) -> WorkingCalendar:
    key = id(conn.engine)
    hit = _cached.get(key)
    if hit is not None and monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    calendar = load_calendar(conn)
    _cached[key] = (monotonic(), calendar)
    return calendar
