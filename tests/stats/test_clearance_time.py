"""Clearance time by stage, in hours and in Chinese working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.customs.conftest import ALUMINIUM, ICS, filing
from tradewindow.customs import service as customs
from tradewindow.platform.calendar import WorkingCalendar
from tradewindow.platform.db import clock_at
from tradewindow.platform.errors import Forbidden, ValidationFailed
from tradewindow.stats import model
from tradewindow.stats import service as stats

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_stage_over_a_weekend_counts_only_working_time():
    accepted = datetime(2025, 10, 31, 12, 0, tzinfo=SHANGHAI)       # a Friday noon
    released = datetime(2025, 11, 3, 12, 0, tzinfo=SHANGHAI)        # the Monday noon after
    times = model.stage_times({"accepted_at": accepted, "released_at": released}, WorkingCalendar(), SHANGHAI)
    assert times["release"].hours == 72
    assert times["release"].working_days == 1


def test_a_make_up_saturday_counts_and_a_holiday_does_not():
    calendar = WorkingCalendar(holidays=frozenset({date(2025, 10, 1)}),
                               make_up_workdays=frozenset({date(2025, 10, 11)}))
    start = datetime(2025, 9, 30, 0, 0, tzinfo=SHANGHAI)
    end = datetime(2025, 10, 2, 0, 0, tzinfo=SHANGHAI)
    times = model.stage_times({"accepted_at": start, "released_at": end}, calendar, SHANGHAI)
    assert times["release"].working_days == 1
    saturday = datetime(2025, 10, 11, 0, 0, tzinfo=SHANGHAI)
    assert model.stage_times({"accepted_at": saturday, "released_at": saturday + timedelta(days=1)},
                             calendar, SHANGHAI)["release"].working_days == 1


def test_summaries_are_mean_median_and_nearest_rank_p90():
    summary = model.summarise([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert (summary.count, summary.mean, summary.median, summary.p90) == (10, 5.5, 5.5, 9)
    assert model.summarise([]) is None


def test_clearance_time_of_lodged_declarations_by_lane(customs_world):
    uow, trader = customs_world.uow, customs_world["trader"]
    lodged = datetime(2025, 6, 3, 1, 0, tzinfo=UTC)   # Tuesday 09:00 in Shanghai (Monday is Dragon Boat)
    with clock_at(lodged):
        green = customs.lodge_declaration(uow, trader, filing("LRN-S1", ICS)).declaration
        taxed = customs.lodge_declaration(uow, trader, filing("LRN-S2", ALUMINIUM)).declaration
    with clock_at(lodged + timedelta(hours=6)):
        customs.record_payment(uow, trader, green["id"], "payment", "B-1", Decimal(green["total_due"]))
        customs.record_payment(uow, trader, taxed["id"], "payment", "B-2", Decimal(taxed["total_due"]))
    report = stats.clearance_time(uow, customs_world["customs_officer"], date(2025, 6, 1), date(2025, 6, 30), "lane")
    [green_lane] = report["groups"]
    assert green_lane["key"] == "green"
    assert green_lane["declarations"] == 2
    assert green_lane["stages"]["release"]["hours"] == {"count": 2, "mean": 6.0, "median": 6.0, "p90": 6.0}
    assert green_lane["stages"]["release"]["working_days"]["median"] == 0.25


def test_a_trader_sees_only_its_own_figures(customs_world):
    with clock_at(datetime(2025, 6, 2, 1, 0, tzinfo=UTC)):
        customs.lodge_declaration(customs_world.uow, customs_world["trader"], filing("LRN-S3", ICS))
    mine = stats.clearance_time(customs_world.uow, customs_world["other_trader"], date(2025, 6, 1), date(2025, 6, 30))
    assert mine["groups"] == []
    with pytest.raises(Forbidden):
        stats.clearance_time(customs_world.uow, customs_world["bank"], date(2025, 6, 1), date(2025, 6, 30))


def test_unknown_grouping_is_refused(customs_world):
    with pytest.raises(ValidationFailed) as refused:
        stats.clearance_time(customs_world.uow, customs_world["zone"], date(2025, 1, 1), date(2025, 2, 1), "colour")
    assert refused.value.problems[0].code == "invalid_choice"


def test_the_api_answers_with_the_same_figures(customs_world, client, as_user):
    with clock_at(datetime(2025, 6, 2, 1, 0, tzinfo=UTC)):
        customs.lodge_declaration(customs_world.uow, customs_world["trader"], filing("LRN-S4", ICS))
    response = client.get("/api/v1/stats/clearance-time?from=2025-06-01&to=2025-06-30&group_by=month",
                          headers=as_user("zone"))
    assert response.status_code == 200, response.text
    assert response.json()["groups"][0]["key"] == "2025-06"
    assert client.get("/api/v1/stats/clearance-time?group_by=colour", headers=as_user("zone")).status_code == 422
