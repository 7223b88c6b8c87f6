"""Logistics fixtures: carriers, the EPCIS schema from the reference data, and builders for
consignments and events."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import PASSWORD, USCC, enterprise_input
from tests.support.reference import require_reference
from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.platform.settings import get_settings
from tradewindow.registry import service as registry

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def epcis_schema(monkeypatch: pytest.MonkeyPatch):
    """The GS1 EPCIS 2.0 JSON Schema from the reference data, configured as an operator would."""
    path = require_reference("epcis/EPCIS-JSON-Schema.json")
    monkeypatch.setenv("TRADEWINDOW_EPCIS_SCHEMA", str(path))
    get_settings.cache_clear()
    return path


@pytest.fixture
def carriers(world):
    """`world` plus two carriers (`carrier`, `other_carrier`) and a logistics company."""
    zone = Actor(user_id=None, username="fixture", role=Role.ZONE)
    for name, uscc, kinds, role in (("carrier", USCC["carrier"], ("carrier",), Role.CARRIER),
                                    ("other_carrier", USCC["spare"], ("carrier",), Role.CARRIER),
                                    ("logistics", USCC["spare2"], ("logistics",), Role.LOGISTICS)):
        world.enterprises[name] = registry.register_enterprise(world.uow, zone, enterprise_input(
            uscc, f"{name.replace('_', ' ').title()} Co.", kinds))
        user = registry.create_user(world.uow, SYSTEM, name, PASSWORD, role.value, name, enterprise_uscc=uscc)
        world.actors[name] = Actor(user_id=user["id"], username=name, role=role,
                                   enterprise_id=user["enterprise_id"])
    return world


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


TRAIN = {
    "client_reference": "REF-1", "transport_document": "CIM-0001", "trader": USCC["trader"],
    "description": "Laptops",
    "legs": [{"mode": "rail", "route": [
        {"location": "CNTNR", "planned_departure": at(0)},
        {"location": "CNAKU", "planned_arrival": at(96), "planned_departure": at(100)},
        {"location": "PLMAL", "planned_arrival": at(288)},
        {"location": "DEDUI", "planned_arrival": at(360)}]}],
    "equipment": [{"kind": "wagon", "number": "C701234567"},
                  {"kind": "container", "number": "CSQU3054383", "carried_on": "C701234567",
                   "seals": [{"number": "CN4471023", "kind": "elock"}]}],
}
CONTAINER = "urn:tradewindow:container:CSQU3054383"
WAGON = "urn:tradewindow:wagon:C701234567"


def train(reference: str = "REF-1", **overrides) -> dict:
    body = copy.deepcopy(TRAIN)
    body["client_reference"] = reference
    body.update(overrides)
    return body


def event(hours: float, epcs: list[str], locode: str | None = None, **fields) -> dict:
    """A bare ObjectEvent `hours` after T0 (UTC) on `epcs` at `locode`."""
    body = {"type": "ObjectEvent", "eventTime": (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
            "eventTimeZoneOffset": "+00:00", "epcList": epcs, "action": "OBSERVE"}
    if locode:
        body["bizLocation"] = {"id": f"urn:tradewindow:location:{locode}"}
    body.update(fields)
    return body


def document(*events: dict) -> dict:
    return {"@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld", {"tw": "urn:tradewindow:epcis:"}],
            "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-01T00:00:00Z",
            "epcisBody": {"eventList": list(events)}}
