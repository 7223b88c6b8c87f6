"""Filings from files: CSV (a row per item) and JSON/NDJSON, through the CLI and the upload page."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.customs.conftest import ALUMINIUM, ICS, filing
from tradewindow.cli import app
from tradewindow.customs import model
from tradewindow.platform.settings import get_settings

HEADER = ("client_reference,type,customs_office,transport_mode,transport_document,country_of_dispatch,"
          "incoterm,currency,invoice_total,tariff_code,description,origin,quantity,unit,net_mass_kg,"
          "gross_mass_kg,value,licence_numbers\n")
ROWS = ("CSV-1,import,8012,rail,CIM-9,KR,CIF,USD,70000.00,85423100,Processors,KR,1000,NAR,2,3,20000.00,\n"
        "CSV-1,import,8012,rail,CIM-9,KR,CIF,USD,70000.00,76011000,Aluminium ingots,AU,20000,KGM,20000,20100,"
        "50000.00,\n")


def test_rows_of_one_client_reference_make_one_filing():
    filings, problems = model.filings_from_csv(HEADER + ROWS)
    assert not problems
    [only] = filings
    assert only["client_reference"] == "CSV-1"
    assert [i["tariff_code"] for i in only["items"]] == ["85423100", "76011000"]


def test_a_declaration_field_that_differs_between_its_rows_is_refused():
    second_row_elsewhere = ROWS.replace("CIM-9,KR,CIF,USD,70000.00,7601", "CIM-8,KR,CIF,USD,70000.00,7601")
    _, problems = model.filings_from_csv(HEADER + second_row_elsewhere)
    assert [(p.path, p.code) for p in problems.items] == [("rows[3].transport_document", "inconsistent_rows")]


def test_unknown_and_missing_columns_are_all_reported():
    _, problems = model.filings_from_csv("colour,value\nred,1\n")
    assert {p.code for p in problems.items} == {"missing_column", "unknown_field"}


@pytest.fixture
def cli(customs_world, db, monkeypatch):
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", db.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_the_cli_lodges_every_filing_of_a_csv_file(cli, tmp_path):
    path = tmp_path / "filings.csv"
    path.write_text(HEADER + ROWS, encoding="utf-8")
    result = cli("declarations", "lodge", str(path), "--user", "trader")
    assert result.exit_code == 0, result.output
    [line] = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert line["result"] == "created" and line["number"].startswith("8012")


def test_the_cli_reports_refused_filings_and_exits_1(cli, tmp_path):
    path = tmp_path / "filings.ndjson"
    good, bad = filing("NDJ-1", ICS), filing("NDJ-2", {**ALUMINIUM, "value": "-1"})
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    result = cli("declarations", "lodge", str(path), "--user", "trader")
    assert result.exit_code == 1
    results = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["result"] for r in results] == ["created", "refused"]
    assert results[1]["errors"][0]["code"] == "negative_amount"
    again = cli("declarations", "lodge", str(path), "--user", "trader")
    assert [json.loads(line)["result"] for line in again.stdout.splitlines() if line.startswith("{")][0] == "repeat"


def test_the_upload_page_lodges_a_csv_filing(customs_world, client):
    from tests.conftest import PASSWORD

    client.post("/login", data={"username": "trader", "password": PASSWORD})
    csrf = client.get("/declarations/new").text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/declarations/upload", data={"csrf_token": csrf},
                           files={"file": ("filing.csv", (HEADER + ROWS).encode(), "text/csv")}, follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
    assert "/declarations/" in response.headers["location"]
