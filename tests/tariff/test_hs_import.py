"""Loading the HS 2022 nomenclature (the public-domain `section,hscode,description,parent,level`
file): the whole file loads and its hierarchy holds; a broken file is refused with every problem
and the nomenclature already loaded stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.reference import require_reference
from tradewindow.platform.db import UnitOfWork, make_engine
from tradewindow.platform.errors import Forbidden, NotFound, ValidationFailed
from tradewindow.platform.settings import get_settings
from tradewindow.tariff import service

HS_FILE = "hs2022/harmonized-system.csv"
HEADER = "section,hscode,description,parent,level\n"
SMALL = HEADER + (
    "XVII,87,Vehicles other than railway rolling stock,TOTAL,2\n"
    "XVII,8703,Motor cars for the transport of persons,87,4\n"
    '"XVII",870321,"Cars, spark-ignition, not over 1,000 cc",8703,6\n'
    "TOTAL,TOTAL,Total of all HS2022 commodities,TOTAL,5\n"
)


@pytest.fixture(scope="module")
def hs_text() -> str:
    return require_reference(HS_FILE).read_text(encoding="utf-8")


@pytest.fixture
def loaded(world, hs_text) -> dict:
    return service.import_hs(world.uow, world["customs_officer"], hs_text)


def test_the_whole_hs_2022_file_loads_every_code_but_its_total_row(loaded, hs_text, world):
    data_rows = len(hs_text.strip().splitlines()) - 1
    assert data_rows == 6940                        # the file's own count, TOTAL root row included
    assert loaded["entries"] == 6939 and loaded["edition"] == "HS2022"
    assert service.schedule_summary(world.uow)["hs_entries"] == 6939


def test_a_subheading_hangs_under_its_heading_and_the_heading_under_its_chapter(loaded, world):
    car = service.hs_entry(world.uow, "870321")
    assert car["level"] == 6 and car["section"] == "XVII"
    assert [a["code"] for a in car["ancestors"]] == ["87", "8703"]
    assert car["description"].startswith("Vehicles; with only spark-ignition")
    heading = service.hs_entry(world.uow, "8703")
    assert [a["code"] for a in heading["ancestors"]] == ["87"]
    assert "870321" in [c["code"] for c in heading["children"]]
    chapter = service.hs_entry(world.uow, "87")
    assert chapter["ancestors"] == [] and chapter["level"] == 2
    assert "8703" in [c["code"] for c in chapter["children"]]


@pytest.mark.parametrize("code", ["01", "0101", "010121", "2204", "220421", "9706", "970610"])
def test_every_level_has_its_own_prefix_as_parent(loaded, world, code):
    entry = service.hs_entry(world.uow, code)
    assert [a["code"] for a in entry["ancestors"]] == [code[:n] for n in range(2, len(code), 2)]
    for child in entry["children"]:
        assert child["code"].startswith(code) and len(child["code"]) == len(code) + 2


def test_the_total_row_is_not_a_code(loaded, world):
    with pytest.raises(NotFound):
        service.hs_entry(world.uow, "TOTAL")


def test_a_broken_file_is_refused_with_every_problem_and_nothing_replaced(world):
    customs = world["customs_officer"]
    service.import_hs(world.uow, customs, SMALL)
    broken = HEADER + (
        "XVII,87,Vehicles,TOTAL,2\n"
        "XVII,8703,Motor cars,86,4\n"              # wrong parent: its chapter is 87
        "XVII,87A321,Cars,8703,6\n"                # not a code
        "XVII,870322,Cars 1000-1500 cc,8703,4\n"   # level does not match the digits
        "XVII,8704,,87,4\n"                        # no description
        "XVII,870323,Cars 1500-3000 cc,8799,6\n"   # its heading 8703 is wanted, not 8799
    )
    with pytest.raises(ValidationFailed) as refused:
        service.import_hs(world.uow, customs, broken)
    found = {(p.path, p.code) for p in refused.value.problems}
    assert found == {
        ("hscode[8703].parent", "wrong_parent"),
        ("rows[4].hscode", "invalid_hs_code"),
        ("rows[5].level", "level_mismatch"),
        ("rows[6].description", "required"),
        ("hscode[870323].parent", "wrong_parent"),
    }
    assert service.schedule_summary(world.uow)["hs_entries"] == 3
    assert service.hs_entry(world.uow, "870321")["description"] == "Cars, spark-ignition, not over 1,000 cc"


def test_a_file_missing_a_column_is_refused_and_nothing_replaced(world):
    customs = world["customs_officer"]
    service.import_hs(world.uow, customs, SMALL)
    with pytest.raises(ValidationFailed) as refused:
        service.import_hs(world.uow, customs, "section,hscode,description,level\nXVII,87,Vehicles,2\n")
    assert [(p.path, p.code) for p in refused.value.problems] == [("header", "missing_column")]
    assert "parent" in refused.value.problems[0].message
    assert service.schedule_summary(world.uow)["hs_entries"] == 3


def test_a_heading_whose_chapter_is_missing_is_refused(world):
    with pytest.raises(ValidationFailed) as refused:
        service.import_hs(world.uow, world["customs_officer"], HEADER + "XVII,8703,Motor cars,87,4\n")
    assert [(p.path, p.code) for p in refused.value.problems] == [("hscode[8703].parent", "unknown_parent")]


def test_a_trader_may_not_load_the_nomenclature(world):
    with pytest.raises(Forbidden):
        service.import_hs(world.uow, world["trader"], SMALL)
    assert service.schedule_summary(world.uow)["hs_entries"] == 0


# --- the command line ----------------------------------------------------------------------------

@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite database, migrated by the CLI itself, that the CLI is pointed at."""
    from tradewindow.cli import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", url)
    get_settings.cache_clear()          # settings are read once per process; re-read the env
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    return url


def test_cli_import_hs_loads_the_file_into_the_database(cli_database):
    from tradewindow.cli import app

    path = require_reference(HS_FILE)
    result = CliRunner().invoke(app, ["tariff", "import-hs", str(path)])
    assert result.exit_code == 0, result.output
    assert "6939" in result.output
    engine = make_engine(cli_database)
    try:
        uow = UnitOfWork(engine)
        assert service.schedule_summary(uow)["hs_entries"] == 6939
        assert [a["code"] for a in service.hs_entry(uow, "870321")["ancestors"]] == ["87", "8703"]
    finally:
        engine.dispose()


def test_cli_import_hs_refuses_a_broken_file_with_the_errors_as_json(cli_database, tmp_path):
    from tradewindow.cli import app

    broken = tmp_path / "broken.csv"
    broken.write_text(HEADER + "XVII,8703,Motor cars,86,4\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["tariff", "import-hs", str(broken)])
    assert result.exit_code == 1
    assert "wrong_parent" in result.output
