"""Batches of NDJSON: every line its own outcome; limits applied per buyer in ordered_at order, so
results never depend on where a line sits in the file."""

from __future__ import annotations

import json
import random

from tests.ecommerce.conftest import BUYER, OTHER_BUYER, Parcel
from tradewindow.ecommerce import service
from tradewindow.ecommerce.tables import cbec_buyer_years, cbec_orders, cbec_parcels, cbec_payments, cbec_waybills


def festival(n_per_buyer: int = 7) -> list[Parcel]:
    """Two buyers ordering 4,500 CNY of milk powder every hour: the second order is refused (no
    tax withheld), the seventh would take the year to 27,000 and is refused too."""
    parcels = []
    for buyer in (BUYER, OTHER_BUYER):
        for i in range(n_per_buyer):
            parcels.append(Parcel(value="4500.00", quantity="2", buyer=buyer,
                                  ordered_at=f"2026-11-11T{i:02d}:00:00+08:00") if i != 1 else
                           Parcel(value="4500.00", quantity="2", buyer=buyer, tax_withheld="0",
                                  ordered_at=f"2026-11-11T{i:02d}:00:00+08:00"))
    return parcels


def ndjson(lines: list[dict]) -> list[str]:
    return [json.dumps(line, ensure_ascii=False) + "\n" for line in lines]


def results(uow) -> dict:
    with uow.read() as conn:
        return {r.order_no: (r.decision, tuple(r.reasons), r.year_total_after_fen)
                for r in conn.execute(cbec_parcels.select())}


def test_a_batch_stores_every_document_and_decides_the_complete_parcels(cbec_world, uow):
    parcels = festival()
    lines = [line for p in parcels for line in p.lines()]
    lines.append({"kind": "order", **Parcel().order})       # its payment and waybill are still to come
    summary = service.import_batch(uow, cbec_world["admin"], service.ndjson_objects(ndjson(lines)))
    assert summary.accepted == {"order": 15, "payment": 14, "waybill": 14}
    assert summary.decisions == {"release": 10, "inspect": 0, "reject": 4}
    assert summary.reasons == {"annual_limit_exceeded": 2, "tax_withheld_mismatch": 2}
    assert summary.as_dict()["total_tax"] == "2835.00"      # 10 × 4500 × 9 % × 70 %


def test_results_do_not_depend_on_the_order_of_the_lines(cbec_world, uow, db):
    parcels = festival()
    lines = [line for p in parcels for line in p.lines()]
    service.import_batch(uow, cbec_world["admin"], service.ndjson_objects(ndjson(lines)))
    in_file_order = results(uow)
    # a different order of the same file, decided afresh
    for seed in (1, 2, 3):
        _forget_parcels(db)
        shuffled = list(lines)
        random.Random(seed).shuffle(shuffled)
        service.import_batch(uow, cbec_world["admin"], service.ndjson_objects(ndjson(shuffled)))
        assert results(uow) == in_file_order
    assert [in_file_order[p.order_no][0] for p in parcels[:7]] == [
        "release", "reject", "release", "release", "release", "release", "reject"]


def _forget_parcels(db) -> None:
    with db.begin() as conn:
        for table in (cbec_parcels, cbec_buyer_years, cbec_orders, cbec_payments, cbec_waybills):
            conn.execute(table.delete())


def test_bad_lines_are_refused_with_their_line_number_and_the_rest_goes_in(cbec_world, uow):
    parcel = Parcel()
    lines = ["{not json\n", json.dumps({"kind": "invoice"}) + "\n", "\n",
             json.dumps({"kind": "order", **parcel.order, "colour": "red"}) + "\n",
             *ndjson(parcel.lines()[1:])]
    summary = service.import_batch(uow, cbec_world["admin"], service.ndjson_objects(lines))
    refused = {r["line"]: r["errors"][0]["code"] for r in summary.refused}
    assert refused == {1: "malformed_json", 2: "invalid_choice", 4: "unknown_field"}
    assert summary.accepted == {"order": 0, "payment": 1, "waybill": 1} and summary.lines == 5


def test_a_party_sends_only_its_own_kind_in_a_batch(cbec_world, uow):
    parcel = Parcel()
    summary = service.import_batch(uow, cbec_world["platform"], service.ndjson_objects(ndjson(parcel.lines())))
    assert summary.accepted["order"] == 1
    assert [r["errors"][0]["code"] for r in summary.refused] == ["role_not_allowed", "role_not_allowed"]


def test_a_file_sent_twice_changes_nothing_the_second_time(cbec_world, uow):
    lines = ndjson([line for p in festival(2) for line in p.lines()])
    service.import_batch(uow, cbec_world["admin"], service.ndjson_objects(lines))
    before = results(uow)
    again = service.import_batch(uow, cbec_world["admin"], service.ndjson_objects(lines))
    assert again.repeated == 12 and sum(again.decisions.values()) == 0
    assert results(uow) == before


def test_a_duplicate_number_in_a_batch_is_refused_and_the_first_stands(cbec_world, uow):
    parcel = Parcel()
    lines = [*parcel.lines(), {"kind": "order", **parcel.order, "goods_value": "1.00"}]
    summary = service.import_batch(uow, cbec_world["admin"], service.ndjson_objects(ndjson(lines)))
    assert summary.refused == [{"line": 4, "errors": [{"path": "order_no", "code": "duplicate",
                                                        "message": summary.refused[0]["errors"][0]["message"]}]}]
    assert results(uow)[parcel.order_no][0] == "release"
