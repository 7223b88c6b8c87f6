"""Platform API: health, metrics, code lists, the working-day calendar, the job queue's state."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import Field
from sqlalchemy import text

from tradewindow.platform import calendar_store, codelists
from tradewindow.platform.auth import ALL_ROLES, Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import NotFound
from tradewindow.platform.jobs import DatabaseJobQueue
from tradewindow.platform.metrics import outbox_backlog, queue_depth, render_metrics
from tradewindow.platform.outbox import unrelayed_count
from tradewindow.platform.web import Schema, allow, get_uow

router = APIRouter(tags=["platform"])
Uow = Annotated[UnitOfWork, Depends(get_uow)]


@router.get("/healthz")
def healthz(uow: Uow) -> dict:
    """Liveness and database reachability. No authentication."""
    with uow.read() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok", "database": uow.dialect}


@router.get("/metrics", response_class=Response)
def metrics(uow: Uow) -> Response:
    """Prometheus text format: requests, latencies, queue depth, outbox backlog."""
    queue = DatabaseJobQueue(lambda: uow)
    for status in ("queued", "running", "done", "dead"):
        queue_depth.labels(status).set(queue.depth().get(status, 0))
    with uow.read() as conn:
        outbox_backlog.set(unrelayed_count(conn))
    return Response(render_metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/api/v1/codelists/{list_name}")
def code_list(list_name: str, uow: Uow, actor: Annotated[Actor, allow(*ALL_ROLES)]) -> dict:
    """A code list: country, currency, unit, transport_mode, location. Roles: any."""
    if list_name not in codelists.LISTS:
        raise NotFound(f"No code list {list_name!r}; one of {', '.join(codelists.LISTS)}.", "not_found")
    with uow.read() as conn:
        return {"items": [{k: e[k] for k in ("code", "name", "name_zh", "extra")}
                          for e in codelists.entries(conn, list_name)]}


@router.get("/api/v1/calendar/working-days")
def working_days(start: date, end: date, uow: Uow, actor: Annotated[Actor, allow(*ALL_ROLES)]) -> dict:
    """Working days after `start` up to and including `end`. Roles: any."""
    with uow.read() as conn:
        return {"start": start, "end": end,
                "working_days": calendar_store.load_calendar(conn).working_days_between(start, end)}


@router.get("/api/v1/calendar/{year}")
def calendar_year(year: Annotated[int, Path(ge=1, le=9999)], uow: Uow,
                  actor: Annotated[Actor, allow(*ALL_ROLES)]) -> dict:
    """Holidays and make-up working days of a year. Roles: any."""
    with uow.read() as conn:
        return {"year": year, "days": calendar_store.calendar_entries(conn, year)}


class CalendarDayBody(Schema):
    kind: Literal["holiday", "workday"] | None
    name: str = Field(default="", max_length=200)


@router.put("/api/v1/calendar/days/{day}")
def set_calendar_day(day: date, body: CalendarDayBody, uow: Uow,
                     actor: Annotated[Actor, allow(Role.ADMIN)], request: Request) -> dict:
    """Amend the calendar: a holiday, a make-up working day, or (kind null) an ordinary day.
    Roles: admin."""
    with uow.transaction() as conn:
        before = [d for d in calendar_store.calendar_entries(conn, day.year) if d["day"] == day]
        calendar_store.set_calendar_day(conn, day, body.kind, body.name or body.kind or "", actor.username)
        uow.audit(actor, "platform.calendar_day_set", "calendar_day", day.isoformat(),
                  before[0] if before else None, body.model_dump())
    return {"day": day, "kind": body.kind, "name": body.name}
