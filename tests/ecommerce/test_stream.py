"""POST /api/v1/cbec/stream and the stream consumer (tradewindow/ecommerce/stream.py) against a
real nats-server; the system test with killed worker processes is tests/system/test_cbec_stream.py."""

from __future__ import annotations

import json

import pytest

from tests.ecommerce.conftest import Parcel
from tradewindow.ecommerce import service, stream
from tradewindow.ecommerce.model import Kind, parse_record
from tradewindow.platform.settings import get_settings


def ndjson(*lines: dict) -> str:
    return "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"


@pytest.fixture
def on_nats(monkeypatch, nats_server):
    monkeypatch.setenv("TRADEWINDOW_JOB_QUEUE", "nats")
    monkeypatch.setenv("TRADEWINDOW_NATS_URL", nats_server.url)
    get_settings.cache_clear()
    consumer = stream.CbecStream(nats_server.url, get_settings().cbec_stream_partitions)
    consumer.delete_streams()
    stream._shared.clear()
    yield consumer
    consumer.delete_streams()
    consumer.close()
    for opened in stream._shared.values():
        opened.close()
    stream._shared.clear()


def test_the_stream_answers_503_when_the_job_queue_is_the_database(cbec_world, client, as_user):
    response = client.post("/api/v1/cbec/stream", content=ndjson(Parcel().lines()[0]),
                           headers=as_user("platform"))
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "stream_unavailable"


def test_published_records_are_applied_once_by_the_stream_consumer(cbec_world, client, as_user, on_nats, uow):
    parcel = Parcel()
    order, payment, waybill = parcel.lines()
    sent = client.post("/api/v1/cbec/stream", content=ndjson(order, waybill), headers=as_user("platform"))
    assert sent.status_code == 202
    body = sent.json()
    assert (body["published"], body["repeated"]) == (1, 0)
    assert body["refused"][0]["line"] == 2 and body["refused"][0]["errors"][0]["code"] == "role_not_allowed"
    again = client.post("/api/v1/cbec/stream", content=ndjson(order), headers=as_user("platform"))
    assert (again.json()["published"], again.json()["repeated"]) == (0, 1)   # same message id
    for who, line in (("payment", payment), ("logistics", waybill)):
        assert client.post("/api/v1/cbec/stream", content=ndjson(line), headers=as_user(who)).status_code == 202

    assert on_nats.depth() == 3
    assert on_nats.run_once(uow) == 3
    assert on_nats.depth() == 0
    parcel_row = service.get_parcel(uow, cbec_world["customs_officer"], parcel.order_no)
    assert parcel_row["result"]["decision"] == "release"

    # Outside the duplicate window the service still answers a repeat as a repeat.
    fields = {k: v for k, v in order.items() if k != "kind"}
    republished = stream.CbecStream(on_nats.conn.url, on_nats.partitions)
    republished.conn.run(republished.conn.js.publish(
        f"{stream.SUBJECTS}.0", json.dumps({"kind": "order", "record": fields, "actor": {
            "user_id": None, "username": "x", "role": "admin", "enterprise_id": None}}).encode()))
    republished.close()
    assert on_nats.run_once(uow) == 1
    assert service.get_parcel(uow, cbec_world["customs_officer"], parcel.order_no)["result"]["decision"] == "release"


def test_a_buyers_records_share_a_partition():
    parcel = Parcel()
    order = parse_record(Kind.ORDER, {k: v for k, v in parcel.order.items()})
    payment = parse_record(Kind.PAYMENT, parcel.payment)
    assert stream.partition(order, 8) == stream.partition(payment, 8)
    assert stream.message_id(Kind.ORDER, order) == f"order:{parcel.order_no}"
