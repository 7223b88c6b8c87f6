"""The bonded API and pages: a trader admits cars, quotes and lodges a release, re-exports, reads
the reconciliation as CSV; another trader sees nothing of it; the pages render for each role."""

from __future__ import annotations

from tests.bonded.conftest import ENTRY_DAY, VINS, lodge_entry, relay
from tradewindow.platform.db import clock_at


def test_the_model_case_through_the_api(bw, client, as_user):
    trader = as_user("trader")
    book = client.post("/api/v1/bonded/books", json={"kind": "bonded_logistics", "name": "Cars"}, headers=trader)
    assert book.status_code == 201, book.text
    book_id = book.json()["id"]
    with clock_at(ENTRY_DAY):
        entry = lodge_entry(bw)
    admitted = client.post(f"/api/v1/bonded/books/{book_id}/entries", headers=trader,
                           json={"declaration": entry["number"], "serials": {"1": VINS}})
    assert admitted.status_code == 201, admitted.text
    again = client.post(f"/api/v1/bonded/books/{book_id}/entries", headers=trader, json={"declaration": entry["id"]})
    assert again.status_code == 200
    found = client.get(f"/api/v1/bonded/books/{book_id}/units", params={"q": VINS[0][:8]}, headers=trader).json()
    assert [u["serial"] for u in found] == [VINS[0]]

    quote = client.post(f"/api/v1/bonded/books/{book_id}/release-quote", headers=trader,
                        json={"lines": [{"serial": VINS[0]}]})
    assert quote.status_code == 200, quote.text
    release = client.post(f"/api/v1/bonded/books/{book_id}/releases", headers=trader,
                          json={"client_reference": "API-1", "lines": [{"serial": VINS[0]}]})
    assert release.status_code == 201, release.text
    assert release.json()["declaration"]["total_due"] == quote.json()["assessment"]["totals"]["total"]

    twice = client.post(f"/api/v1/bonded/books/{book_id}/reexports", headers=trader,
                        json={"client_reference": "API-2", "lines": [{"serial": VINS[0]}],
                              "country_of_destination": "KZ"})
    assert twice.status_code == 409 and twice.json()["errors"][0]["code"] == "insufficient_stock"
    unknown = client.post(f"/api/v1/bonded/books/{book_id}/reexports", headers=trader,
                          json={"client_reference": "API-3", "lines": [], "colour": "red"})
    assert unknown.status_code == 422
    assert "unknown_field" in [e["code"] for e in unknown.json()["errors"]]

    reexport = client.post(f"/api/v1/bonded/books/{book_id}/reexports", headers=trader,
                           json={"client_reference": "API-4", "lines": [{"serial": VINS[1]}],
                                 "country_of_destination": "KZ"})
    assert reexport.status_code == 201, reexport.text
    relay(bw)
    moves = client.get(f"/api/v1/bonded/books/{book_id}/moves", params={"serial": VINS[1]}, headers=trader).json()
    assert [m["to"] for m in moves] == ["bonded_storage", "reexported"]

    csv = client.get(f"/api/v1/bonded/books/{book_id}/reconciliation", headers=trader,
                     params={"start": "2025-01-01", "end": "2099-12-31", "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "87032361" in csv.text

    other = as_user("other_trader")
    assert client.get("/api/v1/bonded/books", headers=other).json() == []
    assert client.get(f"/api/v1/bonded/books/{book_id}", headers=other).status_code == 404
    assert client.get(f"/api/v1/bonded/books/{book_id}", headers=as_user("customs_officer")).status_code == 200
    assert client.get("/api/v1/bonded/books", headers=as_user("bank")).status_code == 403


def test_pages_show_the_book_and_quote_a_release_before_confirming(bw, client, as_user):
    from tests.bonded.conftest import admit
    from tradewindow.bonded import service as bonded

    book = bonded.open_book(bw.uow, bw["trader"], {"kind": "bonded_logistics", "name": "Vehicle warehouse"})
    admit(bw, book)
    trader = as_user("trader")
    listing = client.get("/bonded", headers=trader)
    assert listing.status_code == 200 and "Vehicle warehouse" in listing.text
    detail = client.get(f"/bonded/{book['id']}", params={"q": VINS[2]}, headers=trader)
    assert detail.status_code == 200 and VINS[2] in detail.text and VINS[0] not in detail.text
    quote = client.post(f"/bonded/{book['id']}/release", data={"serials": VINS[0]}, headers=trader)
    assert quote.status_code == 200 and 'id="release-quote"' in quote.text
    confirmed = client.post(f"/bonded/{book['id']}/release", headers=trader, follow_redirects=False,
                            data={"serials": VINS[0], "client_reference": "PAGE-1", "confirm": "yes"})
    assert confirmed.status_code == 303 and confirmed.headers["location"].startswith("/declarations/")
    for page in (f"/bonded/{book['id']}/history?serial={VINS[0]}", f"/bonded/{book['id']}/reconciliation"):
        assert client.get(page, headers=as_user("customs_officer")).status_code == 200
    dashboard = client.get("/", headers=trader)
    assert "Bonded account books" in dashboard.text
