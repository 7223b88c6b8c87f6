"""Statistics reads. They take the customs context's records through its service (never its
tables) and the zone's working-day calendar."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from tradewindow.customs import service as customs
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.calendar_store import load_calendar
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import ValidationFailed, require
from tradewindow.platform.settings import get_settings
from tradewindow.stats import model

READERS = (Role.ZONE, Role.CUSTOMS, Role.ADMIN, Role.TRADER, Role.BROKER)


def clearance_time(uow: UnitOfWork, actor: Actor, since: date, until: date, group_by: str | None = None) -> dict:
    """Clearance time by stage for declarations accepted in [since, until]. The zone and customs
    see every declaration; a trader or broker the ones it may see."""
    require(actor.is_(*READERS), "role_not_allowed", "Statistics are for the zone, customs and declarants.")
    if group_by is not None and group_by not in model.GROUPINGS:
        raise ValidationFailed(f"group_by is one of: {', '.join(model.GROUPINGS)}.", "invalid_choice", "group_by")
    if until < since:
        raise ValidationFailed("The period ends before it starts.", "ends_before_start", "to")
    if (until - since).days > 3660:
        raise ValidationFailed("A period is at most ten years.", "period_too_long", "to")
    records = customs.clearance_records(uow, actor, since, until)
    with uow.read() as conn:
        calendar = load_calendar(conn)
    report = model.clearance_report(records, calendar, ZoneInfo(get_settings().time_zone), group_by)
    return {"from": since, "to": until, **report}
