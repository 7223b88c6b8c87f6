"""GET /api/v1/tariff/lines: national lines by code prefix or words, with the rates in force on
a date, in the shape the issue gives; GET /api/v1/tariff/lines/{code}: one line and its history."""

from __future__ import annotations

import pytest

LINE_KEYS = {"code", "hs6", "description", "unit", "rates", "requirements"}
RATE_KEYS = {"mfn", "general", "provisional", "conventional", "duty_specific", "consumption_tax",
             "consumption_tax_specific", "vat"}


@pytest.fixture
def lines(client, as_user, demo_schedule):
    """`lines(q, date)` -> the `lines` of GET /api/v1/tariff/lines, asked by a trader."""

    def get(q: str, date: str = "2025-06-01") -> list[dict]:
        response = client.get("/api/v1/tariff/lines", params={"q": q, "date": date}, headers=as_user("trader"))
        assert response.status_code == 200, response.text
        return response.json()["lines"]

    return get


def by_code(found: list[dict]) -> dict[str, dict]:
    return {line["code"]: line for line in found}


def test_a_code_prefix_finds_the_car_lines_with_their_rates_as_decimal_strings(lines):
    found = by_code(lines("8703"))
    assert set(found) == {"87032110", "87032210", "87032341", "87032351", "87032361", "87032411",
                          "87032421", "87038000"}
    car = found["87032351"]
    assert set(car) >= LINE_KEYS
    assert {k: car[k] for k in LINE_KEYS} == {
        "code": "87032351", "hs6": "870323", "unit": "NAR",
        "description": "Saloon cars, spark-ignition engine, cylinder capacity over 2,000 cc but not over 2,500 cc",
        "rates": {"mfn": "0.15", "general": "2.3", "provisional": None, "conventional": {},
                  "duty_specific": "0", "consumption_tax": "0.09", "consumption_tax_specific": "0",
                  "vat": "0.13"},
        "requirements": ["ccc", "import_licence"],
    }


def test_every_line_has_the_same_shape(lines):
    for line in lines(""):
        assert set(line) >= LINE_KEYS
        assert set(line["rates"]) == RATE_KEYS
        for key in RATE_KEYS - {"conventional"}:
            assert line["rates"][key] is None or isinstance(line["rates"][key], str)
        assert all(isinstance(rate, str) for rate in line["rates"]["conventional"].values())
        assert set(line["requirements"]) <= {"import_licence", "quarantine", "ccc", "cbec_positive_list"}


def test_consumption_tax_follows_the_engine_size_and_electric_cars_pay_none(lines):
    found = by_code(lines("8703"))
    assert [found[c]["rates"]["consumption_tax"] for c in sorted(found)] == \
        ["0.01", "0.03", "0.05", "0.09", "0.12", "0.25", "0.4", None]


def test_a_dotted_code_is_the_same_prefix(lines):
    assert [line["code"] for line in lines("8703.23")] == ["87032341", "87032351", "87032361"]


def test_conventional_rates_are_listed_by_agreement(lines):
    wine = by_code(lines("22042100"))["22042100"]
    assert wine["rates"]["conventional"] == {"CN-AU": "0", "CN-CH": "0", "CN-CL": "0", "CN-NZ": "0"}
    assert wine["rates"]["mfn"] == "0.14"


def test_words_search_the_english_description(lines):
    assert set(by_code(lines("wine"))) == {"22042100", "22082000"}        # wine, and brandy "of grape wine"
    assert set(by_code(lines("WINE containers"))) == {"22042100"}           # every word, any case


def test_words_search_the_chinese_description(lines):
    assert set(by_code(lines("威士忌"))) == {"22083000"}
    assert set(by_code(lines("白酒"))) == {"22089020"}
    assert set(by_code(lines("葡萄"))) == {"22042100", "22082000"}


def test_a_percent_sign_is_a_character_not_a_wildcard(lines):
    assert set(by_code(lines("1.5 %"))) == {"04022100"}
    assert set(by_code(lines("%"))) == {"04022100"}


