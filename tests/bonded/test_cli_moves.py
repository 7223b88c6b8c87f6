"""`tradewindow bonded move`: the API's moves from the command line, as a named user."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.bonded.conftest import VINS, lodge_entry
from tradewindow.bonded import service as bonded
from tradewindow.cli import app
from tradewindow.platform.settings import get_settings


@pytest.fixture
def cli(bw, db, monkeypatch):
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", db.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    runner = CliRunner()
    return lambda *args, stdin=None: runner.invoke(app, list(args), input=stdin)


def test_a_trader_admits_and_releases_a_car_from_the_command_line(cli, bw, book):
    declaration = lodge_entry(bw, "ENTRY-CLI", 2)
    admitted = cli("bonded", "move", "admit", book["id"], "-", "--user", "trader",
                   stdin=json.dumps({"declaration": declaration["number"], "serials": {"1": VINS[:2]}}))
    assert admitted.exit_code == 0, admitted.output
    assert len(bonded.list_units(bw.uow, bw["trader"], book["id"])) == 2
    released = cli("bonded", "move", "release", book["id"], "-", "--user", "trader",
                   stdin=json.dumps({"client_reference": "CLI-1", "lines": [{"serial": VINS[0]}]}))
    assert released.exit_code == 0, released.output
    assert json.loads(released.stdout)["declaration"]["type"] == "bonded_release"


def test_a_refused_move_prints_every_problem_and_exits_1(cli, bw, book):
    refused = cli("bonded", "move", "release", book["id"], "-", "--user", "trader",
                  stdin=json.dumps({"client_reference": "CLI-2", "lines": [{"serial": "NOSUCHVIN00000000"}]}))
    assert refused.exit_code == 1
    assert "errors" in refused.output


def test_an_unknown_action_or_user_is_refused(cli, book):
    assert cli("bonded", "move", "teleport", book["id"], "-", "--user", "trader", stdin="{}").exit_code == 2
    assert cli("bonded", "move", "admit", book["id"], "-", "--user", "nobody", stdin="{}").exit_code == 2


def test_many_cars_are_admitted_from_a_csv_file(cli, bw, book, tmp_path):
    declaration = lodge_entry(bw, "ENTRY-CLI-CSV", 3)
    path = tmp_path / "vins.csv"
    path.write_text("line,serial\n" + "".join(f"1,{vin}\n" for vin in VINS[:3]), encoding="utf-8")
    result = cli("bonded", "move", "admit", book["id"], str(path), "--user", "trader",
                 "--declaration", declaration["number"])
    assert result.exit_code == 0, result.output
    assert len(bonded.list_units(bw.uow, bw["trader"], book["id"])) == 3
