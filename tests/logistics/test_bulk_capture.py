"""Capture applies a document's events in bulk (state read per chunk of events, rows written at
once); the stored result is the same as capturing the events one by one: containment, which events
concern which equipment, where each unit is and which seal it carries, stops reached, alerts."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from stdnum import iso6346

from tests.conftest import USCC
from tests.logistics.conftest import T0, at, document
from tradewindow.logistics import service
from tradewindow.logistics.tables import (
    consignments,
    containment,
    epcis_events,
    equipment,
    monitoring_alerts,
    route_stops,
    seals,
    tracked_events,
)
from tradewindow.platform.db import UnitOfWork, clock_at

ROUTE = ["CNTNR", "CNAKU", "PLMAL", "DEDUI"]
PLACES = [*ROUTE, "RUMOW"]                   # Moscow: not on the planned route
_serials = itertools.count(1)

steps = st.one_of(
    st.tuples(st.just("move"), st.sampled_from(PLACES), st.sampled_from(["arriving", "departing", "inspecting"])),
    st.tuples(st.just("seal"), st.integers(0, 1), st.sampled_from(["intact", "broken", "changed"])),
    st.tuples(st.just("temperature"), st.integers(0, 1), st.sampled_from([4, 30])),
    st.tuples(st.just("pack"), st.integers(0, 3), st.integers(0, 2)),           # parcel into bag
    st.tuples(st.just("stuff"), st.integers(0, 2), st.integers(0, 1)),          # bag into container
    st.tuples(st.just("load"), st.integers(0, 1), st.sampled_from(["ADD", "OBSERVE"])),   # container onto wagon
    st.tuples(st.just("unload"), st.sampled_from([None, 0, 1]), st.just("DELETE")),
)
scenarios = st.lists(st.tuples(st.integers(1, 60), steps), min_size=1, max_size=25)


class Train:
    """One consignment with its own identifiers: a wagon carrying two sealed containers, bags and
    parcels, so that several captured side by side in one database never share an EPC."""

    def __init__(self, world) -> None:
        serial = next(_serials)
        self.name = f"T{serial}"
        self.wagon = f"C70{serial:07d}"
        self.containers = [self._container(2 * serial + i) for i in range(2)]
        self.bags = [f"urn:epc:id:sscc:4012345.{serial:05d}{b:05d}" for b in range(3)]
        self.parcels = [f"urn:epc:id:sgtin:4012345.011111.{serial}{p:02d}" for p in range(4)]
        body = {"client_reference": self.name, "transport_document": f"CIM-{self.name}", "trader": USCC["trader"],
                "temperature": {"min": "2", "max": "8"},
                "legs": [{"mode": "rail", "route": [
                    {"location": "CNTNR", "planned_departure": at(0)},
                    {"location": "CNAKU", "planned_arrival": at(96), "planned_departure": at(100)},
                    {"location": "PLMAL", "planned_arrival": at(288)},
                    {"location": "DEDUI", "planned_arrival": at(360)}]}],
                "equipment": [{"kind": "wagon", "number": self.wagon},
                              *({"kind": "container", "number": c, "carried_on": self.wagon,
                                 "seals": [{"number": f"SL{c}", "kind": "elock"}]} for c in self.containers)]}
        with clock_at(T0):          # the seals declared with it are recorded now: the same for every train
            self.id = service.register_consignment(world.uow, world["carrier"], body).consignment["id"]

    @staticmethod
    def _container(serial: int) -> str:
        body = f"TWTU{serial:06d}"
        return body + iso6346.calc_check_digit(body)

    def epc(self, kind: str, index: int = 0) -> str:
        number = self.wagon if kind == "wagon" else self.containers[index]
        return f"urn:tradewindow:{kind}:{number}"

    def events(self, scenario) -> list[dict]:
        hours, found = 0, []
        for index, (gap, (action, a, b)) in enumerate(scenario):
            hours += gap
            body: dict = {"eventID": f"urn:uuid:{self.name}-{index}",
                          "eventTime": (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
                          "eventTimeZoneOffset": "+00:00", "type": "ObjectEvent", "action": "OBSERVE"}
            if action == "move":
                body.update(epcList=[self.epc("wagon")], bizStep=b, bizLocation={"id": f"urn:tradewindow:location:{a}"})
            elif action == "seal":
                number = f"SL{self.containers[a]}" if b != "changed" else f"NEW{self.containers[a]}"
                body.update(epcList=[self.epc("container", a)], bizStep="inspecting",
                            **{"tw:seal": {"number": number, "kind": "elock",
                                           "status": "broken" if b == "broken" else "intact"}})
            elif action == "temperature":
                body.update(epcList=[self.epc("container", a)],
                            sensorElementList=[{"sensorReport": [{"type": "Temperature", "value": b, "uom": "CEL"}]}])
            else:
                body["type"] = "AggregationEvent"
                del body["action"]
                if action == "pack":
                    parent, children, kind = self.bags[b], [self.parcels[a]], "ADD"
                elif action == "stuff":
                    parent, children, kind = self.epc("container", b), [self.bags[a]], "ADD"
                else:       # load, unload: a container (unload: or everything) on the wagon
                    parent, children, kind = self.epc("wagon"), [] if a is None else [self.epc("container", a)], b
                body.update(parentID=parent, action=kind, **({"childEPCs": children} if children else {}))
            found.append(body)
        return found

    def stored(self, world) -> dict:
        """What capture stored about this train, with its own names replaced by roles and event
        ids by their position in the scenario, so trains can be compared."""
        names = {self.wagon: "wagon", **{c: f"container{i}" for i, c in enumerate(self.containers)},
                 **{self.epc("wagon"): "wagon-epc"},
                 **{self.epc("container", i): f"container{i}-epc" for i in range(2)},
                 **{b: f"bag{i}" for i, b in enumerate(self.bags)},
                 **{p: f"parcel{i}" for i, p in enumerate(self.parcels)}}

        def plain(value):
            if isinstance(value, str):
                for real, role in sorted(names.items(), key=lambda item: -len(item[0])):
                    value = value.replace(real, role)
                return value.replace(f"urn:uuid:{self.name}-", "event-")
            return value

        with world.uow.read() as conn:
            event_ids = dict(conn.execute(select(epcis_events.c.pk, epcis_events.c.event_id).where(
                epcis_events.c.event_id.like(f"urn:uuid:{self.name}-%"))).all())
            units = {r["id"]: r for r in conn.execute(select(equipment).where(
                equipment.c.consignment_id == self.id)).mappings()}

            def rows(query, *skip):
                return sorted(tuple(plain(event_ids.get(v, v)) for k, v in r.items() if k not in skip)
                              for r in conn.execute(query).mappings())

            return {
                "status": conn.execute(select(consignments.c.status).where(consignments.c.id == self.id)).scalar(),
                "stops": rows(select(route_stops).where(route_stops.c.consignment_id == self.id), "consignment_id"),
                "units": sorted(tuple(plain(v) for k, v in u.items() if k not in ("id", "consignment_id"))
                                for u in units.values()),
                "seals": rows(select(seals, equipment.c.number.label("unit")).join(equipment).where(
                    equipment.c.consignment_id == self.id), "id", "equipment_id"),
                "tracked": rows(select(tracked_events.c.event_pk, tracked_events.c.direct, equipment.c.number)
                                .join(equipment, equipment.c.id == tracked_events.c.equipment_id)
                                .where(tracked_events.c.consignment_id == self.id)),
                "alerts": rows(select(monitoring_alerts).where(monitoring_alerts.c.consignment_id == self.id),
                               "id", "consignment_id", "raised_at", "message", "details"),
                # One row per aggregation (split when its children part): compared child by child.
                "containment": sorted(
                    (plain(r["parent_epc"]), plain(child), r["since"], r["until"], plain(event_ids[r["event_pk"]]))
                    for r in conn.execute(select(containment).where(containment.c.event_pk.in_(list(event_ids))))
                    .mappings() for child in r["children"]),
                "events": len(event_ids),
            }


@pytest.fixture
def trains(carriers, epcis_schema):
    return carriers


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
def test_a_document_stores_what_its_events_captured_one_by_one_store(trains, monkeypatch, scenario):
    whole, chunked, one_by_one = Train(trains), Train(trains), Train(trains)
    carrier = trains["carrier"]
    service.capture(trains.uow, carrier, document(*whole.events(scenario)))
    with monkeypatch.context() as patch:
        patch.setattr(service, "APPLY_CHUNK", 2)        # state read again every two events
        service.capture(trains.uow, carrier, document(*chunked.events(scenario)))
    for each in one_by_one.events(scenario):
        service.capture(trains.uow, carrier, document(each))
    expected = one_by_one.stored(trains)
    assert whole.stored(trains) == expected
    assert chunked.stored(trains) == expected


def test_capturing_a_document_again_changes_nothing(trains):
    scenario = [(10, ("load", 0, "ADD")), (5, ("stuff", 1, 0)), (5, ("pack", 2, 1)),
                (20, ("move", "CNTNR", "departing")),
                (90, ("seal", 0, "broken")), (60, ("move", "RUMOW", "arriving")), (5, ("unload", None, "DELETE"))]
    train = Train(trains)
    events = train.events(scenario)
    service.capture(trains.uow, trains["carrier"], document(*events))
    first = train.stored(trains)
    again = service.capture(trains.uow, trains["carrier"], document(*reversed(events)))
    assert again["captured"] == 0 and again["repeated"] == len(events)
    assert train.stored(trains) == first
    assert {a[0] for a in first["alerts"]} >= {"seal_broken", "off_route"}


@pytest.mark.postgres
def test_two_captures_of_one_document_at_once_store_each_event_once(trains, engine):
    scenario = [(1, ("load", 0, "ADD")), (2, ("move", "CNTNR", "departing")), (3, ("seal", 1, "broken"))]
    train = Train(trains)
    events = train.events(scenario)
    results: list[dict] = []
    barrier = threading.Barrier(2)

    def capture() -> None:
        barrier.wait()
        results.append(service.capture(UnitOfWork(engine), trains["carrier"], document(*events)))

    threads = [threading.Thread(target=capture) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2                  # the second waits, then finds the events stored: repeats
    assert sorted(r["captured"] for r in results) == [0, len(events)]
    stored = train.stored(trains)
    assert stored["events"] == len(events)
    assert [a[0] for a in stored["alerts"]] == ["seal_broken"]