def test_nothing_matches_is_an_empty_list(lines):
    assert lines("unobtainium") == []
    assert lines("0000") == []


def test_the_rates_are_those_in_force_on_the_date(lines):
    whisky_2025 = by_code(lines("22083000", "2025-06-01"))["22083000"]["rates"]
    whisky_2024 = by_code(lines("22083000", "2024-06-01"))["22083000"]["rates"]
    assert (whisky_2025["mfn"], whisky_2025["provisional"]) == ("0.1", "0.05")
    assert (whisky_2024["mfn"], whisky_2024["provisional"]) == ("0.1", None)

    car_2023 = by_code(lines("87032351", "2023-06-01"))["87032351"]["rates"]
    assert car_2023["mfn"] is None and car_2023["vat"] is None       # the demo measures start in 2024


def test_an_additional_duty_shows_only_while_in_force(lines):
    wine_2023 = by_code(lines("22042100", "2023-06-01"))["22042100"]
    wine_2025 = by_code(lines("22042100", "2025-06-01"))["22042100"]
    assert [(d["kind"], d["origin"], d["ad_valorem"]) for d in wine_2023["additional_duties"]] == \
        [("anti_dumping", "AU", "2.184")]
    assert wine_2025["additional_duties"] == []


def test_the_date_defaults_to_today(client, as_user, demo_schedule):
    response = client.get("/api/v1/tariff/lines", params={"q": "8703"}, headers=as_user("bank"))
    assert response.status_code == 200
    assert len(response.json()["lines"]) == 8


def test_a_bad_date_is_a_422_naming_the_parameter(client, as_user, demo_schedule):
    response = client.get("/api/v1/tariff/lines", params={"q": "8703", "date": "2025-13-01"},
                          headers=as_user("trader"))
    assert response.status_code == 422
    assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [("query.date", "invalid_date")]


@pytest.mark.parametrize("persona", ["trader", "broker", "customs_officer", "quarantine_officer",
                                     "licensing_officer", "zone", "bank", "admin"])
def test_every_role_may_browse_the_tariff(client, as_user, demo_schedule, persona):
    response = client.get("/api/v1/tariff/lines", params={"q": "8703"}, headers=as_user(persona))
    assert response.status_code == 200


def test_browsing_needs_a_login(client, demo_schedule):
    response = client.get("/api/v1/tariff/lines", params={"q": "8703"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"
    assert client.get("/api/v1/tariff/lines/87032351").status_code == 401


# --- one line ------------------------------------------------------------------------------------

def test_one_line_has_its_rates_on_the_date_and_every_measure_over_time(client, as_user, demo_schedule):
    response = client.get("/api/v1/tariff/lines/22083000", params={"date": "2024-06-01"},
                          headers=as_user("trader"))
    assert response.status_code == 200
    whisky = response.json()
    assert whisky["code"] == "22083000" and whisky["in_force"] is True
    assert whisky["rates"]["provisional"] is None
    provisional = [m for m in whisky["measures"] if m["kind"] == "provisional"]
    assert [(m["valid_from"], m["valid_to"], m["ad_valorem"]) for m in provisional] == [
        ("2025-01-01", "2025-12-31", "0.05"), ("2026-01-01", "2026-12-31", "0.05")]
    assert all(m["source"] for m in whisky["measures"])
    assert any(m["source"].startswith("UNCERTAIN") for m in whisky["measures"])


def test_one_line_by_its_dotted_code(client, as_user, demo_schedule):
    response = client.get("/api/v1/tariff/lines/8703.23.51", headers=as_user("trader"))
    assert response.status_code == 200
    assert response.json()["code"] == "87032351"


def test_an_unknown_line_is_404(client, as_user, demo_schedule):
    response = client.get("/api/v1/tariff/lines/99999999", headers=as_user("trader"))
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
