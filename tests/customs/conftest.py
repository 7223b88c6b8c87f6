"""Customs fixtures: the demo tariff schedule, customs offices and a filing builder."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from tests.conftest import USCC
from tests.titles.conftest import titles_world  # noqa: F401 - for customs tests with bills of lading
from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.registry import service as registry
from tradewindow.tariff import service as tariff


@pytest.fixture
def customs_world(world):
    """`world` plus the demo tariff, the Xiyong office (8012), an automatic import licence for the
    trader, and no lane rules (every declaration green unless a test adds rules)."""
    registry.create_agency(world.uow, SYSTEM, "8012", "customs", "Xiyong Customs", "西永海关", parent_code="8000")
    tariff.load_demo_schedule(world.uow, Actor(user_id=None, username="fixture", role=Role.CUSTOMS))
    registry.record_licence(world.uow, world["licensing_officer"], USCC["trader"], "automatic_import_licence",
                            "AIL-0001", "MOFCOM", valid_from=date(2020, 1, 1), valid_to=date(2099, 12, 31))
    # No random selection and no top-up: lanes come only from the rules a test adds.
    from tradewindow.customs import service as customs

    customs.save_lane_settings(world.uow, world["customs_officer"], "8012", {
        "expected_rates": {"red": 0, "yellow": 0, "blue": 0}, "minimum_random_rate": 0})
    return world


CAR = {
    "tariff_code": "87032361", "description": "Passenger car, 2.0 l petrol", "origin": "DE",
    "quantity": "1", "unit": "NAR", "net_mass_kg": "1650", "gross_mass_kg": "1720",
    "value": "50000.00", "licence_numbers": ["AIL-0001"],
}
ICS = {  # integrated circuits: MFN 0 %, VAT 13 %, no agency requirements
    "tariff_code": "85423100", "description": "Processors", "origin": "KR",
    "quantity": "1000", "unit": "NAR", "net_mass_kg": "2", "gross_mass_kg": "3", "value": "20000.00",
}
ALUMINIUM = {  # 5 % MFN, no agency requirements
    "tariff_code": "76011000", "description": "Unwrought aluminium ingots", "origin": "AU",
    "quantity": "20000", "unit": "KGM", "net_mass_kg": "20000", "gross_mass_kg": "20100", "value": "50000.00",
}
LAPTOP = {
    "tariff_code": "84713000", "description": "Laptop computer", "origin": "CN",
    "quantity": "10", "unit": "NAR", "net_mass_kg": "15", "gross_mass_kg": "20", "value": "8000.00",
}


def filing(reference: str = "LRN-1", *items: dict, **overrides) -> dict:
    """An import filing of the given items (a car by default), CIF in USD at office 8012."""
    items = items or (CAR,)
    body = {
        "client_reference": reference, "type": "import", "customs_office": "8012",
        "transport_mode": "rail", "transport_document": "CIM-0001", "country_of_dispatch": "DE",
        "incoterm": "CIF", "currency": "USD",
        "invoice_total": str(sum(float(i["value"]) for i in items)) if items else "0",
        "items": [copy.deepcopy(i) for i in items],
    }
    from decimal import Decimal

    body["invoice_total"] = str(sum((Decimal(i["value"]) for i in items), Decimal(0)))
    body.update(overrides)
    return body
