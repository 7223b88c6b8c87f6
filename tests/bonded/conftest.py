"""Bonded fixtures: the customs world, an account book for the car importer, and helpers that
drive declarations through the single window and relay their events."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.customs.conftest import CAR, customs_world, filing  # noqa: F401 - fixture re-exported
from tradewindow.bonded import service as bonded
from tradewindow.customs import service as customs
from tradewindow.platform.db import clock_at
from tradewindow.platform.outbox import relay_pending

# North American VINs (their check digits verified); the German ones carry no check digit.
VINS = ["1M8GDM9AXKP042788", "WDD2220821A000001", "WDD2220821A000002"]
ENTRY_DAY = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)      # USD at 7.1853 in the demo schedule
RELEASE_DAY = datetime(2025, 6, 10, 2, 0, tzinfo=UTC)    # USD at 7.1811


@pytest.fixture
def bw(customs_world):  # noqa: F811
    return customs_world   # (per-process caches are cleared after every test by tests/conftest.py)


@pytest.fixture
def book(bw) -> dict:
    return bonded.open_book(bw.uow, bw["trader"], {"kind": "bonded_logistics", "name": "Xiyong vehicle warehouse"})


def cars(n: int, value: str = "50000.00") -> dict:
    return {**CAR, "quantity": str(n), "value": str(Decimal(value) * n),
            "net_mass_kg": str(1650 * n), "gross_mass_kg": str(1720 * n)}


def lodge_entry(bw, reference: str = "ENTRY-1", n: int = 3) -> dict:
    """A bonded_entry declaration of n cars by rail: no tax, released at once (green, no tasks)."""
    declaration = customs.lodge_declaration(bw.uow, bw["trader"], filing(reference, cars(n), type="bonded_entry"))
    assert declaration.declaration["status"] == "released"
    return declaration.declaration


def admit(bw, book: dict, n: int = 3, reference: str = "ENTRY-1", vins: list[str] | None = None) -> dict:
    with clock_at(ENTRY_DAY):
        declaration = lodge_entry(bw, reference, n)
        bonded.admit_entry(bw.uow, bw["trader"], book["id"],
                           {"declaration": declaration["number"], "serials": {"1": vins or VINS[:n]}})
    return declaration


def relay(bw) -> None:
    while relay_pending(bw.uow):
        pass


def clear(bw, declaration: dict) -> dict:
    """Approve the agency tasks and pay what is due, as the officers and the trader would."""
    for task in declaration["agency_tasks"]:
        if task["status"] == "pending":
            customs.decide_task(bw.uow, bw["licensing_officer"], task["id"], "approve")
    current = customs.get_declaration(bw.uow, bw["trader"], declaration["id"])
    if current["status"] == "taxes_due":
        current = customs.record_payment(bw.uow, bw["trader"], declaration["id"], "payment", "BANK-1",
                                         Decimal(current["total_due"]))
    return current
