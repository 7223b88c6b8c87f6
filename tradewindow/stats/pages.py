"""The clearance-time page: a chart per grouping (vendored Chart.js) and the same figures as a table."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from tradewindow.platform.auth import Actor
from tradewindow.platform.db import UnitOfWork, business_today
from tradewindow.platform.errors import DomainError
from tradewindow.platform.web import add_nav, get_uow, page_actor, render
from tradewindow.stats import model, service

router = APIRouter(include_in_schema=False)
add_nav("Statistics", "/stats/clearance", set(service.READERS), order=80)


@router.get("/stats/clearance")
def clearance(request: Request, uow: Annotated[UnitOfWork, Depends(get_uow)],
              actor: Annotated[Actor, Depends(page_actor)], group_by: str = "lane", since: str = "",
              until: str = "", unit: str = "working_days") -> Any:
    end = _date(until) or business_today()
    start = _date(since) or end - timedelta(days=365)
    unit = unit if unit in ("working_days", "hours") else "working_days"
    problems = []
    report = None
    try:
        report = service.clearance_time(uow, actor, start, end, group_by if group_by != "all" else None)
    except DomainError as exc:
        problems = exc.problems
    return render(request, "stats/clearance.html", actor, report=report, problems=problems,
                  group_by=group_by, since=start, until=end, unit=unit, groupings=("all", *model.GROUPINGS),
                  stages=list(model.STAGES), overall=_overall(uow, actor, start, end) if report else None)


def _overall(uow: UnitOfWork, actor: Actor, start: date, end: date) -> dict | None:
    groups = service.clearance_time(uow, actor, start, end)["groups"]
    return groups[0] if groups else None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


