"""Statistics API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tradewindow.platform.auth import Actor
from tradewindow.platform.db import UnitOfWork, business_today
from tradewindow.platform.web import allow, get_uow
from tradewindow.stats import service

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
Uow = Annotated[UnitOfWork, Depends(get_uow)]


@router.get("/clearance-time")
def clearance_time(uow: Uow, actor: Annotated[Actor, allow(*service.READERS)],
                   since: Annotated[date | None, Query(alias="from")] = None,
                   until: Annotated[date | None, Query(alias="to")] = None,
                   group_by: str | None = None) -> dict:
    """Clearance time by Time Release Study stage (lane, agencies, payment, release, exit),
    measured from acceptance: count, mean, median and 90th percentile in hours and in Chinese
    working days, overall or by lane, transport_mode, credit_tier, customs_office, month or type.
    Default period: the last 365 days. Roles: zone, customs, admin, trader, broker (their own)."""
    until = until or business_today()
    return service.clearance_time(uow, actor, since or until - timedelta(days=365), until, group_by)


