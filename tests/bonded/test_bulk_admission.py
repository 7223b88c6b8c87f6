"""Bulk admission of many vehicles from a CSV (`line,serial`)."""

from __future__ import annotations

from tests.bonded.conftest import VINS, lodge_entry
from tradewindow.bonded import model
from tradewindow.bonded import service as bonded


def test_the_csv_gives_the_serials_by_line_and_every_problem():
    serials, problems = model.serials_from_csv(f"line,serial\n1,{VINS[0].lower()}\n1,{VINS[1]}\nx,\n")
    assert serials == {"1": [VINS[0], VINS[1]]}
    assert [(p.path, p.code) for p in problems.items] == [("rows[4].line", "invalid_line"),
                                                          ("rows[4].serial", "required")]


def test_a_trader_admits_a_declaration_of_cars_from_a_csv_over_the_api(bw, book, client, as_user):
    declaration = lodge_entry(bw, "ENTRY-CSV", 3)
    body = "line,serial\n" + "".join(f"1,{vin}\n" for vin in VINS[:3])
    response = client.post(f"/api/v1/bonded/books/{book['id']}/entries.csv?declaration={declaration['number']}",
                           content=body.encode(), headers={**as_user("trader"), "content-type": "text/csv"})
    assert response.status_code == 201, response.text
    assert sorted(u["serial"] for u in bonded.list_units(bw.uow, bw["trader"], book["id"])) == sorted(VINS[:3])


def test_a_broken_csv_is_refused_whole(bw, book, client, as_user):
    declaration = lodge_entry(bw, "ENTRY-CSV2", 2)
    response = client.post(f"/api/v1/bonded/books/{book['id']}/entries.csv?declaration={declaration['number']}",
                           content=b"vin\nX\n", headers={**as_user("trader"), "content-type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "missing_column"
    assert bonded.list_units(bw.uow, bw["trader"], book["id"]) == []
