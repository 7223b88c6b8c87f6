"""`tradewindow bonded books | units | reconciliation` against the test database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.bonded.conftest import VINS, admit, relay
from tradewindow import cli
from tradewindow.bonded import service as bonded

runner = CliRunner()


@pytest.fixture
def tradewindow(bw, monkeypatch):
    monkeypatch.setattr(cli, "_engine", lambda: bw.uow.engine)
    return lambda *args: runner.invoke(cli.app, list(args))


def test_books_units_and_the_reconciliation_as_csv(bw, book, tradewindow):
    admit(bw, book)
    bonded.reexport(bw.uow, bw["trader"], book["id"], {
        "client_reference": "RX-CLI", "lines": [{"serial": VINS[2]}], "country_of_destination": "KZ"})
    relay(bw)
    listed = tradewindow("bonded", "books")
    assert listed.exit_code == 0, listed.output
    assert "Bonded account books (1)" in listed.stdout
    as_json = tradewindow("bonded", "books", "--json").stdout
    assert book["id"] in as_json and as_json.count('"held": "2"') == 1
    units = tradewindow("bonded", "units", "Xiyong vehicle warehouse", "--q", VINS[2][:6])
    assert units.exit_code == 0 and "reexport" in units.stdout
    report = tradewindow("bonded", "reconciliation", book["id"], "--from", "2025-01-01", "--to", "2099-12-31", "--csv")
    assert report.exit_code == 0, report.output
    header, row = report.stdout.splitlines()
    assert header.startswith("tariff_code,description,unit,opening,receipts,removed_")
    assert row.startswith("87032361,") and row.endswith(",0,2")
    table = tradewindow("bonded", "reconciliation", book["id"], "--from", "2025-01-01", "--to", "2099-12-31")
    assert table.exit_code == 0 and "Xiyong vehicle warehouse: 2025-01-01 to 2099-12-31" in table.stdout
    assert tradewindow("bonded", "reconciliation", "nope", "--from", "2025-01-01", "--to", "2025-02-01").exit_code == 1
