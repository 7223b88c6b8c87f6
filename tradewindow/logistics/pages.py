"""Logistics pages: the consignments one may see, and the timeline of a consignment or container
with a schematic route map drawn as inline SVG (no map tiles: the machines are offline)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from tradewindow.logistics import service
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.web import add_nav, get_uow, page_actor, render

router = APIRouter(include_in_schema=False)
Uow = Annotated[UnitOfWork, Depends(get_uow)]
PageActor = Annotated[Actor, Depends(page_actor)]

add_nav("Consignments", "/consignments", {Role.TRADER, Role.BROKER, Role.CARRIER, Role.LOGISTICS, Role.CUSTOMS,
                                          Role.QUARANTINE, Role.LICENSING, Role.ZONE, Role.ADMIN}, order=40)

MODE_COLOURS = {"rail": "#7a4b16", "sea": "#1565c0", "river": "#00838f", "road": "#546e7a", "air": "#6a1b9a"}
MAP_WIDTH, MAP_HEIGHT, MARGIN = 960, 190, 60


@router.get("/consignments")
def consignment_list(request: Request, uow: Uow, actor: PageActor, q: str = Query("", max_length=64),
                     status: str = "") -> Any:
    result = service.list_consignments(uow, actor, status or None, q or None, limit=100)
    alerts = service.list_alerts(uow, actor, limit=20)["items"]
    return render(request, "logistics/consignments.html", actor, result=result, alerts=alerts, q=q,
                  status=status)


@router.get("/consignments/{consignment_id}")
def consignment_page(request: Request, consignment_id: str, uow: Uow, actor: PageActor) -> Any:
    return _timeline_page(request, uow, actor, service.timeline(uow, actor, consignment_id), None)


@router.get("/containers/{number}")
def container_page(request: Request, number: str, uow: Uow, actor: PageActor) -> Any:
    return _timeline_page(request, uow, actor, service.container_timeline(uow, actor, number), number)


def _timeline_page(request: Request, uow: UnitOfWork, actor: Actor, timeline: dict, number: str | None) -> Any:
    names = service.location_names(uow)
    return render(request, "logistics/timeline.html", actor, t=timeline, c=timeline["consignment"],
                  number=number, names=names, route_map=route_map(timeline, names))


def route_map(timeline: dict, names: dict[str, dict]) -> dict:
    """The route as a schematic: stops evenly spaced on a line, each leg in its mode's colour,
    reached stops filled, where the goods are now marked, places off the route hung below."""
    consignment = timeline["consignment"]
    route = consignment["route"]
    count = max(len(route), 2)
    step = (MAP_WIDTH - 2 * MARGIN) / (count - 1)
    y = 80
    stops = []
    for index, stop in enumerate(route):
        stops.append({"x": round(MARGIN + index * step, 1), "y": y, "locode": stop["location"],
                      "name": names.get(stop["location"], {}).get("name", stop["location"]),
                      "reached": stop["actual_arrival"] is not None or (index == 0 and stop["actual_departure"]),
                      "planned": stop["planned_arrival"] or stop["planned_departure"],
                      "actual": stop["actual_arrival"] or stop["actual_departure"]})
    position = {s["locode"]: s for s in stops}
    segments = []
    for leg in consignment["legs"]:
        places = [p["location"] for p in leg["route"]]
        for start, end in zip(places, places[1:], strict=False):
            if start in position and end in position:
                segments.append({"x1": position[start]["x"], "x2": position[end]["x"], "y": y,
                                 "colour": MODE_COLOURS.get(leg["mode"], "#333"), "mode": leg["mode"]})
    here = timeline["position"]["location"] if timeline.get("position") else None
    off_route = []
    seen = set()
    for event in timeline["events"]:
        place = event["location"]
        if place and len(place) == 5 and place not in position and place not in seen:
            seen.add(place)
            off_route.append(place)
    strays = [{"x": round(MARGIN + (i + 0.5) * (MAP_WIDTH - 2 * MARGIN) / max(len(off_route), 1), 1),
               "y": y + 70, "locode": p, "name": names.get(p, {}).get("name", p)} for i, p in enumerate(off_route)]
    marker = position.get(here) or next((s for s in strays if s["locode"] == here), None)
    return {"width": MAP_WIDTH, "height": MAP_HEIGHT + (40 if strays else 0), "stops": stops,
            "segments": segments, "strays": strays, "marker": marker,
            "modes": sorted({s["mode"] for s in segments}), "colours": MODE_COLOURS}
