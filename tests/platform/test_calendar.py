"""The working-day calendar of the zone: Chinese public holidays and make-up working days (调休),
as the State Council sets them, kept as data an administrator can amend."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tradewindow.platform.calendar import HOLIDAY, WORKDAY, WorkingCalendar, chinese_calendar_entries
from tradewindow.platform.calendar_store import load_calendar
from tradewindow.platform.tables import audit_log

SEEDED_YEARS = range(2024, 2031)   # what migration 0002 seeds


def _seeded_calendar() -> WorkingCalendar:
    entries = chinese_calendar_entries(SEEDED_YEARS)
    return WorkingCalendar(holidays=frozenset(d for d, kind, _ in entries if kind == HOLIDAY),
                           make_up_workdays=frozenset(d for d, kind, _ in entries if kind == WORKDAY))


CHINA = _seeded_calendar()


@pytest.fixture
def china() -> WorkingCalendar:
    return CHINA


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


# --- the 2025 and 2026 notices of the State Council -----------------------------------------------

@pytest.mark.parametrize(("first", "last"), [
    (date(2025, 1, 28), date(2025, 2, 4)),     # Spring Festival 2025
    (date(2025, 10, 1), date(2025, 10, 8)),    # National Day + Mid-Autumn 2025
    (date(2025, 5, 1), date(2025, 5, 5)),      # Labour Day 2025
    (date(2026, 2, 15), date(2026, 2, 23)),    # Spring Festival 2026
    (date(2026, 10, 1), date(2026, 10, 7)),    # National Day 2026
])
def test_golden_weeks_are_not_working_days(china, first, last):
    assert [d for d in days(first, last) if china.is_working_day(d)] == []


@pytest.mark.parametrize("day", [
    date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11),
    date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20),
    date(2026, 10, 10),
])
def test_make_up_saturdays_and_sundays_are_working_days(china, day):
    assert day.weekday() >= 5
    assert china.is_working_day(day)


@pytest.mark.parametrize("day", [date(2025, 1, 1), date(2025, 4, 4), date(2025, 6, 2),
                                 date(2026, 1, 1), date(2026, 1, 2), date(2026, 6, 19),
                                 date(2026, 9, 25)])
def test_single_public_holidays_are_not_working_days(china, day):
    assert not china.is_working_day(day)


def test_ordinary_weekdays_work_and_ordinary_weekends_rest(china):
    assert china.is_working_day(date(2025, 10, 9))       # Thursday after the golden week
    assert china.is_working_day(date(2025, 3, 12))
    assert not china.is_working_day(date(2025, 3, 15))   # an ordinary Saturday
    assert not china.is_working_day(date(2025, 3, 16))


# --- counting ------------------------------------------------------------------------------------

def test_working_days_between_counts_days_after_start_up_to_and_including_end(china):
    monday, tuesday = date(2025, 3, 10), date(2025, 3, 11)
    assert china.working_days_between(monday, tuesday) == 1
    assert china.working_days_between(monday, monday) == 0
    assert china.working_days_between(monday, date(2025, 3, 17)) == 5     # Friday to Friday is 5
    assert china.working_days_between(date(2025, 3, 14), date(2025, 3, 17)) == 1   # Fri -> Mon


def test_working_days_between_is_negative_when_reversed(china):
    a, b = date(2025, 9, 26), date(2025, 10, 13)
    assert china.working_days_between(b, a) == -china.working_days_between(a, b)


def test_working_days_across_the_2025_national_day_holiday(china):
    # Lodged Friday 26 September; working days after it: Sun 28 (make-up), Mon 29, Tue 30,
    # then nothing until Thu 9 Oct, Fri 10, Sat 11 (make-up), Mon 13.
    assert china.working_days_between(date(2025, 9, 26), date(2025, 10, 13)) == 7
    assert china.working_days_between(date(2025, 9, 30), date(2025, 10, 8)) == 0


def test_working_days_across_the_2026_spring_festival(china):
    # Fri 13 Feb -> Sat 14 (make-up) ... Tue 24, Wed 25, Thu 26, Fri 27, Sat 28 (make-up).
    assert china.working_days_between(date(2026, 2, 13), date(2026, 2, 28)) == 6


def test_add_working_days_skips_holidays_forward_and_back(china):
    assert china.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert china.add_working_days(date(2025, 10, 9), -1) == date(2025, 9, 30)
    assert china.add_working_days(date(2025, 10, 9), 2) == date(2025, 10, 11)   # make-up Saturday
    assert china.add_working_days(date(2025, 9, 26), 1) == date(2025, 9, 28)    # make-up Sunday
    assert china.add_working_days(date(2025, 3, 14), 1) == date(2025, 3, 17)
    assert china.add_working_days(date(2025, 3, 17), -1) == date(2025, 3, 14)
    assert china.add_working_days(date(2025, 3, 15), 0) == date(2025, 3, 15)


seeded_days = st.dates(min_value=date(2024, 2, 1), max_value=date(2030, 10, 31))


@given(seeded_days, st.integers(min_value=1, max_value=250))
def test_adding_working_days_lands_on_a_working_day_that_far_away(day, count):
    landed = CHINA.add_working_days(day, count)
    assert landed > day
    assert CHINA.is_working_day(landed)
    assert CHINA.working_days_between(day, landed) == count


@given(seeded_days, st.integers(min_value=-250, max_value=-1))
def test_subtracting_working_days_lands_on_a_working_day_that_far_back(day, count):
    landed = CHINA.add_working_days(day, count)
    assert landed < day
    assert CHINA.is_working_day(landed)
    # `landed` is the |count|-th working day before `day`: |count| - 1 working days lie strictly
    # between them. (working_days_between counts `end` but not `start`, so from a holiday the
    # reversed count is one short: going back one working day from 1 January is 31 December.)
    assert CHINA.working_days_between(landed, day - timedelta(days=1)) == -count - 1
    if CHINA.is_working_day(day):
        assert CHINA.working_days_between(day, landed) == count


@given(seeded_days, seeded_days, seeded_days)
def test_working_days_between_adds_up_over_consecutive_periods(a, b, c):
    assert (CHINA.working_days_between(a, b) + CHINA.working_days_between(b, c)
            == CHINA.working_days_between(a, c))


def test_observed_days_off_on_weekends_are_not_seeded_as_holidays():
    assert all(day.weekday() < 5 for day, kind, _ in chinese_calendar_entries(SEEDED_YEARS)
               if kind == HOLIDAY)
    assert all(day.weekday() >= 5 for day, kind, _ in chinese_calendar_entries(SEEDED_YEARS)
               if kind == WORKDAY)


# --- the calendar as data ------------------------------------------------------------------------

def test_the_migration_seeds_the_chinese_calendar(uow, china):
    with uow.read() as conn:
        stored = load_calendar(conn)
    assert stored == china
    assert date(2025, 10, 11) in stored.make_up_workdays
    assert date(2025, 10, 1) in stored.holidays


def working_days(client, headers, start: str, end: str) -> int:
    response = client.get("/api/v1/calendar/working-days", params={"start": start, "end": end},
                          headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["working_days"]


def test_an_administrator_declares_a_holiday_and_the_count_changes_with_an_audit_record(client, as_user, uow):
    admin, trader = as_user("admin"), as_user("trader")
    # Tue 30 Dec 2025 -> Mon 5 Jan 2026: Wed 31, (Jan 1-2 off, Sat 3 off), Sun 4 (make-up), Mon 5.
    assert working_days(client, trader, "2025-12-30", "2026-01-05") == 3

    response = client.put("/api/v1/calendar/days/2025-12-31", headers=admin,
                          json={"kind": "holiday", "name": "Extra day off"})
    assert response.status_code == 200, response.text
    assert response.json() == {"day": "2025-12-31", "kind": "holiday", "name": "Extra day off"}
    assert working_days(client, trader, "2025-12-30", "2026-01-05") == 2

    with uow.read() as conn:
        audited = conn.execute(select(audit_log).where(
            audit_log.c.action == "platform.calendar_day_set")).mappings().all()
    assert [(a["object_id"], a["actor_name"], a["before"]) for a in audited] == [("2025-12-31", "admin", None)]
    assert audited[0]["after"]["kind"] == "holiday"

    listed = client.get("/api/v1/calendar/2025", headers=trader).json()["days"]
    assert {"day": "2025-12-31", "kind": "holiday", "name": "Extra day off", "updated_by": "admin"} in listed


def test_an_administrator_adds_a_make_up_saturday_and_can_undo_it(client, as_user):
    admin = as_user("admin")
    # Fri 14 Nov 2025 -> Mon 17 Nov: only Monday.
    assert working_days(client, admin, "2025-11-14", "2025-11-17") == 1
    response = client.put("/api/v1/calendar/days/2025-11-15", headers=admin, json={"kind": "workday"})
    assert response.status_code == 200, response.text
    assert working_days(client, admin, "2025-11-14", "2025-11-17") == 2
    response = client.put("/api/v1/calendar/days/2025-11-15", headers=admin, json={"kind": None})
    assert response.status_code == 200, response.text
    assert working_days(client, admin, "2025-11-14", "2025-11-17") == 1


@pytest.mark.parametrize("persona", ["trader", "customs_officer", "zone"])
def test_only_an_administrator_may_amend_the_calendar(client, as_user, uow, persona):
    response = client.put("/api/v1/calendar/days/2025-12-31", headers=as_user(persona),
                          json={"kind": "holiday", "name": "Mine"})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "role_not_allowed"
    with uow.read() as conn:
        assert date(2025, 12, 31) not in load_calendar(conn).holidays


def test_a_weekday_cannot_be_a_make_up_working_day(client, as_user, uow):
    response = client.put("/api/v1/calendar/days/2025-12-31", headers=as_user("admin"),
                          json={"kind": "workday"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"path": "day", "code": "not_a_weekend_day",
                                          "message": "Only a Saturday or Sunday can be a make-up working day."}]
    with uow.read() as conn:
        assert date(2025, 12, 31) not in load_calendar(conn).make_up_workdays
        assert conn.execute(select(audit_log).where(
            audit_log.c.action == "platform.calendar_day_set")).first() is None


def test_an_unknown_kind_is_refused(client, as_user):
    response = client.put("/api/v1/calendar/days/2025-11-15", headers=as_user("admin"),
                          json={"kind": "festival"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid_choice"


@pytest.mark.parametrize("year", ["0", "10000", "-5"])
def test_a_year_out_of_range_is_refused_not_a_server_error(client, as_user, year):
    response = client.get(f"/api/v1/calendar/{year}", headers=as_user("trader"))
    assert response.status_code == 422
    assert [(p["path"], p["code"]) for p in response.json()["errors"]] == [("path.year", "out_of_range")]


def test_a_year_lists_its_holidays_and_make_up_days(client, as_user):
    listed = client.get("/api/v1/calendar/2025", headers=as_user("trader")).json()
    assert listed["year"] == 2025
    kinds = {d["day"]: d["kind"] for d in listed["days"]}
    assert kinds["2025-10-01"] == "holiday" and kinds["2025-10-11"] == "workday"
