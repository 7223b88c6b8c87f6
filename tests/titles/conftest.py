"""Titles fixtures: a registered carrier (with its user `carrier`), a second bank, custodial
signing keys for the parties, and a bill builder."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, USCC, enterprise_input
from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.registry import service as registry
from tradewindow.titles import service as titles

# Valid ISO 6346 container numbers (check digits computed with python-stdnum).
CONTAINERS = ["CSQU3054383", "MSKU9070323"]


def bill(number: str = "CQDUI2026000001", **overrides) -> dict:
    """A China–Europe Railway Express bill: Chongqing to Duisburg, to order of the trader."""
    body = {
        "bol_number": number, "shipper_uscc": USCC["trader"], "consignee_uscc": None,
        "goods_description": "Laptop computers, 40 pallets", "packages": 40, "gross_mass_kg": "12850.5",
        "containers": list(CONTAINERS), "place_of_receipt": "CNCKG", "place_of_delivery": "DEDUI",
        "consignment_reference": "CR-2026-0042",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.fixture
def titles_world(world):
    """`world` plus the carrier (Yuxinou Logistics) and its user, a second bank, and custodial
    keys for the carrier, both traders and the bank (not the second bank: it keeps its own key)."""
    loader = Actor(user_id=None, username="fixture", role=Role.ZONE)
    world.enterprises["carrier"] = registry.register_enterprise(
        world.uow, loader, enterprise_input(USCC["carrier"], "Yuxinou Logistics", ("carrier",)))
    world.enterprises["other_bank"] = registry.register_enterprise(
        world.uow, loader, enterprise_input(USCC["spare"], "Chongqing Rural Bank", ("bank",)))
    for username, role, uscc in (("carrier", Role.CARRIER, USCC["carrier"]),
                                 ("other_bank", Role.BANK, USCC["spare"])):
        user = registry.create_user(world.uow, SYSTEM, username, PASSWORD, role.value, username,
                                    enterprise_uscc=uscc)
        world.actors[username] = Actor(user_id=user["id"], username=username, role=role,
                                       enterprise_id=user["enterprise_id"])
    for persona in ("carrier", "trader", "other_trader", "bank"):
        titles.register_key(world.uow, world[persona], custodial=True)
    return world


@pytest.fixture
def issued(titles_world) -> dict:
    """One bill, issued by the carrier to the trader (to order)."""
    return titles.issue_bill(titles_world.uow, titles_world["carrier"], bill()).bill
