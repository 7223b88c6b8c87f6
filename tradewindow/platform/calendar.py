"""The working-day calendar of the zone: Chinese public holidays and the make-up working days
(调休) that the State Council sets each year. This module is pure; `calendar_store` keeps the
days as data in `calendar_days`, so an administrator can amend them when the year's notice is
published.

Clearance times (WCO Time Release Study) and task deadlines are counted in working days."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

HOLIDAY, WORKDAY = "holiday", "workday"


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    make_up_workdays: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        if day in self.make_up_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end`: lodged on Monday and released on
        Tuesday is one working day; the same day is zero. Negative when end is before start."""
        if end < start:
            return -self.working_days_between(end, start)
        return sum(1 for n in range(1, (end - start).days + 1)
                   if self.is_working_day(start + timedelta(days=n)))

    def add_working_days(self, start: date, count: int) -> date:
        """The day `count` working days after `start` (before it when count is negative)."""
        step = 1 if count >= 0 else -1
        day, remaining = start, abs(count)
        while remaining:
            day += timedelta(days=step)
            if self.is_working_day(day):
                remaining -= 1
        return day


def chinese_calendar_entries(years: range) -> list[tuple[date, str, str]]:
    """Holidays and make-up working days from the `holidays` package, used to seed the table.
    Observed days off on a Saturday or Sunday are not holidays in our sense: weekends already
    don't count."""
    import holidays

    entries: dict[date, tuple[date, str, str]] = {}
    for year in years:
        china = holidays.China(years=year)
        for day, name in sorted(china.items()):
            if day.weekday() < 5:
                entries[day] = (day, HOLIDAY, name)
        for day in sorted(getattr(china, "weekend_workdays", ())):
            if day.year == year:   # the package lists every year's make-up days at once
                entries[day] = (day, WORKDAY, "Make-up working day")
    return sorted(entries.values())
