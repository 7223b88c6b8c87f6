"""Two-step declaration: a summary filing releases the goods; the complete filing follows within
14 days of release, or the declaration is flagged and notified as late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.customs.conftest import ALUMINIUM, ICS, filing
from tradewindow.customs import service as customs
from tradewindow.platform.db import clock_at
from tradewindow.platform.errors import Conflict, ValidationFailed
from tradewindow.platform.tables import outbox_events

LODGED = datetime(2025, 6, 3, 2, 0, tzinfo=UTC)


def _summary(reference: str = "LRN-2S", item: dict = ALUMINIUM) -> dict:
    core = {k: v for k, v in item.items() if k not in ("net_mass_kg", "gross_mass_kg")}
    return filing(reference, core, filing_mode="summary")


def _release(world, declaration: dict) -> dict:
    return customs.record_payment(world.uow, world["trader"], declaration["id"], "guarantee", "G-1",
                                  Decimal(declaration["total_due"]))


def test_a_summary_filing_without_masses_is_accepted_and_released_against_a_guarantee(customs_world):
    with clock_at(LODGED):
        declaration = customs.lodge_declaration(customs_world.uow, customs_world["trader"], _summary()).declaration
        released = _release(customs_world, declaration)
    assert declaration["filing_mode"] == "summary"
    assert released["status"] == "released"
    assert str(released["complete_due_day"]) == "2025-06-17"


def test_a_complete_filing_still_needs_the_masses(customs_world):
    body = filing("LRN-2C", {k: v for k, v in ICS.items() if k != "net_mass_kg"})
    with pytest.raises(ValidationFailed) as refused:
        customs.lodge_declaration(customs_world.uow, customs_world["trader"], body)
    assert [(p.path, p.code) for p in refused.value.problems] == [("items[0].net_mass_kg", "required")]


def test_the_complete_filing_is_checked_in_full_and_shows_the_difference(customs_world):
    uow, trader = customs_world.uow, customs_world["trader"]
    with clock_at(LODGED):
        declaration = customs.lodge_declaration(uow, trader, _summary()).declaration
        _release(customs_world, declaration)
    with clock_at(LODGED + timedelta(days=3)):
        with pytest.raises(ValidationFailed):
            customs.complete_declaration(uow, trader, declaration["id"], _summary())   # masses missing
        complete = filing("LRN-2S", {**ALUMINIUM, "value": "60000.00"})
        done = customs.complete_declaration(uow, trader, declaration["id"], complete)
    assert done["completed_at"] is not None
    assert Decimal(done["difference"]["total"]) > 0
    assert done["complete_filing_overdue"] is False
    with pytest.raises(Conflict) as again:
        customs.complete_declaration(uow, trader, declaration["id"], complete)
    assert again.value.problems[0].code == "already_completed"


def test_a_late_complete_filing_is_flagged_and_notified_once(customs_world):
    uow, trader = customs_world.uow, customs_world["trader"]
    with clock_at(LODGED):
        declaration = customs.lodge_declaration(uow, trader, _summary()).declaration
        _release(customs_world, declaration)
    with clock_at(LODGED + timedelta(days=20)):
        assert customs.get_declaration(uow, trader, declaration["id"])["complete_filing_overdue"] is True
        assert customs.flag_overdue_complete_filings(uow) == 1
        assert customs.flag_overdue_complete_filings(uow) == 0
    with uow.read() as conn:
        codes = [p["notification"]["code"] for p in conn.execute(select(outbox_events.c.payload)).scalars()
                 if "notification" in p]
    assert codes.count("declaration.complete_filing_overdue") == 1


def test_a_complete_declaration_cannot_be_completed_again(customs_world):
    uow, trader = customs_world.uow, customs_world["trader"]
    declaration = customs.lodge_declaration(uow, trader, filing("LRN-2X", ICS)).declaration
    with pytest.raises(Conflict) as refused:
        customs.complete_declaration(uow, trader, declaration["id"], filing("LRN-2X", ICS))
    assert refused.value.problems[0].code == "not_a_summary"
