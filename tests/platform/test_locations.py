"""The location code list: every place the routes and bills of lading name is in it, and a
database created before a place was added gets it by migration."""

from __future__ import annotations

import csv

from sqlalchemy import delete, select, update

from tradewindow.migrations import upgrade
from tradewindow.platform import codelists
from tradewindow.platform.db import make_engine
from tradewindow.platform.tables import code_list_entries

ADDED_IN_0009 = {"SGSIN", "NLRTM", "DEHAM", "KZALA", "KZKHO", "PLLDZ"}


def test_the_places_on_the_routes_and_sea_bills_are_known(engine):
    with engine.connect() as conn:
        known = codelists.codes(conn, "location")
    with open(codelists.DATA_DIR / "locations.csv", encoding="utf-8") as handle:
        shipped = {row["code"] for row in csv.DictReader(handle)}
    assert shipped <= known
    assert {"CNCKG", "CNTNR", "CNAKU", "KZDOS", "PLMAL", "DEDUI", "CNQZH", "CNSHA"} | ADDED_IN_0009 <= known


def test_a_database_migrated_before_the_new_places_gets_them(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0008")
    with engine.begin() as conn:      # as the database was before the places were in the CSV
        conn.execute(delete(code_list_entries).where(code_list_entries.c.code.in_(ADDED_IN_0009)))
        conn.execute(update(code_list_entries).where(code_list_entries.c.code == "PLMAL")
                     .values(name="Malaszewicze"))
    upgrade(engine)
    with engine.connect() as conn:
        assert codelists.codes(conn, "location") >= ADDED_IN_0009
        assert conn.execute(select(code_list_entries.c.name).where(
            code_list_entries.c.code == "PLMAL")).scalar() == "Małaszewicze"
    engine.dispose()
