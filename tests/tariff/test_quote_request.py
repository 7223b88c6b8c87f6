"""The raw quote request: every problem is reported at once, with its path and a stable code."""

from __future__ import annotations

from datetime import date

import pytest

from tradewindow.platform.errors import ValidationFailed
from tradewindow.tariff.model import (
    DutyKind,
    Incoterm,
    Regime,
    Schedule,
    parse_quote_request,
    quote,
    quote_request_problems,
)

from .builders import AGREEMENTS, D, tariff_line, usd_at_7_1795

TODAY = date(2025, 6, 2)
CAR = tariff_line(code="87032351", mfn="0.15", general="2.3", ct="0.09")
SCHEDULE = Schedule({"87032351": CAR}, AGREEMENTS, usd_at_7_1795(TODAY))


def problems_of(raw) -> list[tuple[str, str]]:
    return [(p.path, p.code) for p in quote_request_problems(raw, SCHEDULE, TODAY)]


def car_item(**changes):
    raw = {"tariff_code": "8703.23.51", "origin": "DE", "currency": "USD",
           "customs_value": "50000.00", "quantity": "1", "unit": "unit"}
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def test_a_good_request_resolves_its_line_and_the_exchange_rate_of_the_day():
    request = parse_quote_request({"regime": "general", "items": [car_item()]}, SCHEDULE, TODAY)
    (item,) = request.items
    assert (request.regime, request.on_date, item.line.code, item.valuation.exchange_rate) == (
        Regime.GENERAL, TODAY, "87032351", D("7.1795"))
    quoted = quote(request, SCHEDULE.agreements())
    assert quoted.as_dict()["items"][0]["vat"] == "58974.46"


def test_an_exchange_rate_given_with_the_item_overrides_the_table():
    request = parse_quote_request({"items": [car_item(exchange_rate="7.2")]}, SCHEDULE, TODAY)
    assert request.items[0].valuation.exchange_rate == D("7.2")


def test_every_problem_of_a_bad_request_is_reported_at_once():
    raw = {"regime": "retail", "date": "2025-13-01", "colour": "red", "items": [
        {"tariff_code": "99999999", "origin": "XX", "currency": "ABC", "customs_value": "abc",
         "price": "-1", "quantity": "0", "incoterm": "EXW"},
        {"currency": "USD", "quantity": "1", "rates": {"duty": "1.5", "vat": "-0.1",
                                                       "consumption_tax": "1", "bogus": "1"}},
        "not an object",
    ]}
    assert sorted(problems_of(raw)) == sorted([
        ("colour", "unknown_field"),
        ("regime", "unknown_regime"),
        ("date", "invalid_date"),
        ("items[0].tariff_code", "unknown_tariff_code"),
        ("items[0].origin", "unknown_country"),
        ("items[0].currency", "unknown_currency"),
        ("items[0]", "both_customs_value_and_price"),
        ("items[0].customs_value", "not_a_number"),
        ("items[0].price", "negative_amount"),
        ("items[0].incoterm", "unknown_incoterm"),
        ("items[0].quantity", "not_positive"),
        ("items[1].rates.bogus", "unknown_field"),
        ("items[1].rates.duty", "rate_out_of_range"),
        ("items[1].rates.vat", "negative_amount"),
        ("items[1].rates.consumption_tax", "rate_out_of_range"),
        ("items[1]", "neither_customs_value_nor_price"),
        ("items[2]", "not_an_object"),
    ])


def test_a_request_without_items_is_refused():
    assert problems_of({"items": []}) == [("items", "empty")]
    assert problems_of({}) == [("items", "required")]


def test_no_exchange_rate_for_the_date_is_reported_against_the_currency():
    assert problems_of({"items": [car_item(currency="EUR")]}) == [
        ("items[0].currency", "no_exchange_rate")]


def test_a_price_needs_an_incoterm_and_fob_needs_the_freight():
    raw = {"items": [car_item(customs_value=None, price="1000"),
                     car_item(customs_value=None, price="1000", incoterm="FOB")]}
    assert problems_of(raw) == [("items[0].incoterm", "required"), ("items[1].freight", "required")]


def test_freight_is_not_applicable_to_a_cfr_price():
    raw = {"items": [car_item(customs_value=None, price="1000", incoterm="CFR", freight="10")]}
    assert problems_of(raw) == [("items[0].freight", "not_applicable")]


def test_a_fob_price_with_freight_and_unknown_insurance_is_accepted():
    raw = {"items": [car_item(customs_value=None, price="1000", incoterm="fob", freight="50",
                              insurance=None)]}
    (item,) = parse_quote_request(raw, SCHEDULE, TODAY).items
    assert (item.valuation.incoterm, item.valuation.insurance) == (Incoterm.FOB, None)


def test_floats_are_refused_as_not_a_number():
    assert problems_of({"items": [car_item(customs_value=50000.5)]}) == [
        ("items[0].customs_value", "not_a_number")]


def test_a_what_if_quote_without_a_tariff_code_needs_duty_and_vat_rates():
    raw = {"items": [{"currency": "USD", "customs_value": "10", "quantity": "1",
                      "rates": {"consumption_tax": "0.1"}}]}
    assert problems_of(raw) == [("items[0].rates.duty", "required"),
                                ("items[0].rates.vat", "required")]


def test_a_what_if_quote_with_rates_only_is_an_override():
    raw = {"items": [{"currency": "USD", "customs_value": "50000", "quantity": "1",
                      "exchange_rate": "7.1795",
                      "rates": {"duty": "0.15", "consumption_tax": "0.09", "vat": "0.13"}}]}
    quoted = quote(parse_quote_request(raw, SCHEDULE, TODAY), AGREEMENTS)
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.OVERRIDE
    assert quoted.totals.total == D("153649.19")


def test_an_unknown_agreement_on_a_certificate_is_refused():
    raw = {"items": [car_item(origin_certificate={"agreement": "CN-MARS", "number": "1"})]}
    assert problems_of(raw) == [("items[0].origin_certificate.agreement", "unknown_agreement")]


def test_a_certificate_without_an_origin_is_refused():
    raw = {"items": [car_item(origin=None, origin_certificate={"agreement": "CN-AU",
                                                               "number": "1"})]}
    assert problems_of(raw) == [("items[0].origin", "required")]


def test_a_unit_other_than_the_lines_unit_is_refused():
    assert problems_of({"items": [car_item(unit="kg")]}) == [("items[0].unit", "unit_mismatch")]


def test_an_invalid_tariff_code_is_refused():
    assert problems_of({"items": [car_item(tariff_code="8703")]}) == [
        ("items[0].tariff_code", "invalid_tariff_code")]


def test_parse_raises_validation_failed_with_all_problems():
    with pytest.raises(ValidationFailed) as refused:
        parse_quote_request({"items": [car_item(currency="ABC", quantity="-1")]}, SCHEDULE, TODAY)
    assert {p.code for p in refused.value.problems} == {"unknown_currency", "negative_amount"}
