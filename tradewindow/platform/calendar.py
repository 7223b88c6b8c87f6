"""The working-day calendar of the zone: Chinese public holidays and the make-up working days
(调休) that the State Council sets each year. This module is pure; `calendar_store` keeps the
days as data in `calendar_days`, so an administrator can amend them when the year's notice is
published.

Clearance times (WCO Time Release Study) and task deadlines are counted in working days."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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


# Office hours in which agency deadlines run ("16 working hours" = two working days).
OFFICE_OPENS, OFFICE_CLOSES = 9, 17


def add_working_hours(calendar: WorkingCalendar, start: datetime, hours: int,
                      zone: ZoneInfo) -> datetime:
    """The moment `hours` office hours (09:00–17:00 on working days, in `zone`) after `start`.
    Time outside office hours does not count: a task raised on Friday evening with 8 hours is due
    on the next working day at 17:00."""
    local = start.astimezone(zone)
    remaining = timedelta(hours=hours)
    while True:
        day = local.date()
        opens = datetime.combine(day, time(OFFICE_OPENS), zone)
        closes = datetime.combine(day, time(OFFICE_CLOSES), zone)
        if calendar.is_working_day(day) and local < closes:
            local = max(local, opens)
            available = closes - local
            if remaining <= available:
                return (local + remaining).astimezone(start.tzinfo)
            remaining -= available
        local = datetime.combine(day + timedelta(days=1), time(OFFICE_OPENS), zone)


def working_time_between(calendar: WorkingCalendar, start: datetime, end: datetime, zone: ZoneInfo) -> timedelta:
    """Time between two moments that falls on working days (whole days, in `zone`): what the
    zone's published clearance times count ("5.3 working days"). Weekends and public holidays
    are left out; make-up working days count."""
    if end <= start:
        return timedelta(0)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    total = timedelta(0)
    day = local_start.date()
    while day <= local_end.date():
        if calendar.is_working_day(day):
            day_start = datetime.combine(day, time(0), zone)
            day_end = datetime.combine(day + timedelta(days=1), time(0), zone)
            total += min(day_end, local_end) - max(day_start, local_start)
        day += timedelta(days=1)
    return total
