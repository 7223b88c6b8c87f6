"""Migration 0014 keys the order, payment and waybill tables by their own numbers (their id
column goes) with every row kept, and back on downgrade (each row a fresh id); 0015 drops their
content_hash (the body's canonical text stands for it), and gives it back computed from the body
on downgrade; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, text

from tests.ecommerce.conftest import Parcel
from tradewindow.ecommerce import model
from tradewindow.migrations import alembic_config, upgrade
from tradewindow.platform import jsontext

T = datetime(2026, 11, 11, tzinfo=UTC)
DOCUMENTS = {"cbec_orders": "order_no", "cbec_payments": "payment_no", "cbec_waybills": "waybill_no"}


@pytest.fixture
def old_engine(engine_at):
    return engine_at("0013")


def _rows(conn) -> dict[str, list[tuple]]:
    found = {}
    for table, number in DOCUMENTS.items():
        extra = "buyer_id_number" if table == "cbec_orders" else "order_no"
        found[table] = [tuple(r) for r in conn.execute(text(
            f"SELECT {number}, {extra}, sender_id, content_hash, body FROM {table} ORDER BY {number}"))]
    return found


def test_the_documents_are_keyed_by_their_numbers_and_back(old_engine):
    with old_engine.begin() as conn:
        for n in (1, 2):
            conn.execute(text("INSERT INTO cbec_orders (id, order_no, buyer_id_number, ordered_at, sender_id, "
                              "content_hash, body, received_at) VALUES (:id, :no, 'B', :t, NULL, 'h', '{}', :t)"),
                         {"id": f"O{n}", "no": f"OD{n}", "t": T})
            for table, number in (("cbec_payments", "payment_no"), ("cbec_waybills", "waybill_no")):
                conn.execute(text(f"INSERT INTO {table} (id, {number}, order_no, sender_id, content_hash, body, "
                                  "received_at) VALUES (:id, :no, :order, 'S', 'h', '{\"a\": 1}', :t)"),
                             {"id": f"{table}{n}", "no": f"{number}{n}", "order": f"OD{n}", "t": T})
    with old_engine.connect() as conn:
        before = _rows(conn)
    upgrade(old_engine, "0014")
    schema = inspect(old_engine)
    for table, number in DOCUMENTS.items():
        assert schema.get_pk_constraint(table)["constrained_columns"] == [number]
        assert "id" not in {c["name"] for c in schema.get_columns(table)}
    with old_engine.connect() as conn:
        assert _rows(conn) == before
    with old_engine.begin() as conn, pytest.raises(Exception, match="(?i)unique|duplicate"):
        conn.execute(text("INSERT INTO cbec_payments (payment_no, order_no, sender_id, content_hash, body, "
                          "received_at) VALUES ('payment_no1', 'OD9', 'S', 'h', '{}', :t)"), {"t": T})

    _downgrade(old_engine, "0013")
    schema = inspect(old_engine)
    with old_engine.connect() as conn:
        assert _rows(conn) == before
        for table in DOCUMENTS:
            assert schema.get_pk_constraint(table)["constrained_columns"] == ["id"]
            ids = conn.execute(text(f"SELECT id FROM {table}")).scalars().all()
            assert len(set(ids)) == 2 and all(len(i) == 26 for i in ids)
    upgrade(old_engine)


def _downgrade(engine, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _hash(record) -> str:
    """The content_hash column as 0014's code computed it."""
    return hashlib.sha256(model.canonical_text(record).encode()).hexdigest()


def test_the_content_hash_goes_and_comes_back_from_the_body(old_engine):
    upgrade(old_engine, "0014")
    parcel = Parcel(order_no="OD-MIG")
    records = {kind: model.parse_record(kind, raw) for kind, raw in (
        (model.Kind.ORDER, parcel.order), (model.Kind.PAYMENT, parcel.payment), (model.Kind.WAYBILL, parcel.waybill))}
    with old_engine.begin() as conn:
        for (table, number), (kind, record) in zip(DOCUMENTS.items(), records.items(), strict=True):
            extra = (("buyer_id_number, ordered_at", ":buyer, :t") if kind is model.Kind.ORDER
                     else ("order_no", ":order"))
            # bodies as the bulk path writes them (canonical text) and as the engine does (compact JSON)
            body = model.canonical_text(record) if kind is model.Kind.PAYMENT else jsontext.stored(
                model.canonical(record))
            conn.execute(text(f"INSERT INTO {table} ({number}, {extra[0]}, sender_id, content_hash, body, received_at) "
                              f"VALUES (:no, {extra[1]}, NULL, :hash, :body, :t)"),
                         {"no": record.number, "buyer": parcel.order["buyer_id_number"], "order": "OD-MIG",
                          "t": T, "hash": _hash(record), "body": body})
    upgrade(old_engine)
    schema = inspect(old_engine)
    for table in DOCUMENTS:
        assert "content_hash" not in {c["name"] for c in schema.get_columns(table)}
    with old_engine.connect() as conn:
        for table, record in zip(DOCUMENTS, records.values(), strict=True):
            body = conn.execute(text(f"SELECT body FROM {table}")).scalar_one()
            body = body if isinstance(body, dict) else json.loads(body)
            assert model.stored_canonical_text(body) == model.canonical_text(record)
    _downgrade(old_engine, "0014")
    with old_engine.connect() as conn:
        for table, record in zip(DOCUMENTS, records.values(), strict=True):
            assert conn.execute(text(f"SELECT content_hash FROM {table}")).scalar_one() == _hash(record)
    upgrade(old_engine)
