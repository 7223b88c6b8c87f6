"""Clearance-time statistics, pure. A declaration's stages are measured from its acceptance (the
Time Release Study's starting point for the release process): to the lane's work being done, to
the agencies' decisions, to payment, to release; and from release to exit for exports. Each in
elapsed hours and in working days (time on Chinese working days only)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean, median
from zoneinfo import ZoneInfo

from tradewindow.platform.calendar import WorkingCalendar, working_time_between

# stage -> (from, to)
STAGES: dict[str, tuple[str, str]] = {
    "lane": ("accepted_at", "lane_cleared_at"),
    "agencies": ("accepted_at", "tasks_done_at"),
    "payment": ("accepted_at", "paid_at"),
    "release": ("accepted_at", "released_at"),
    "exit": ("released_at", "exited_at"),
}
GROUPINGS = ("lane", "transport_mode", "credit_tier", "customs_office", "month", "type")
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True)
class StageTime:
    hours: float
    working_days: float


def stage_times(record: Mapping, calendar: WorkingCalendar, zone: ZoneInfo) -> dict[str, StageTime]:
    """The stages a declaration has completed, each in hours and in working days."""
    times = {}
    for stage, (start_key, end_key) in STAGES.items():
        start, end = record.get(start_key), record.get(end_key)
        if isinstance(start, datetime) and isinstance(end, datetime) and end >= start:
            times[stage] = StageTime((end - start).total_seconds() / HOUR,
                                     working_time_between(calendar, start, end, zone).total_seconds() / DAY)
    return times


@dataclass(frozen=True)
class Summary:
    count: int
    mean: float
    median: float
    p90: float

    def as_dict(self) -> dict[str, float | int]:
        return {"count": self.count, "mean": round(self.mean, 2), "median": round(self.median, 2),
                "p90": round(self.p90, 2)}


def summarise(values: list[float]) -> Summary | None:
    """Mean, median and 90th percentile (nearest rank: a value some declaration really took)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(0.9 * len(ordered)))
    return Summary(len(ordered), fmean(ordered), median(ordered), ordered[rank - 1])


def group_key(record: Mapping, grouping: str, zone: ZoneInfo) -> str:
    if grouping == "month":
        return record["accepted_at"].astimezone(zone).strftime("%Y-%m")
    return str(record.get(grouping) or "unknown")


def clearance_report(records: Iterable[Mapping], calendar: WorkingCalendar, zone: ZoneInfo,
                     group_by: str | None = None) -> dict:
    """Per group (or overall): for each stage, the summaries in hours and in working days."""
    groups: dict[str, dict[str, list[StageTime]]] = {}
    counts: dict[str, int] = {}
    for record in records:
        key = group_key(record, group_by, zone) if group_by else "all"
        counts[key] = counts.get(key, 0) + 1
        bucket = groups.setdefault(key, {})
        for stage, time in stage_times(record, calendar, zone).items():
            bucket.setdefault(stage, []).append(time)
    result = []
    for key in sorted(groups):
        stages = {}
        for stage in STAGES:
            times = groups[key].get(stage, [])
            hours, days = summarise([t.hours for t in times]), summarise([t.working_days for t in times])
            stages[stage] = {"hours": hours.as_dict() if hours else None,
                             "working_days": days.as_dict() if days else None}
        result.append({"key": key, "declarations": counts[key], "stages": stages})
    return {"group_by": group_by or "all", "groups": result}
