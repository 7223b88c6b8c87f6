"""POST /api/v1/tax/quote against the demo schedule loaded in the database, and the CLI
`tradewindow tax quote`, which answers the same JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tradewindow.platform.settings import get_settings

CAR = {"tariff_code": "87032351", "origin": "DE", "currency": "USD", "customs_value": "50000.00",
       "quantity": "1", "unit": "unit"}        # saloon car, 2.0-2.5 l: MFN 15 %, CT 9 %, VAT 13 %


@pytest.fixture
def post_quote(client, as_user, demo_schedule):
    def post(body: object, persona: str = "trader"):
        return client.post("/api/v1/tax/quote", json=body, headers=as_user(persona))

    return post


def amounts(taxed: dict) -> tuple[str, ...]:
    return (taxed["customs_value_cny"], taxed["duty"], taxed["consumption_tax"], taxed["vat"], taxed["total"])


def error_set(response) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


def test_the_worked_car_example(post_quote):
    response = post_quote({"regime": "general", "date": "2025-01-15", "items": [CAR]})
    assert response.status_code == 200, response.text
    quote = response.json()
    car = quote["items"][0]
    # USD 50,000 × 7.1795 (January 2025); 15 % duty; CT 9 % by the composite price; VAT 13 %
    assert amounts(car) == ("358975.00", "53846.25", "40828.48", "58974.46", "153649.19")
    assert amounts(quote["totals"]) == amounts(car)
    assert car["duty_rate_applied"] == {"kind": "mfn", "rate": "0.15", "specific": "0"}
    assert "× 7.1795 CNY/USD = customs value 358975.00 CNY" in car["explanation"]
    assert "origin DE: the MFN rate 15% applies" in car["explanation"]
    assert car["requirements"] == ["ccc", "import_licence"]
    assert (quote["regime"], quote["date"]) == ("general", "2025-01-15")
    assert "cbec_single_item_over_limit" not in quote


def test_the_exchange_rate_is_the_one_in_force_on_the_date(post_quote):
    february = post_quote({"date": "2025-02-10", "items": [CAR]}).json()["items"][0]
    assert february["customs_value_cny"] == "359545.00"          # 50,000 × 7.1909 (February 2025)


def test_unknown_origin_pays_the_general_rate(post_quote):
    car = post_quote({"date": "2025-01-15", "items": [{**CAR, "origin": None}]}).json()["items"][0]
    assert car["duty_rate_applied"]["kind"] == "general"
    assert car["duty"] == "825642.50"                            # 358,975.00 × 230 %


def test_a_certificate_of_origin_under_an_agreement_gives_the_conventional_rate(post_quote):
    wine = {"tariff_code": "22042100", "origin": "NZ", "currency": "CNY", "customs_value": "10000",
            "quantity": "750"}
    without = post_quote({"date": "2025-06-01", "items": [wine]}).json()["items"][0]
    assert without["duty"] == "1400.00"
    assert without["duty_rate_applied"]["best_agreement"]["agreement"] == "CN-NZ"
    with_certificate = post_quote({"date": "2025-06-01", "items": [
        {**wine, "origin_certificate": {"agreement": "CN-NZ", "number": "NZ-2025-0001"}}]}).json()["items"][0]
    assert with_certificate["duty"] == "0.00"
    assert with_certificate["duty_rate_applied"] == {"kind": "conventional", "rate": "0", "specific": "0",
                                                     "agreement": "CN-NZ"}


def test_a_cbec_order_up_to_5000_pays_no_duty_and_70_percent_of_ct_and_vat(post_quote):
    response = post_quote({"regime": "cbec", "date": "2025-06-01", "items": [
        {"tariff_code": "22042100", "origin": "FR", "currency": "CNY", "customs_value": "1000", "quantity": "1.5"},
        {"tariff_code": "33049900", "origin": "FR", "currency": "CNY", "customs_value": "2000", "quantity": "0.2"},
    ]})
    assert response.status_code == 200, response.text
    wine, cream = response.json()["items"]
    # wine: CT 1000 × 10 % / 90 % = 111.11, VAT (1000 + 111.11) × 13 % = 144.44; each × 70 %
    assert amounts(wine) == ("1000.00", "0.00", "77.78", "101.11", "178.89")
    # high-end cosmetics: CT 2000 × 15 % / 85 % = 352.94, VAT 2352.94 × 13 % = 305.88; each × 70 %
    assert amounts(cream) == ("2000.00", "0.00", "247.06", "214.12", "461.18")
    assert amounts(response.json()["totals"]) == ("3000.00", "0.00", "324.84", "315.23", "640.07")
    assert "cbec_single_item_over_limit" not in response.json()


def test_a_cbec_single_item_over_5000_pays_in_full_and_is_flagged(post_quote):
    response = post_quote({"regime": "cbec", "date": "2025-06-01", "items": [
        {"tariff_code": "22042100", "origin": "FR", "currency": "CNY", "customs_value": "6000", "quantity": "1"}]})
    assert response.status_code == 200, response.text
    quote = response.json()
    assert quote["cbec_single_item_over_limit"] is True
    assert quote["items"][0]["cbec_single_item_over_limit"] is True
    # duty 6000 × 14 % = 840; CT 6840 × 10 % / 90 % = 760; VAT 7600 × 13 % = 988
    assert amounts(quote["items"][0]) == ("6000.00", "840.00", "760.00", "988.00", "2588.00")


@pytest.mark.parametrize("items", [
    [{"tariff_code": "22042100", "origin": "FR", "currency": "CNY", "customs_value": "3000", "quantity": "1"},
     {"tariff_code": "33049900", "origin": "FR", "currency": "CNY", "customs_value": "2500", "quantity": "1"}],
    [{"tariff_code": "22042100", "origin": "FR", "currency": "CNY", "customs_value": "6000", "quantity": "2"}],
], ids=["two-items", "one-item-of-two"])
def test_a_divisible_cbec_order_over_5000_is_refused(post_quote, items):
    response = post_quote({"regime": "cbec", "date": "2025-06-01", "items": items})
    assert response.status_code == 422
    assert error_set(response) == {("items", "cbec_order_limit_exceeded")}


def test_bad_input_is_refused_with_every_problem_at_once(post_quote):
    good = {"tariff_code": "22042100", "origin": "FR", "currency": "EUR", "quantity": "1"}
    response = post_quote({"regime": "duty-free", "date": "2025-06-01", "surprise": 1, "items": [
        {**good, "tariff_code": "99999999", "customs_value": "100"},
        {**good, "currency": "ABC", "customs_value": "100"},
        {**good, "currency": "CHF", "customs_value": "100"},           # a currency, but no rate in the table
        {**good, "customs_value": "-5", "quantity": "abc"},
        {**good, "customs_value": "100", "rates": {"duty": "1.5", "vat": "0.13"}},
        {**good, "customs_value": "100", "price": "100", "incoterm": "CIF"},
        {**good},
        {**good, "customs_value": 12.5},                               # a float cannot carry an exact amount
    ]})
    assert response.status_code == 422
    assert error_set(response) == {
        ("regime", "unknown_regime"),
        ("surprise", "unknown_field"),
        ("items[0].tariff_code", "unknown_tariff_code"),
        ("items[1].currency", "unknown_currency"),
        ("items[2].currency", "no_exchange_rate"),
        ("items[3].customs_value", "negative_amount"),
        ("items[3].quantity", "not_a_number"),
        ("items[4].rates.duty", "rate_out_of_range"),
        ("items[5]", "both_customs_value_and_price"),
        ("items[6]", "neither_customs_value_nor_price"),
        ("items[7].customs_value", "not_a_number"),
    }
    assert all(e["message"] for e in response.json()["errors"])


def test_no_exchange_rate_for_the_date_is_refused(post_quote):
    response = post_quote({"date": "2024-06-01", "items": [CAR]})      # the demo rates start in 2025
    assert response.status_code == 422
    assert error_set(response) == {("items[0].currency", "no_exchange_rate")}


def test_a_line_without_rates_on_the_date_is_refused_not_guessed(post_quote):
    response = post_quote({"date": "2023-06-01", "items": [{**CAR, "currency": "CNY"}]})
    assert response.status_code == 422
    assert error_set(response) == {("items[0].tariff_code", "no_rate_in_force")}


def test_an_empty_item_list_is_refused(post_quote):
    assert error_set(post_quote({"items": []})) == {("items", "empty")}
    assert error_set(post_quote({})) == {("items", "required")}


def test_a_malformed_json_body_is_refused(client, as_user, demo_schedule):
    response = client.post("/api/v1/tax/quote", content=b'{"items": [', headers={
        **as_user("trader"), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert [e["code"] for e in response.json()["errors"]] == ["malformed_json"]


def test_a_json_array_body_is_refused(post_quote):
    response = post_quote([{"items": [CAR]}])
    assert response.status_code == 422
    assert error_set(response) == {("", "not_an_object")}


@pytest.mark.parametrize("persona", ["trader", "broker", "customs_officer", "quarantine_officer",
                                     "licensing_officer", "zone", "bank", "admin"])
def test_every_role_may_quote(post_quote, persona):
    response = post_quote({"date": "2025-01-15", "items": [CAR]}, persona)
    assert response.status_code == 200
    assert response.json()["totals"]["total"] == "153649.19"


def test_quoting_needs_a_login(client, demo_schedule):
    response = client.post("/api/v1/tax/quote", json={"date": "2025-01-15", "items": [CAR]})
    assert response.status_code == 401


# --- the command line ----------------------------------------------------------------------------

def test_cli_tax_quote_answers_the_same_json_as_the_api(post_quote, db, tmp_path, monkeypatch):
    from tradewindow.cli import app

    request = {"regime": "general", "date": "2025-01-15", "items": [
        CAR, {"tariff_code": "22042100", "origin": "AU", "currency": "EUR", "price": "800", "incoterm": "FOB",
              "freight": "50", "quantity": "9", "origin_certificate": {"agreement": "CN-AU", "number": "AU1"}}]}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", db.url.render_as_string(hide_password=False))
    get_settings.cache_clear()

    result = CliRunner().invoke(app, ["tax", "quote", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == post_quote(request).json()


def test_cli_tax_quote_reports_problems_as_the_api_does(post_quote, db, tmp_path, monkeypatch):
    from tradewindow.cli import app

    request = {"date": "2025-01-15", "items": [{**CAR, "tariff_code": "99999999", "currency": "ABC"}]}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", db.url.render_as_string(hide_password=False))
    get_settings.cache_clear()

    result = CliRunner().invoke(app, ["tax", "quote", str(path)])
    assert result.exit_code == 1
    assert json.loads(result.stderr) == post_quote(request).json()
