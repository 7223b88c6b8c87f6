"""The cross-border e-commerce API and pages: roles and tenancy per endpoint, masking of identity
numbers, batches of NDJSON, and the `tradewindow cbec import` command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.ecommerce.conftest import BUYER, Parcel
from tradewindow.cli import app as cli_app
from tradewindow.ecommerce import model, service
from tradewindow.platform.settings import get_settings


@pytest.fixture
def sent(cbec_world, client, as_user):
    """One parcel sent through the API, and one of the other platform still waiting."""
    parcel = Parcel()
    for path, who, body in (("orders", "platform", parcel.order), ("payments", "payment", parcel.payment),
                            ("waybills", "logistics", parcel.waybill)):
        response = client.post(f"/api/v1/cbec/{path}", json=body, headers=as_user(who))
        assert response.status_code == 201, response.text
    assert response.json()["parcel"]["decision"] == "release"
    other = Parcel()
    client.post("/api/v1/cbec/orders", json=other.order, headers=as_user("other_platform"))
    return parcel, other


def test_documents_answer_201_then_200_for_a_repeat_and_409_for_a_duplicate(sent, client, as_user):
    parcel, _ = sent
    again = client.post("/api/v1/cbec/waybills", json=parcel.waybill, headers=as_user("logistics"))
    assert again.status_code == 200 and again.json()["status"] == "repeat"
    assert again.json()["parcel"]["decision"] == "release"
    duplicate = client.post("/api/v1/cbec/waybills", json={**parcel.waybill, "gross_weight_kg": "9"},
                            headers=as_user("logistics"))
    assert duplicate.status_code == 409 and duplicate.json()["errors"][0]["code"] == "duplicate"
    bad = client.post("/api/v1/cbec/orders", json={"order_no": "X"}, headers=as_user("platform"))
    assert bad.status_code == 422 and len(bad.json()["errors"]) > 5


def test_an_amount_too_large_to_store_is_answered_422_with_its_field(cbec_world, client, as_user):
    order = {**Parcel().order, "goods_value": "1e30", "freight": "99999999999999999999.00"}
    response = client.post("/api/v1/cbec/orders", json=order, headers=as_user("platform"))
    assert response.status_code == 422, response.text
    assert {(e["path"], e["code"]) for e in response.json()["errors"]} == {
        ("goods_value", "too_large"), ("freight", "too_large")}


@pytest.mark.parametrize(("path", "allowed"), [("orders", "platform"), ("payments", "payment"),
                                               ("waybills", "logistics")])
def test_each_document_endpoint_takes_its_own_party_only(cbec_world, client, as_user, path, allowed):
    for who in ("platform", "payment", "logistics", "customs_officer", "trader", "admin"):
        response = client.post(f"/api/v1/cbec/{path}", json={}, headers=as_user(who))
        assert (response.status_code == 403) == (who != allowed), (who, response.text)
    assert client.post(f"/api/v1/cbec/{path}", json={}).status_code == 401


def test_an_array_of_documents_is_answered_with_a_batch_summary(cbec_world, client, as_user):
    parcels = [Parcel(), Parcel()]
    response = client.post("/api/v1/cbec/orders", json=[p.order for p in parcels], headers=as_user("platform"))
    assert response.status_code == 200 and response.json()["accepted"]["order"] == 2


def test_parties_see_their_parcels_with_masked_ids_and_customs_sees_all_in_full(sent, client, as_user):
    parcel, other = sent
    masked = model.mask_id(BUYER)
    for who in ("platform", "payment", "logistics"):
        listed = client.get("/api/v1/cbec/parcels", headers=as_user(who)).json()
        assert [p["order_no"] for p in listed["items"]] == [parcel.order_no], who
        assert listed["items"][0]["buyer_id_number"] == masked
        one = client.get(f"/api/v1/cbec/parcels/{parcel.order_no}", headers=as_user(who)).json()
        assert one["documents"]["order"]["buyer_id_number"] == masked
        assert one["documents"]["payment"]["payer_id_number"] == masked
        assert BUYER not in json.dumps(one)
    assert client.get(f"/api/v1/cbec/parcels/{parcel.order_no}", headers=as_user("other_platform")).status_code == 404
    assert client.get("/api/v1/cbec/parcels", headers=as_user("other_logistics")).json()["total"] == 0
    waiting = client.get(f"/api/v1/cbec/parcels/{other.order_no}", headers=as_user("other_platform")).json()
    assert waiting["status"] == "waiting"
    customs = client.get(f"/api/v1/cbec/parcels?buyer={BUYER}&decision=release",
                         headers=as_user("customs_officer")).json()
    assert customs["total"] == 1 and customs["items"][0]["buyer_id_number"] == BUYER
    zone = client.get("/api/v1/cbec/parcels", headers=as_user("zone")).json()
    assert zone["items"][0]["buyer_id_number"] == masked
    for who in ("trader", "broker", "bank", "quarantine_officer"):
        assert client.get("/api/v1/cbec/parcels", headers=as_user(who)).status_code == 403
    assert client.get("/api/v1/cbec/parcels?decision=maybe", headers=as_user("customs_officer")).status_code == 422


def test_the_buyers_year_is_for_customs(sent, client, as_user):
    year = client.get(f"/api/v1/cbec/buyers/{BUYER}/year/2026", headers=as_user("customs_officer"))
    assert year.status_code == 200 and year.json()["total"] == "300.00" and year.json()["remaining"] == "25700.00"
    for who in ("platform", "zone", "admin", "payment"):
        assert client.get(f"/api/v1/cbec/buyers/{BUYER}/year/2026", headers=as_user(who)).status_code == 403


def test_the_platform_cancels_its_parcel(sent, client, as_user):
    parcel, _ = sent
    path = f"/api/v1/cbec/parcels/{parcel.order_no}/cancel"
    assert client.post(path, json={"reason": "x"}, headers=as_user("payment")).status_code == 403
    assert client.post(path, json={"reason": "x"}, headers=as_user("other_platform")).status_code == 404
    assert client.post(path, json={"reason": "x", "extra": 1}, headers=as_user("platform")).status_code == 422
    cancelled = client.post(path, json={"reason": "Returned"}, headers=as_user("platform"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    year = client.get(f"/api/v1/cbec/buyers/{BUYER}/year/2026", headers=as_user("customs_officer")).json()
    assert year["total"] == "0.00"


def test_a_batch_of_ndjson(cbec_world, client, as_user):
    lines = [json.dumps(line, ensure_ascii=False) for p in (Parcel(), Parcel()) for line in p.lines()]
    body = "\n".join([*lines, "{oops"]).encode()
    response = client.post("/api/v1/cbec/batches", content=body, headers={
        **as_user("admin"), "Content-Type": "application/x-ndjson"})
    summary = response.json()
    assert response.status_code == 200, response.text
    assert summary["decisions"]["release"] == 2 and summary["refused"] == 1
    assert summary["refused_lines"][0]["line"] == 7
    assert client.post("/api/v1/cbec/batches", content=body, headers=as_user("customs_officer")).status_code == 403


def test_pages_mask_identity_numbers_except_for_customs(sent, client, as_user):
    parcel, _ = sent
    for who, shown in (("platform", model.mask_id(BUYER)), ("customs_officer", BUYER)):
        for path in ("/cbec/parcels", f"/cbec/parcels/{parcel.order_no}"):
            page = client.get(path, headers=as_user(who))
            assert page.status_code == 200 and shown in page.text, (who, path)
            if who == "platform":
                assert BUYER not in page.text
    assert BUYER in client.get(f"/cbec/buyers/{BUYER}/year/2026", headers=as_user("customs_officer")).text


def test_the_batch_page_uploads_a_file_and_shows_the_summary(cbec_world, client, as_user):
    form = client.get("/cbec/batches/new", headers=as_user("platform"))
    assert form.status_code == 200 and 'type="file"' in form.text
    lines = "\n".join(json.dumps(line, ensure_ascii=False) for line in Parcel().lines()).encode()
    result = client.post("/cbec/batches", files={"file": ("festival.ndjson", lines, "application/x-ndjson")},
                         headers={**as_user("admin"), "HX-Request": "true"})
    assert result.status_code == 200 and 'id="batch-summary"' in result.text and "1 release" in result.text
    assert client.get("/cbec/batches/new", headers=as_user("customs_officer")).status_code == 403


def test_the_cli_imports_a_file_and_writes_the_results(cbec_world, db, tmp_path, monkeypatch):
    parcels = [Parcel(), Parcel(tax_withheld="1.00")]
    source = tmp_path / "festival.ndjson"
    source.write_text("\n".join(json.dumps(line, ensure_ascii=False) for p in parcels for line in p.lines()),
                      encoding="utf-8")
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", db.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    out = tmp_path / "results.ndjson"
    result = CliRunner().invoke(cli_app, ["cbec", "import", str(source), "--out", str(out), "--inspection-rate", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decisions"] == {"release": 1, "inspect": 0, "reject": 1}
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {line["decision"] for line in lines} == {"release", "reject"}
    assert all(line["buyer_id_number"] == model.mask_id(BUYER) for line in lines)
    assert service.get_parcel(UnitOfWorkFor(db), cbec_world["platform"], parcels[0].order_no)["result"]


def UnitOfWorkFor(engine):  # noqa: N802 - reads like the class
    from tradewindow.platform.db import UnitOfWork

    return UnitOfWork(engine)
