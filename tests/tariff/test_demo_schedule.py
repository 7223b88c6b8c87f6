"""The demo schedule shipped in tradewindow/tariff/data: it parses cleanly, survives the round
trip unchanged, and quotes as the rules say."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tradewindow.tariff import model
from tradewindow.tariff.model import (
    AGREEMENT_COLUMNS,
    EXCHANGE_RATE_COLUMNS,
    SCHEDULE_COLUMNS,
    DutyKind,
    Requirement,
    load_schedule,
    parse_quote_request,
    quote,
    read_csv_rows,
)

DATA = Path(model.__file__).parent / "data"
D = Decimal


def text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def schedule():
    loaded, problems = load_schedule(text("demo_schedule.csv"), text("agreements.csv"),
                                     text("exchange_rates.csv"))
    assert problems == []
    return loaded


def quote_raw(schedule, day: date, *items: dict, regime: str = "general"):
    request = parse_quote_request({"regime": regime, "date": day.isoformat(), "items": list(items)},
                                  schedule, day)
    return quote(request, schedule.agreements())


def test_the_demo_files_parse_without_a_problem(schedule):
    assert len(schedule.lines) >= 25
    assert set(schedule.agreements()) == {"RCEP", "CN-ASEAN", "CN-KR", "CN-AU", "CN-CH", "CN-CL",
                                          "CN-NZ"}
    currencies = {r.currency for r in schedule.exchange_rates}
    assert currencies == {"USD", "EUR", "JPY", "GBP", "KRW", "HKD", "SGD"}


def test_every_month_of_2025_and_2026_has_a_rate_for_every_currency(schedule):
    for year in (2025, 2026):
        for month in range(1, 13):
            for currency in ("USD", "EUR", "JPY", "GBP", "KRW", "HKD", "SGD"):
                assert schedule.exchange_rate(currency, date(year, month, 15)) is not None
    assert D("7.1") < schedule.exchange_rate("USD", date(2025, 7, 1)) < D("7.25")
    assert D("0.04") < schedule.exchange_rate("JPY", date(2025, 7, 1)) < D("0.06")


@pytest.mark.parametrize(("name", "columns", "writer"), [
    ("demo_schedule.csv", SCHEDULE_COLUMNS, "schedule"),
    ("agreements.csv", AGREEMENT_COLUMNS, "agreements"),
    ("exchange_rates.csv", EXCHANGE_RATE_COLUMNS, "exchange_rates"),
])
def test_the_demo_files_survive_the_round_trip_unchanged(schedule, name, columns, writer):
    written = {
        "schedule": lambda: model.write_schedule_csv(schedule.lines.values()),
        "agreements": lambda: model.write_agreements_csv(schedule.agreements().values()),
        "exchange_rates": lambda: model.write_exchange_rates_csv(schedule.exchange_rates),
    }[writer]()
    assert written == text(name)
    rows, problems = read_csv_rows(written, columns)
    assert problems == [] and rows


def test_every_demo_row_says_where_its_figure_comes_from():
    rows, _ = read_csv_rows(text("demo_schedule.csv"), SCHEDULE_COLUMNS)
    assert all(row["source"] for row in rows)


def test_the_demo_car_reproduces_the_worked_check(schedule):
    # 2.0-2.5 l saloon car, CIF USD 50,000 in January 2025 (USD 7.1795): CT 9 %
    quoted = quote_raw(schedule, date(2025, 1, 15),
                       {"tariff_code": "87032351", "origin": "DE", "currency": "USD",
                        "customs_value": "50000", "quantity": "1"})
    body = quoted.as_dict()["items"][0]
    assert (body["customs_value_cny"], body["duty"], body["consumption_tax"], body["vat"]) == (
        "358975.00", "53846.25", "40828.48", "58974.46")
    assert set(quoted.items[0].requirements) == {Requirement.CCC, Requirement.IMPORT_LICENCE}


@pytest.mark.parametrize(("code", "rate"), [
    ("87032110", "0.01"), ("87032210", "0.03"), ("87032341", "0.05"), ("87032351", "0.09"),
    ("87032361", "0.12"), ("87032411", "0.25"), ("87032421", "0.4"),
])
def test_demo_cars_carry_the_consumption_tax_of_their_engine_size(schedule, code, rate):
    assert schedule.line(code).in_force(date(2025, 6, 1)).consumption_tax.ad_valorem == D(rate)


def test_a_battery_electric_car_pays_no_consumption_tax(schedule):
    rates = schedule.line("87038000").in_force(date(2025, 6, 1))
    assert rates.consumption_tax is None
    assert rates.as_api_rates()["consumption_tax"] is None


def test_chilean_wine_with_a_certificate_enters_duty_free(schedule):
    # CIF USD 1,000 in March 2025 at 7.1853 = 7,185.30; duty 0 under CN-CL;
    # CT 10 %: 7,185.30 / 0.9 × 0.1 = 798.3667 -> 798.37; VAT (7,185.30 + 798.37) × 13 %
    # = 1,037.8771 -> 1,037.88
    quoted = quote_raw(schedule, date(2025, 3, 10),
                       {"tariff_code": "22042100", "origin": "CL", "currency": "USD",
                        "customs_value": "1000", "quantity": "750",
                        "origin_certificate": {"agreement": "CN-CL", "number": "CL-2025-1"}})
    body = quoted.as_dict()["items"][0]
    assert body["duty_rate_applied"]["kind"] == "conventional"
    assert (body["customs_value_cny"], body["duty"], body["consumption_tax"], body["vat"]) == (
        "7185.30", "0.00", "798.37", "1037.88")


def test_australian_wine_paid_the_anti_dumping_duty_only_while_it_was_in_force(schedule):
    line = schedule.line("22042100")
    assert [m.origin for m in line.in_force(date(2023, 1, 1)).additional] == ["AU"]
    assert line.in_force(date(2025, 1, 1)).additional == ()


def test_whisky_pays_the_provisional_rate_in_2025(schedule):
    quoted = quote_raw(schedule, date(2025, 5, 5),
                       {"tariff_code": "22083000", "origin": "GB", "currency": "GBP",
                        "customs_value": "100", "quantity": "0.7"})
    assert quoted.items[0].duty_rate_applied.kind is DutyKind.PROVISIONAL


def test_cbec_cosmetics_pay_70_percent_of_consumption_tax_and_vat(schedule):
    # high-end skin care (CT 15 %), CIF HKD 1,000 in June 2025
    quoted = quote_raw(schedule, date(2025, 6, 1),
                       {"tariff_code": "33049900", "origin": "FR", "currency": "HKD",
                        "customs_value": "1000", "quantity": "0.05"}, regime="cbec")
    taxes = quoted.items[0].taxes
    assert taxes.duty == 0 and taxes.consumption_tax > 0 and taxes.vat > 0
    assert Requirement.CBEC_POSITIVE_LIST in quoted.items[0].requirements


def test_cherries_pay_the_9_percent_vat_and_need_quarantine(schedule):
    quoted = quote_raw(schedule, date(2026, 1, 10),
                       {"tariff_code": "08092900", "origin": "CL", "currency": "USD",
                        "price": "20000", "incoterm": "CFR", "quantity": "2000"})
    rates = schedule.line("08092900").in_force(date(2026, 1, 10))
    assert rates.vat.ad_valorem == D("0.09")
    assert quoted.items[0].requirements == (Requirement.QUARANTINE,)
    # no certificate: the quote shows what CN-CL would save
    assert quoted.items[0].duty_rate_applied.best_offer.agreement in {"CN-CL"}


def test_the_api_view_of_a_line_shows_its_rates_as_decimal_strings(schedule):
    rates = schedule.line("22042100").in_force(date(2025, 6, 1)).as_api_rates()
    assert rates["mfn"] == "0.14"
    assert rates["conventional"] == {"CN-AU": "0", "CN-CH": "0", "CN-CL": "0", "CN-NZ": "0"}
    assert rates["consumption_tax"] == "0.1" and rates["vat"] == "0.13"
    baijiu = schedule.line("22089020").in_force(date(2025, 6, 1)).as_api_rates()
    assert (baijiu["consumption_tax"], baijiu["consumption_tax_specific"]) == ("0.2", "1")
