"""A declaration on its way to release, through the service: agency decisions, the document check
of a yellow lane, payment, amendment, cancellation, post-release correction, exit; and the
notification each transition emits."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.customs.conftest import ALUMINIUM, CAR, ICS, LAPTOP, filing
from tradewindow.customs import service as customs
from tradewindow.platform.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tradewindow.platform.tables import outbox_events

CHERRIES = {  # fresh fruit: plant quarantine, no licence
    "tariff_code": "08092900", "description": "Fresh cherries", "origin": "CL", "quantity": "1000",
    "unit": "KGM", "net_mass_kg": "1000", "gross_mass_kg": "1100", "value": "8000.00",
}


@pytest.fixture
def cw(customs_world):
    """The customs world (no random selection or top-up at 8012: lanes come from profiles only)."""
    return customs_world


def lodge(cw, body, who="trader") -> dict:
    return customs.lodge_declaration(cw.uow, cw[who], body).declaration


def decide(cw, declaration, kind, decision, reason="", who="licensing_officer") -> dict:
    task = next(t for t in declaration["agency_tasks"] if t["kind"] == kind)
    return customs.decide_task(cw.uow, cw[who], task["id"], decision, reason)


def reread(cw, declaration, who="trader") -> dict:
    return customs.get_declaration(cw.uow, cw[who], declaration["id"])


def pay_all(cw, declaration) -> dict:
    return customs.record_payment(cw.uow, cw["trader"], declaration["id"], "payment", "BANK-1",
                                  Decimal(declaration["total_due"]))


def yellow_for_cars(cw) -> dict:
    return customs.save_lane_profile(cw.uow, cw["customs_officer"], "8012", {
        "name": "Passenger cars: document check", "lane": "yellow", "probability": 1,
        "conditions": {"tariff_prefixes": ["8703"]}})


def notification_codes(cw, declaration) -> list[str]:
    with cw.uow.read() as conn:
        payloads = conn.execute(select(outbox_events.c.payload).where(
            outbox_events.c.aggregate_id == declaration["id"]).order_by(outbox_events.c.id)).scalars()
        # Codes are namespaced by subject ("declaration.accepted"); the bare code is the transition.
        return [p["notification"]["code"].removeprefix("declaration.") for p in payloads]


# --- agencies ------------------------------------------------------------------------------------

def test_approving_the_only_task_releases_when_nothing_else_holds(cw):
    declaration = lodge(cw, filing("WF-1", CHERRIES, type="bonded_entry"))
    assert declaration["status"] == "agency_hold"
    assert [t["kind"] for t in declaration["agency_tasks"]] == ["quarantine_inspection"]
    decided = decide(cw, declaration, "quarantine_inspection", "approve", who="quarantine_officer")
    assert decided["status"] == "approved"
    after = reread(cw, declaration)
    assert after["status"] == "released"
    assert after["stages"]["tasks_done_at"] is not None and after["released_at"] is not None


def test_release_waits_for_every_task_and_then_for_the_taxes(cw):
    declaration = lodge(cw, filing("WF-2"))
    decide(cw, declaration, "ccc_check", "approve")
    assert reread(cw, declaration)["status"] == "agency_hold"
    decide(cw, declaration, "licence_write_off", "approve")
    assert reread(cw, declaration)["status"] == "taxes_due"
    assert pay_all(cw, declaration)["status"] == "released"


def test_requested_documents_send_the_task_back_to_its_queue_when_they_arrive(cw):
    declaration = lodge(cw, filing("WF-3", CHERRIES, type="bonded_entry"))
    decided = decide(cw, declaration, "quarantine_inspection", "request_documents",
                     "phytosanitary certificate", who="quarantine_officer")
    assert decided["status"] == "documents_requested"
    assert decided["declaration"]["status"] == "documents_requested"
    queue = customs.task_queue(cw.uow, cw["quarantine_officer"])
    assert [t["status"] for t in queue] == ["documents_requested"]
    with pytest.raises(Conflict):     # decided when pending, not while waiting for the documents
        decide(cw, declaration, "quarantine_inspection", "approve", who="quarantine_officer")
    after = customs.add_document(cw.uow, cw["trader"], declaration["id"], {
        "type": "certificate", "filename": "phyto.pdf", "content_type": "application/pdf",
        "content_base64": "JVBERi0xLjQ="})
    assert after["status"] == "agency_hold"
    assert [t["status"] for t in after["agency_tasks"]] == ["pending"]
    assert [d["filename"] for d in after["documents"]] == ["phyto.pdf"]
    decide(cw, declaration, "quarantine_inspection", "approve", who="quarantine_officer")
    assert reread(cw, declaration)["status"] == "released"


def test_a_refused_task_refuses_the_declaration(cw):
    declaration = lodge(cw, filing("WF-4"))
    decide(cw, declaration, "ccc_check", "refuse", "no CCC certificate for this model")
    after = reread(cw, declaration)
    assert after["status"] == "refused"
    ccc = next(t for t in after["agency_tasks"] if t["kind"] == "ccc_check")
    assert (ccc["status"], ccc["reason"]) == ("refused", "no CCC certificate for this model")


def test_refusing_or_requesting_documents_needs_a_reason(cw):
    declaration = lodge(cw, filing("WF-5"))
    for decision in ("refuse", "request_documents"):
        with pytest.raises(ValidationFailed) as refused:
            decide(cw, declaration, "ccc_check", decision, "  ")
        assert refused.value.problems[0].path == "reason"
    with pytest.raises(ValidationFailed):
        decide(cw, declaration, "ccc_check", "shrug")


def test_an_agency_decides_only_its_own_tasks(cw):
    declaration = lodge(cw, filing("WF-6"))
    with pytest.raises(NotFound):
        decide(cw, declaration, "ccc_check", "approve", who="quarantine_officer")
    with pytest.raises(Forbidden):
        decide(cw, declaration, "ccc_check", "approve", who="customs_officer")
    assert customs.task_queue(cw.uow, cw["quarantine_officer"]) == []
    assert len(customs.task_queue(cw.uow, cw["licensing_officer"])) == 2


# --- lanes and controls --------------------------------------------------------------------------

def test_a_yellow_lane_waits_for_the_document_check_then_for_the_next_hold(cw):
    yellow_for_cars(cw)
    declaration = lodge(cw, filing("WF-7"))
    assert (declaration["lane"], declaration["status"]) == ("yellow", "document_check")
    decide(cw, declaration, "ccc_check", "approve")
    decide(cw, declaration, "licence_write_off", "approve")
    assert reread(cw, declaration)["status"] == "document_check"   # the lane still holds the goods
    checked = customs.record_control_result(cw.uow, cw["customs_officer"], declaration["id"], True,
                                            "Invoice and CCC certificate agree")
    assert checked["status"] == "taxes_due"
    assert [(c["kind"], c["conform"]) for c in checked["controls"]] == [("document_check", True)]
    assert checked["stages"]["lane_cleared_at"] is not None
    with pytest.raises(Conflict):
        customs.record_control_result(cw.uow, cw["customs_officer"], declaration["id"], True, "again")


def test_a_conform_check_hands_over_to_the_agencies_still_deciding(cw):
    yellow_for_cars(cw)
    declaration = lodge(cw, filing("WF-8"))
    checked = customs.record_control_result(cw.uow, cw["customs_officer"], declaration["id"], True, "ok")
    assert checked["status"] == "agency_hold"


def test_a_check_that_does_not_conform_refuses_the_goods(cw):
    yellow_for_cars(cw)
    declaration = lodge(cw, filing("WF-9"))
    checked = customs.record_control_result(cw.uow, cw["customs_officer"], declaration["id"], False,
                                            "The invoice names another model")
    assert checked["status"] == "refused"
    assert checked["controls"][0]["findings"] == "The invoice names another model"


def test_only_customs_records_controls_and_only_with_findings(cw):
    yellow_for_cars(cw)
    declaration = lodge(cw, filing("WF-10"))
    with pytest.raises(Forbidden):
        customs.record_control_result(cw.uow, cw["trader"], declaration["id"], True, "fine by me")
    with pytest.raises(ValidationFailed):
        customs.record_control_result(cw.uow, cw["customs_officer"], declaration["id"], True, " ")
    green = lodge(cw, filing("WF-11", ICS))
    with pytest.raises(Conflict):
        customs.record_control_result(cw.uow, cw["customs_officer"], green["id"], True, "nothing to check")


# --- changes by the declarant --------------------------------------------------------------------

def test_an_amendment_before_release_is_a_new_version_assessed_again(cw):
    declaration = lodge(cw, filing("WF-12", ALUMINIUM))
    raised = filing("WF-12", {**ALUMINIUM, "value": "60000.00"})
    amended = customs.amend_declaration(cw.uow, cw["trader"], declaration["id"], raised, "price revised")
    assert amended["version"] == 2
    assert Decimal(amended["total_due"]) > Decimal(declaration["total_due"])
    assert amended["filing"]["invoice_total"] == "60000.00"
    versions = customs.history(cw.uow, cw["trader"], declaration["id"])
    assert [(v["version"], v["reason"]) for v in versions] == [(1, None), (2, "price revised")]
    assert versions[0]["assessment"]["totals"]["total"] == declaration["total_due"]
    assert amended["status"] == "taxes_due"


def test_an_amendment_adding_a_car_raises_its_agency_tasks(cw):
    declaration = lodge(cw, filing("WF-13", ALUMINIUM))
    amended = customs.amend_declaration(cw.uow, cw["trader"], declaration["id"],
                                        filing("WF-13", ALUMINIUM, CAR), "car added")
    assert {t["kind"] for t in amended["agency_tasks"]} == {"ccc_check", "licence_write_off"}
    assert amended["status"] == "agency_hold"


def test_an_amendment_is_checked_like_a_filing_and_keeps_reference_and_type(cw):
    declaration = lodge(cw, filing("WF-14", ALUMINIUM))
    with pytest.raises(ValidationFailed) as refused:
        customs.amend_declaration(cw.uow, cw["trader"], declaration["id"],
                                  filing("WF-14", {**ALUMINIUM, "unit": "NAR"}), "unit")
    assert refused.value.problems[0].code == "unit_mismatch"
    with pytest.raises(ValidationFailed) as refused:
        customs.amend_declaration(cw.uow, cw["trader"], declaration["id"], filing("OTHER", ALUMINIUM), "x")
    assert refused.value.problems[0].code == "reference_changed"
    assert reread(cw, declaration)["version"] == 1


def test_a_released_declaration_is_corrected_not_amended(cw):
    declaration = pay_all(cw, lodge(cw, filing("WF-15", ALUMINIUM)))
    assert declaration["status"] == "released"
    with pytest.raises(Conflict):
        customs.amend_declaration(cw.uow, cw["trader"], declaration["id"], filing("WF-15", ALUMINIUM), "x")
    with pytest.raises(Conflict):
        customs.cancel_declaration(cw.uow, cw["trader"], declaration["id"], "too late")


def test_a_correction_after_release_shows_the_difference_to_pay(cw):
    declaration = pay_all(cw, lodge(cw, filing("WF-16", ALUMINIUM)))
    corrected = customs.correct_declaration(cw.uow, cw["trader"], declaration["id"],
                                            filing("WF-16", {**ALUMINIUM, "value": "60000.00"}),
                                            "the invoice omitted a surcharge")
    difference = corrected["difference"]
    assert Decimal(difference["total"]) > 0
    assert Decimal(difference["total"]) == Decimal(corrected["total_due"]) - Decimal(declaration["total_due"])
    assert Decimal(difference["duty"]) == (Decimal(corrected["assessment"]["totals"]["duty"])
                                           - Decimal(declaration["assessment"]["totals"]["duty"]))
    assert corrected["version"] == 2
    assert corrected["status"] == "released"


def test_a_correction_lowering_the_value_shows_a_refund(cw):
    declaration = pay_all(cw, lodge(cw, filing("WF-17", ALUMINIUM)))
    corrected = customs.correct_declaration(cw.uow, cw["trader"], declaration["id"],
                                            filing("WF-17", {**ALUMINIUM, "value": "40000.00"}), "discount")
    assert Decimal(corrected["difference"]["total"]) < 0


def test_only_a_released_declaration_is_corrected(cw):
    declaration = lodge(cw, filing("WF-18", ALUMINIUM))
    with pytest.raises(Conflict):
        customs.correct_declaration(cw.uow, cw["trader"], declaration["id"], filing("WF-18", ALUMINIUM), "x")


def test_a_cancelled_declaration_takes_no_more_actions(cw):
    declaration = lodge(cw, filing("WF-19"))
    with pytest.raises(ValidationFailed):
        customs.cancel_declaration(cw.uow, cw["trader"], declaration["id"], "")
    cancelled = customs.cancel_declaration(cw.uow, cw["trader"], declaration["id"], "shipment lost")
    assert cancelled["status"] == "cancelled"
    assert cancelled["stages"]["cancelled_at"] is not None
    with pytest.raises(Conflict):
        customs.cancel_declaration(cw.uow, cw["trader"], declaration["id"], "again")
    with pytest.raises(Conflict):
        decide(cw, declaration, "ccc_check", "approve")
    with pytest.raises(Conflict):
        pay_all(cw, declaration)


def test_another_trader_cannot_cancel_or_pay(cw):
    declaration = lodge(cw, filing("WF-20", ALUMINIUM))
    with pytest.raises(NotFound):
        customs.cancel_declaration(cw.uow, cw["other_trader"], declaration["id"], "mine now")
    with pytest.raises(NotFound):
        customs.record_payment(cw.uow, cw["other_trader"], declaration["id"], "payment", "B",
                               Decimal(declaration["total_due"]))
    with pytest.raises(Forbidden):
        customs.cancel_declaration(cw.uow, cw["customs_officer"], declaration["id"], "officer")


# --- payment and exit ----------------------------------------------------------------------------

def test_a_payment_must_be_the_amount_due(cw):
    declaration = lodge(cw, filing("WF-21", ALUMINIUM))
    with pytest.raises(ValidationFailed) as refused:
        customs.record_payment(cw.uow, cw["trader"], declaration["id"], "payment", "BANK-1",
                               Decimal(declaration["total_due"]) - Decimal("0.01"))
    assert (refused.value.problems[0].path, refused.value.problems[0].code) == ("amount", "amount_mismatch")
    assert refused.value.status == 422
    assert reread(cw, declaration)["payments"] == []
    with pytest.raises(ValidationFailed):
        customs.record_payment(cw.uow, cw["trader"], declaration["id"], "payment", " ",
                               Decimal(declaration["total_due"]))
    paid = pay_all(cw, declaration)
    assert [(p["reference"], p["amount"]) for p in paid["payments"]] == [("BANK-1", declaration["total_due"])]
    with pytest.raises(Conflict):
        pay_all(cw, declaration)


def test_an_export_is_released_and_then_exits(cw):
    body = filing("WF-22", {**LAPTOP, "origin": "CN"}, type="export", country_of_destination="DE")
    body.pop("country_of_dispatch")
    declaration = lodge(cw, body)
    assert (declaration["status"], declaration["total_due"], declaration["agency_tasks"]) == ("released", "0.00", [])
    with pytest.raises(Forbidden):
        customs.record_exit(cw.uow, cw["trader"], declaration["id"])
    exited = customs.record_exit(cw.uow, cw["customs_officer"], declaration["id"])
    assert exited["status"] == "exited"
    assert exited["stages"]["exited_at"] is not None
    with pytest.raises(Conflict):
        customs.record_exit(cw.uow, cw["customs_officer"], declaration["id"])


def test_an_import_does_not_exit(cw):
    declaration = pay_all(cw, lodge(cw, filing("WF-23", ALUMINIUM)))
    with pytest.raises(Conflict) as refused:
        customs.record_exit(cw.uow, cw["customs_officer"], declaration["id"])
    assert refused.value.code == "not_an_export"


# --- notifications -------------------------------------------------------------------------------

def test_each_transition_emits_its_notification_in_order(cw):
    yellow_for_cars(cw)
    declaration = lodge(cw, filing("WF-24"))
    customs.record_control_result(cw.uow, cw["customs_officer"], declaration["id"], True, "ok")
    decide(cw, declaration, "ccc_check", "request_documents", "CCC certificate")
    customs.add_document(cw.uow, cw["trader"], declaration["id"], {
        "type": "certificate", "filename": "ccc.pdf", "content_type": "application/pdf",
        "content_base64": "JVBERi0xLjQ="})
    decide(cw, declaration, "ccc_check", "approve")
    decide(cw, declaration, "licence_write_off", "approve")
    pay_all(cw, reread(cw, declaration))
    assert notification_codes(cw, declaration) == [
        "accepted", "lane_assigned", "document_check",
        "agency_hold",                      # the check conforms; the agencies still decide
        "documents_requested",
        "agency_hold",                      # the documents arrived
        "agency_decided", "agency_decided", "taxes_due",
        "paid", "released",
    ]


def test_refusal_cancellation_amendment_correction_and_exit_are_notified(cw):
    refused = lodge(cw, filing("WF-25"))
    decide(cw, refused, "ccc_check", "refuse", "no certificate")
    assert notification_codes(cw, refused)[-1] == "refused"

    cancelled = lodge(cw, filing("WF-26", ALUMINIUM))
    customs.amend_declaration(cw.uow, cw["trader"], cancelled["id"],
                              filing("WF-26", {**ALUMINIUM, "value": "51000.00"}), "price")
    customs.cancel_declaration(cw.uow, cw["trader"], cancelled["id"], "sold elsewhere")
    assert notification_codes(cw, cancelled) == ["accepted", "lane_assigned", "taxes_due", "amended", "cancelled"]

    corrected = pay_all(cw, lodge(cw, filing("WF-27", ALUMINIUM)))
    customs.correct_declaration(cw.uow, cw["trader"], corrected["id"],
                                filing("WF-27", {**ALUMINIUM, "value": "50100.00"}), "freight")
    assert notification_codes(cw, corrected)[-3:] == ["paid", "released", "corrected"]

    body = filing("WF-28", LAPTOP, type="export", country_of_destination="DE")
    exported = lodge(cw, body)
    customs.record_exit(cw.uow, cw["customs_officer"], exported["id"])
    assert notification_codes(cw, exported) == ["accepted", "lane_assigned", "released", "exited"]


def test_a_notification_names_the_trader_and_the_declarant_as_its_audience(cw):
    declaration = lodge(cw, filing("WF-29", ALUMINIUM))
    with cw.uow.read() as conn:
        event = conn.execute(select(outbox_events).where(
            outbox_events.c.aggregate_id == declaration["id"])).mappings().first()
    notification = event["payload"]["notification"]
    assert notification["audiences"] == [cw.enterprises["trader"]["id"]]
    assert notification["message"] == f"Declaration {declaration['number']} accepted."
    assert event["owner_enterprise_id"] == cw.enterprises["trader"]["id"]
