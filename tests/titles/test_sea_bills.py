"""A sea bill of lading is the same transferable record as a railway bill (MLETR): issued to a
named holder or to order, one holder at a time, endorsed, pledged, released, taken over,
surrendered or voided by the same rules, signed and chained the same way; only its particulars
differ (vessel, voyage, ports of loading and discharge). Customs honours either kind."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.conftest import USCC
from tests.customs.conftest import ICS, customs_world, filing  # noqa: F401 - customs_world is a fixture
from tests.titles.conftest import bill
from tradewindow.customs import service as customs
from tradewindow.platform.errors import DomainError, ValidationFailed
from tradewindow.platform.outbox import relay_pending
from tradewindow.platform.tables import outbox_events
from tradewindow.titles import model
from tradewindow.titles import service as titles
from tradewindow.titles.model import Kind
from tradewindow.titles.tables import bills_of_lading

SEA = "COSU6281734010"


def sea_bill(number: str = SEA, **overrides) -> dict:
    """Rail from Chongqing to Qinzhou, then by sea to Singapore on the Land–Sea corridor."""
    return bill(number, **{"kind": "sea_bill", "vessel": "Cosco Shipping Aries", "voyage": "062w",
                           "port_of_loading": "CNQZH", "port_of_discharge": "SGSIN",
                           "place_of_receipt": ..., "place_of_delivery": ..., **overrides})


def problems_of(raw: dict) -> set[tuple[str, str]]:
    filed, problems = model.check_bill(raw)
    return {(p.path, p.code) for p in problems.items}


# --- the particulars, pure -----------------------------------------------------------------------

def test_a_sea_bill_names_its_vessel_voyage_and_ports_and_may_run_port_to_port():
    filed, problems = model.check_bill(sea_bill())
    assert not problems and filed is not None
    assert (filed.kind, filed.vessel, filed.voyage) == (Kind.SEA_BILL, "COSCO SHIPPING ARIES", "062W")
    assert (filed.place_of_receipt, filed.place_of_delivery) == ("CNQZH", "SGSIN")
    filed, _ = model.check_bill(sea_bill(place_of_receipt="CNCKG"))
    assert (filed.place_of_receipt, filed.port_of_loading) == ("CNCKG", "CNQZH")


def test_every_missing_or_wrong_sea_particular_is_reported_at_once():
    assert problems_of(sea_bill(vessel=..., voyage=..., port_of_loading="CN-QZ", port_of_discharge=...)) == {
        ("vessel", "required"), ("voyage", "required"), ("port_of_loading", "invalid_locode"),
        ("port_of_discharge", "required")}
    assert problems_of(sea_bill(port_of_discharge="CNQZH")) == {("port_of_discharge", "same_port")}
    assert problems_of(bill(kind="air_waybill")) == {("kind", "invalid_choice")}


def test_a_railway_bill_has_no_vessel_and_still_needs_its_places():
    assert problems_of(bill(vessel="Cosco Shipping Aries", port_of_loading="CNQZH")) == {
        ("vessel", "not_for_this_kind"), ("port_of_loading", "not_for_this_kind")}
    assert problems_of(bill(kind="railway_bill", place_of_delivery=...)) == {("place_of_delivery", "required")}


def _particulars(kind: Kind = Kind.RAILWAY_BILL, **sea) -> model.Particulars:
    filed, _ = model.check_bill(sea_bill(**sea) if kind is Kind.SEA_BILL else bill())
    assert filed is not None
    return model.Particulars(
        bol_number=filed.bol_number, issuer="carrier", shipper="shipper", consignee=None,
        goods_description=filed.goods_description, packages=filed.packages, gross_mass_kg=filed.gross_mass_kg,
        containers=filed.containers, place_of_receipt=filed.place_of_receipt,
        place_of_delivery=filed.place_of_delivery, consignment_reference=filed.consignment_reference,
        kind=filed.kind, vessel=filed.vessel, voyage=filed.voyage, port_of_loading=filed.port_of_loading,
        port_of_discharge=filed.port_of_discharge)


def test_a_railway_bill_is_digested_as_before_and_a_sea_bill_with_its_vessel_and_ports():
    railway = _particulars().as_json()
    assert "kind" not in railway and "vessel" not in railway      # the digests of existing chains hold
    sea = _particulars(Kind.SEA_BILL)
    assert sea.as_json()["kind"] == "sea_bill" and sea.as_json()["port_of_discharge"] == "SGSIN"
    assert model.document_digest(sea) != model.document_digest(_particulars(Kind.SEA_BILL, vessel="Other Ship"))


# --- through the service, on SQLite and PostgreSQL -----------------------------------------------

def test_a_sea_bill_goes_through_every_transfer_like_a_railway_bill(titles_world):
    w = titles_world
    issued = titles.issue_bill(w.uow, w["carrier"], sea_bill()).bill
    assert (issued["kind"], issued["kind_name"], issued["vessel"], issued["port_of_loading"]) == (
        "sea_bill", "sea bill of lading", "COSCO SHIPPING ARIES", "CNQZH")
    titles.endorse(w.uow, w["trader"], SEA, USCC["other_trader"])
    titles.pledge(w.uow, w["other_trader"], SEA, USCC["bank"])
    with pytest.raises(DomainError) as locked:
        titles.endorse(w.uow, w["other_trader"], SEA, USCC["trader"])
    assert locked.value.code == "pledged"
    titles.release_pledge(w.uow, w["bank"], SEA)
    done = titles.surrender(w.uow, w["other_trader"], SEA)
    assert done["status"] == "surrendered" and done["holder"]["uscc"] == USCC["carrier"]
    report = titles.verify(w.uow, w["customs_officer"], SEA)
    assert report["valid"] and report["length"] == 5


def test_a_changed_vessel_is_detected_by_verification(titles_world):
    w = titles_world
    titles.issue_bill(w.uow, w["carrier"], sea_bill())
    with w.uow.transaction() as conn:
        conn.execute(update(bills_of_lading).values(vessel="GHOST SHIP"))
    report = titles.verify(w.uow, w["carrier"], SEA)
    assert not report["valid"] and report["code"] == "document_mismatch"


def test_only_the_sea_bills_or_only_the_railway_bills_are_listed(titles_world):
    w = titles_world
    titles.issue_bill(w.uow, w["carrier"], sea_bill())
    titles.issue_bill(w.uow, w["carrier"], bill())
    numbers = {kind: [b["bol_number"] for b in titles.list_bills(w.uow, w["trader"], kind=kind)["items"]]
               for kind in ("sea_bill", "railway_bill")}
    assert numbers == {"sea_bill": [SEA], "railway_bill": ["CQDUI2026000001"]}


def test_the_notification_names_the_kind_of_bill(titles_world):
    w = titles_world
    titles.issue_bill(w.uow, w["carrier"], sea_bill())
    titles.endorse(w.uow, w["trader"], SEA, USCC["other_trader"])
    with w.uow.read() as conn:
        payloads = [r.payload for r in conn.execute(select(outbox_events).where(
            outbox_events.c.event_type == "titles.bill_endorsed"))]
    assert [(p["kind"], p["notification"]["message"]) for p in payloads] == [
        ("sea_bill", f"Sea bill of lading {SEA} was endorsed to a new holder.")]


def test_customs_releases_goods_under_a_sea_bill_only_to_its_holder(customs_world, titles_world):  # noqa: F811
    uow = customs_world.uow
    titles.issue_bill(uow, titles_world["carrier"], sea_bill())
    titles.endorse(uow, titles_world["trader"], SEA, USCC["other_trader"])
    body = filing("LRN-SEA", ICS, type="bonded_entry", transport_document=SEA)
    declaration = customs.lodge_declaration(uow, customs_world["trader"], body).declaration
    assert declaration["status"] == "title_hold"
    assert titles.holder_of(uow, SEA).entitled_to_goods == titles_world.enterprises["other_trader"]["id"]
    titles.endorse(uow, titles_world["other_trader"], SEA, USCC["trader"])
    relay_pending(uow)
    assert customs.get_declaration(uow, customs_world["trader"], declaration["id"])["status"] == "released"


def test_a_sea_bill_with_a_wrong_particular_is_refused_with_every_problem(titles_world):
    with pytest.raises(ValidationFailed) as caught:
        titles.issue_bill(titles_world.uow, titles_world["carrier"], sea_bill(voyage=..., shipper_uscc=USCC["spare2"]))
    assert {(p.path, p.code) for p in caught.value.problems} == {
        ("voyage", "required"), ("shipper_uscc", "unknown_enterprise")}
