"""Three-document matching: every reason code, any arrival order, repeats and duplicates, the 70 %
tax as the tariff's quote engine computes it."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from tests.ecommerce.conftest import BUYER, OTHER_BUYER, Parcel, send_all
from tradewindow.ecommerce import model, service
from tradewindow.ecommerce.model import Kind
from tradewindow.platform.errors import Conflict, Forbidden, ValidationFailed
from tradewindow.tariff import service as tariff


def decided(uow, world, parcel: Parcel) -> dict:
    received = send_all(uow, world, parcel)
    assert received.parcel is not None
    return service.get_parcel(uow, world["customs_officer"], parcel.order_no)["result"]


def test_a_clean_parcel_is_released_with_its_tax_and_counts_toward_the_year(cbec_world, uow):
    parcel = Parcel(value="300.00")
    result = decided(uow, cbec_world, parcel)
    assert result["decision"] == "release" and result["reasons"] == []
    assert (result["customs_value"], result["duty"], result["vat"], result["total_tax"]) == (
        "300.00", "0.00", "18.90", "18.90")
    assert result["buyer_year_total_after"] == "300.00"
    assert result["waybill_no"] == parcel.waybill["waybill_no"]


@pytest.mark.parametrize("order", list(itertools.permutations(("order", "payment", "waybill"))))
def test_the_documents_may_arrive_in_any_order_and_the_last_one_decides(cbec_world, uow, order):
    parcel = Parcel()
    senders = {"order": "platform", "payment": "payment", "waybill": "logistics"}
    for index, kind in enumerate(order):
        received = service.submit(uow, cbec_world[senders[kind]], Kind(kind), getattr(parcel, kind))
        assert received.created
        assert (received.parcel is None) == (index < 2)
    assert received.parcel["decision"] == "release"


def test_a_waiting_parcel_says_which_documents_are_in(cbec_world, uow):
    parcel = Parcel()
    service.submit(uow, cbec_world["payment"], Kind.PAYMENT, parcel.payment)
    seen = service.get_parcel(uow, cbec_world["payment"], parcel.order_no)
    assert seen["status"] == "waiting" and seen["result"] is None
    assert seen["documents"]["order"] is None and seen["documents"]["payment"]["payment_no"] == f"PAY-{parcel.order_no}"


def test_the_same_document_again_is_a_repeat_answered_as_the_first(cbec_world, uow):
    parcel = Parcel()
    first = send_all(uow, cbec_world, parcel)
    again = service.submit(uow, cbec_world["logistics"], Kind.WAYBILL, dict(parcel.waybill))
    assert not again.created and again.parcel == first.parcel
    # "1.10" is the same weight as "1.1": the content, not its spelling, makes a repeat
    assert not service.submit(uow, cbec_world["logistics"], Kind.WAYBILL,
                              {**parcel.waybill, "gross_weight_kg": "1.10"}).created


def test_a_different_document_under_a_used_number_is_a_duplicate_and_the_first_stands(cbec_world, uow):
    parcel = Parcel()
    send_all(uow, cbec_world, parcel)
    with pytest.raises(Conflict) as refused:
        service.submit(uow, cbec_world["platform"], Kind.ORDER, {**parcel.order, "goods_value": "1.00"})
    assert refused.value.code == "duplicate"
    with pytest.raises(Conflict) as second_payment:
        service.submit(uow, cbec_world["payment"], Kind.PAYMENT, {**parcel.payment, "payment_no": "PAY-OTHER"})
    assert second_payment.value.code == "duplicate" and second_payment.value.problems[0].path == "order_no"
    seen = service.get_parcel(uow, cbec_world["customs_officer"], parcel.order_no)
    assert seen["documents"]["order"]["goods_value"] == "300"
    assert seen["result"]["decision"] == "release"


def test_the_same_number_from_another_platform_is_a_duplicate(cbec_world, uow):
    parcel = Parcel()
    service.submit(uow, cbec_world["platform"], Kind.ORDER, parcel.order)
    with pytest.raises(Conflict):
        service.submit(uow, cbec_world["other_platform"], Kind.ORDER, parcel.order)


def spoil(parcel: Parcel, document: str, **changes) -> Parcel:
    getattr(parcel, document).update(changes)
    return parcel


@pytest.mark.parametrize(("reason", "make"), [
    ("payer_mismatch", lambda: spoil(Parcel(), "payment", payer_id_number=OTHER_BUYER)),
    ("amount_mismatch", lambda: spoil(Parcel(), "payment", amount_paid="1.00")),
    ("consignee_mismatch", lambda: spoil(Parcel(), "waybill", consignee_address="北京市朝阳区1号")),
    ("consignee_mismatch", lambda: spoil(Parcel(), "waybill", consignee_name="李四")),
    ("not_on_positive_list", lambda: Parcel(code="87032110", tax_withheld="0")),
    ("unknown_tariff_code", lambda: Parcel(code="99999999", tax_withheld="0")),
    ("unknown_tariff_code", lambda: Parcel(code="0402", tax_withheld="0")),
    ("tax_withheld_mismatch", lambda: Parcel(tax_withheld="1.00")),
    ("order_limit_exceeded", lambda: Parcel(value="5000.01", quantity="2", tax_withheld="0")),
])
def test_each_mismatch_rejects_the_parcel_with_its_reason(cbec_world, uow, reason, make):
    result = decided(uow, cbec_world, make())
    assert result["decision"] == "reject"
    assert reason in result["reasons"]
    assert result["counted"] == "0.00" and result["buyer_year_total_after"] == "0.00"


def test_an_invalid_buyer_id_is_a_reason_not_a_malformed_order(cbec_world, uow):
    wrong = BUYER[:-1] + ("0" if BUYER[-1] != "0" else "1")
    result = decided(uow, cbec_world, Parcel(buyer=wrong))
    assert result["decision"] == "reject" and result["reasons"] == ["invalid_buyer_id"]


def test_every_reason_found_is_given_not_only_the_first(cbec_world, uow):
    parcel = spoil(spoil(Parcel(tax_withheld="5.00"), "payment", payer_id_number=OTHER_BUYER, amount_paid="1"),
                   "waybill", consignee_name="李四")
    result = decided(uow, cbec_world, parcel)
    assert result["reasons"] == ["payer_mismatch", "amount_mismatch", "consignee_mismatch", "tax_withheld_mismatch"]


def test_the_order_limit_edge_is_inclusive(cbec_world, uow):
    at_limit = Parcel(value="5000.00", quantity="2")
    assert decided(uow, cbec_world, at_limit)["decision"] == "release"
    over = Parcel(value="4990.00", freight="10.01", quantity="2", tax_withheld="0")
    assert decided(uow, cbec_world, over)["reasons"] == ["order_limit_exceeded"]


def test_freight_counts_and_a_discount_lowers_the_customs_value(cbec_world, uow):
    result = decided(uow, cbec_world, Parcel(value="300.00", freight="20.00", discount="50.00"))
    assert result["customs_value"] == "270.00"
    assert result["vat"] == "17.01"     # 270.00 × 9 % = 24.30, × 70 %


def test_cosmetics_pay_70_percent_of_consumption_tax_and_vat_as_the_quote_engine_says(cbec_world, uow):
    customs = cbec_world["customs_officer"]
    quote = tariff.quote(uow, customs, {"regime": "cbec", "date": "2026-11-11", "items": [
        {"tariff_code": "33049900", "currency": "CNY", "customs_value": "1000.00", "quantity": "1"}]})
    assert quote["totals"]["consumption_tax"] == "123.53" and quote["totals"]["vat"] == "107.06"
    parcel = Parcel(value="1000.00", code="33049900", tax_withheld=quote["totals"]["total"])
    result = decided(uow, cbec_world, parcel)
    assert result["decision"] == "release"
    assert (result["duty"], result["consumption_tax"], result["vat"], result["total_tax"]) == (
        quote["totals"]["duty"], "123.53", "107.06", "230.59")


def test_items_share_the_freight_and_discount_and_are_taxed_line_by_line(cbec_world, uow):
    parcel = Parcel(value="1300.00", code="33049900", freight="30.00", discount="100.00")
    parcel.order["items"] = [
        {"tariff_code": "33049900", "description": "Serum", "quantity": "1", "unit": "bottle",
         "unit_price": "1000.00"},
        {"tariff_code": "04022100", "description": "Milk powder", "quantity": "2", "unit": "can",
         "unit_price": "150.00"}]
    quote = tariff.quote(uow, cbec_world["customs_officer"], model.quote_request(
        model.parse_order(parcel.order), model.parse_order(parcel.order).ordered_at.date()))
    parcel.order["tax_withheld"] = quote["totals"]["total"]
    parcel.payment["amount_paid"] = str(Decimal("1230.00") + Decimal(quote["totals"]["total"]))
    result = decided(uow, cbec_world, parcel)
    assert result["decision"] == "release" and result["customs_value"] == "1230.00"
    assert result["total_tax"] == quote["totals"]["total"]
    assert sum(Decimal(i["customs_value_cny"]) for i in quote["items"]) == Decimal("1230.00")


def test_a_single_indivisible_item_above_5000_pays_full_taxes_and_counts(cbec_world, uow):
    # a laptop: MFN 0 %, VAT 13 % in full (no 70 %)
    parcel = Parcel(value="6000.00", code="84713000", tax_withheld="780.00")
    result = decided(uow, cbec_world, parcel)
    assert result["decision"] == "release" and result["vat"] == "780.00"
    assert result["buyer_year_total_after"] == "6000.00"


def test_records_are_checked_with_every_problem_at_once(cbec_world, uow):
    with pytest.raises(ValidationFailed) as refused:
        service.submit(uow, cbec_world["platform"], Kind.ORDER, {
            "order_no": "X", "ordered_at": "yesterday", "currency": "USD", "goods_value": 1.5, "colour": "red",
            "items": [{"tariff_code": "04022100", "quantity": "0", "unit_price": "1.001", "origin": "XX"}]})
    codes = {(p.path, p.code) for p in refused.value.problems}
    assert {("colour", "unknown_field"), ("ordered_at", "invalid_datetime"), ("currency", "invalid_choice"),
            ("goods_value", "not_a_number"), ("platform_code", "required"), ("items[0].quantity", "not_positive"),
            ("items[0].unit_price", "too_precise"), ("items[0].origin", "unknown_country"),
            ("items[0].description", "required")} <= codes


def test_each_document_comes_from_its_own_kind_of_party(cbec_world, uow):
    parcel = Parcel()
    for who, kind in (("payment", Kind.ORDER), ("platform", Kind.PAYMENT), ("trader", Kind.WAYBILL),
                      ("customs_officer", Kind.ORDER)):
        with pytest.raises(Forbidden):
            service.submit(uow, cbec_world[who], kind, getattr(parcel, kind.value))
