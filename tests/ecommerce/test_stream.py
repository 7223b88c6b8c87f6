"""POST /api/v1/cbec/stream and the stream consumer (tradewindow/ecommerce/stream.py) against a
real nats-server; the system test with killed worker processes is tests/system/test_cbec_stream.py."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from tests.ecommerce.conftest import Parcel, resident_id
from tradewindow.ecommerce import service, stream
from tradewindow.ecommerce.model import Kind, mask_id, parse_record
from tradewindow.platform.db import UnitOfWork, make_engine
from tradewindow.platform.jobs import DEAD, DatabaseJobQueue
from tradewindow.platform.settings import get_settings
from tradewindow.platform.worker import Worker
from tradewindow.tariff import service as tariff


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


def test_the_embedded_default_queues_documents_in_the_database(cbec_world, client, as_user, uow, db):
    """Without NATS the same endpoint queues the documents as database jobs, de-duplicated by the
    same message id, and `tradewindow worker cbec` (DatabaseRecordQueue) applies them with the
    same code as on NATS; the general `tradewindow worker` applies them too."""
    first, second = Parcel(), Parcel()
    for who, index in (("platform", 0), ("payment", 1), ("logistics", 2)):
        body = ndjson(first.lines()[index], second.lines()[index])
        sent = client.post("/api/v1/cbec/stream", content=body, headers=as_user(who))
        assert sent.status_code == 202 and sent.json()["published"] == 2
    again = client.post("/api/v1/cbec/stream", content=ndjson(first.lines()[0]), headers=as_user("platform"))
    assert (again.json()["published"], again.json()["repeated"]) == (0, 1)
    queue = stream.record_queue(get_settings(), lambda: UnitOfWork(db))
    assert isinstance(queue, stream.DatabaseRecordQueue) and queue.depth() == 6
    assert queue.run_once(uow, batch=5) == 5            # in the order sent: all but the last waybill
    assert service.get_parcel(uow, cbec_world["customs_officer"], first.order_no)["status"] == "decided"
    assert service.get_parcel(uow, cbec_world["customs_officer"], second.order_no)["status"] == "waiting"
    Worker(db, queue=DatabaseJobQueue(lambda: UnitOfWork(db))).run_once()
    assert queue.depth() == 0
    assert service.get_parcel(uow, cbec_world["customs_officer"], second.order_no)["result"]["decision"] == "release"


def test_a_batch_with_a_refused_document_applies_the_others(cbec_world, uow, db):
    parcel = Parcel()
    order, payment, waybill = parcel.order, parcel.payment, parcel.waybill
    queue = stream.DatabaseRecordQueue(lambda: UnitOfWork(db))
    platform, payment_company, logistics = (cbec_world[n] for n in ("platform", "payment", "logistics"))
    queue.publish(platform, Kind.ORDER, order, parse_record(Kind.ORDER, order))
    # Sent by the wrong party: refused by the service, acknowledged, logged.
    queue.publish(platform, Kind.PAYMENT, payment, parse_record(Kind.PAYMENT, payment))
    queue.publish(logistics, Kind.WAYBILL, waybill, parse_record(Kind.WAYBILL, waybill))
    assert queue.run_once(uow) == 3 and queue.depth() == 0
    assert service.get_parcel(uow, cbec_world["customs_officer"], parcel.order_no)["status"] == "waiting"
    queue.publish(payment_company, Kind.PAYMENT, {**payment, "payment_no": "PAY-2"},
                  parse_record(Kind.PAYMENT, {**payment, "payment_no": "PAY-2"}))
    assert queue.run_once(uow) == 1
    assert service.get_parcel(uow, cbec_world["customs_officer"], parcel.order_no)["result"]["decision"] == "release"


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


def test_a_worker_keeps_its_quotes_between_batches_but_sees_a_tariff_import(cbec_world, uow, db):
    """The quotes a worker has made serve its next batches while the tariff stays the same; a
    schedule imported between two batches is applied to the next one."""
    queue = stream.DatabaseRecordQueue(lambda: UnitOfWork(db))

    def decided(parcel: Parcel) -> dict:
        for kind, who, raw in ((Kind.ORDER, "platform", parcel.order), (Kind.PAYMENT, "payment", parcel.payment),
                               (Kind.WAYBILL, "logistics", parcel.waybill)):
            queue.publish(cbec_world[who], kind, raw, parse_record(kind, raw))
        assert queue.run_once(uow) == 3
        return service.get_parcel(uow, cbec_world["customs_officer"], parcel.order_no)["result"]

    assert decided(Parcel())["vat"] == decided(Parcel())["vat"] == "18.90"        # 300 × 9 % × 70 %
    schedule = tariff.export_schedule(uow)
    raised = schedule.replace("04022100,vat,,,,,,,,0.09,", "04022100,vat,,,,,,,,0.13,")
    assert raised != schedule
    tariff.import_schedule(uow, cbec_world["customs_officer"], raised)
    assert decided(Parcel())["vat"] == "27.30"                                    # 300 × 13 % × 70 %


def test_documents_the_database_cannot_take_are_delivered_again_and_applied_later(
        cbec_world, client, as_user, on_nats, uow, tmp_path):
    """A batch that fails for a reason other than a refusal (here a database that cannot be
    opened) is tried one by one; each document that fails is handed back (nak, with back-off),
    not acknowledged, and applied once the database takes it."""
    parcel = Parcel()
    for who, line in zip(("platform", "payment", "logistics"), parcel.lines(), strict=True):
        assert client.post("/api/v1/cbec/stream", content=ndjson(line), headers=as_user(who)).status_code == 202
    broken = UnitOfWork(make_engine(f"sqlite:///{tmp_path}/no/such/folder/tradewindow.db"))
    assert on_nats.run_once(broken) == 3
    assert on_nats.depth() == 3
    handled, deadline = 0, time.monotonic() + 20
    while handled < 3 and time.monotonic() < deadline:        # back-off: 2 s after a first failure
        handled += on_nats.run_once(uow)
        time.sleep(0.2)
    assert handled == 3 and on_nats.depth() == 0
    assert service.get_parcel(uow, cbec_world["customs_officer"], parcel.order_no)["result"]["decision"] == "release"


@contextmanager
def database_refusing_order(db, order_no: str) -> Iterator[None]:
    """A database that refuses every row of one order (a trigger raising an error): a fault in
    the store, not a refusal by the service, which no retry cures."""
    if db.dialect.name == "postgresql":
        setup = ["CREATE FUNCTION tw_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 f"IF NEW.order_no = '{order_no}' THEN RAISE EXCEPTION 'refused by a trigger'; END IF; "
                 "RETURN NEW; END $$",
                 "CREATE TRIGGER tw_test_refuse BEFORE INSERT ON cbec_orders FOR EACH ROW "
                 "EXECUTE FUNCTION tw_test_refuse()"]
        teardown = ["DROP TRIGGER tw_test_refuse ON cbec_orders", "DROP FUNCTION tw_test_refuse()"]
    else:       # json() of text that is not JSON fails when the row is inserted
        setup = [f"CREATE TRIGGER tw_test_refuse BEFORE INSERT ON cbec_orders WHEN NEW.order_no = '{order_no}' "
                 "BEGIN SELECT json('refused by a trigger'); END"]
        teardown = ["DROP TRIGGER tw_test_refuse"]
    with db.begin() as conn:
        for statement in setup:
            conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with db.begin() as conn:
            for statement in teardown:
                conn.exec_driver_sql(statement)


@pytest.mark.parametrize("queue", ["database", "nats"])
def test_a_document_failing_every_time_is_dead_lettered_after_max_deliveries_and_blocks_nothing(
        cbec_world, uow, db, request, caplog, queue):
    """The retry back-off is a setting (here a millisecond instead of a second: 2, 4, ... 512 ms).
    A document that fails on every delivery is retried MAX_DELIVERIES times in all, then put
    aside (the job queue's dead state; NATS: the dead-letter stream) and logged; the documents
    behind it in its batch and partition are applied at the first try."""
    failing, parcel = Parcel(), Parcel()            # the same buyer: the same partition on NATS
    unit = timedelta(milliseconds=1)
    if queue == "nats":
        records = stream.CbecStream(request.getfixturevalue("nats_server").url, retry_unit=unit)
        records.delete_streams()
        records.close()
        records = stream.CbecStream(records.conn.url, retry_unit=unit)
    else:
        records = stream.DatabaseRecordQueue(lambda: UnitOfWork(db), retry_unit=unit)
    platform, payment, logistics = (cbec_world[n] for n in ("platform", "payment", "logistics"))
    try:
        with database_refusing_order(db, failing.order_no), \
                caplog.at_level(logging.WARNING, logger="tradewindow.cbec.stream"):
            records.publish(platform, Kind.ORDER, failing.order, parse_record(Kind.ORDER, failing.order))
            for actor, (kind, document) in zip((platform, payment, logistics), (
                    (Kind.ORDER, parcel.order), (Kind.PAYMENT, parcel.payment), (Kind.WAYBILL, parcel.waybill)),
                    strict=True):
                records.publish(actor, kind, document, parse_record(kind, document))
            assert records.run_once(uow) == 4
            assert service.get_parcel(uow, cbec_world["customs_officer"], parcel.order_no)["status"] == "decided"
            deadline = time.monotonic() + 30
            while records.depth() and time.monotonic() < deadline:
                records.run_once(uow)
                time.sleep(0.002)
            assert records.depth() == 0
        retried = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
        dead = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
        assert [f"(delivery {n})" in m for n, m in enumerate(retried, start=1)] == [True] * (stream.MAX_DELIVERIES - 1)
        assert len(dead) == 1 and dead[0].levelno == logging.ERROR
        assert f"after {stream.MAX_DELIVERIES} deliveries" in dead[0].getMessage()
        cause = "RaiseException: refused by a trigger" if db.dialect.name == "postgresql" else "malformed JSON"
        assert dead[0].getMessage().endswith(cause)         # one line: the statement's parameters stay out
        if queue == "nats":
            kept = records.conn.run(records.conn.js.stream_info(stream.DEAD_STREAM)).state.messages
            assert kept == 1 and failing.order_no in dead[0].getMessage()
        else:
            assert records.queue.depth().get(DEAD) == 1
        with uow.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM cbec_orders").scalar_one() == 1
    finally:
        if queue == "nats":
            records.delete_streams()
            records.close()


def _written(uow, order_nos: list[str]) -> dict:
    """What deciding the parcels left behind, as comparable values: their documents, the parcels'
    results, audit records and events (without ids, times and the ids' order)."""
    from sqlalchemy import select

    from tradewindow.ecommerce.tables import cbec_orders, cbec_parcels, cbec_payments, cbec_waybills
    from tradewindow.platform.audit import audit_trail
    from tradewindow.platform.tables import outbox_events

    with uow.read() as conn:
        documents = sorted((t.name, tuple(r)) for t in (cbec_orders, cbec_payments, cbec_waybills)
                           for r in conn.execute(select(*(c for c in t.c if c.name != "received_at"))
                                                 .where(t.c.order_no.in_(order_nos))))
        parcels = sorted(tuple(r) for r in conn.execute(
            select(*(c for c in cbec_parcels.c if c.name not in ("id", "decided_at")))
            .where(cbec_parcels.c.order_no.in_(order_nos))))
        numbers = [(name.removesuffix("s"), row[0]) for name, row in documents]
        numbers += [("cbec_parcel", order_no) for order_no in order_nos]
        audits = sorted((a["action"], a["object_type"], a["object_id"], a["actor_user_id"], a["actor_name"],
                         a["before"], json.dumps(a["after"], sort_keys=True))
                        for object_type, number in numbers for a in audit_trail(conn, object_type, number))
        events = sorted((e.event_type, e.aggregate_id, e.owner_enterprise_id, json.dumps(e.payload, sort_keys=True))
                        for e in conn.execute(select(outbox_events).where(outbox_events.c.aggregate_id.in_(order_nos))))
    return {"documents": documents, "parcels": parcels, "audits": audits, "events": events}


def test_a_batch_of_many_parcels_writes_what_sending_them_one_by_one_writes(cbec_world, uow, db):
    """A stream batch writes its rows as text in a few statements (COPY on PostgreSQL): the same
    documents, results, audit records and events as the same parcels sent one at a time."""
    def parcels(prefix: str, buyer: str) -> list[Parcel]:
        made = [Parcel(order_no=f"{prefix}-{n:03d}", buyer=buyer, value=str(100 + n)) for n in range(30)]
        made[3].order["buyer_id_number"] = "110105199001010000"       # invalid: rejected
        return made

    one_by_one, batched = parcels("ONE", resident_id(10)), parcels("MANY", resident_id(11))
    for parcel in one_by_one:
        for kind, who in ((Kind.ORDER, "platform"), (Kind.PAYMENT, "payment"), (Kind.WAYBILL, "logistics")):
            service.submit(uow, cbec_world[who], kind, getattr(parcel, kind.value))
    queue = stream.DatabaseRecordQueue(lambda: UnitOfWork(db))
    for parcel in batched:
        for kind, who in ((Kind.ORDER, "platform"), (Kind.PAYMENT, "payment"), (Kind.WAYBILL, "logistics")):
            raw = getattr(parcel, kind.value)
            queue.publish(cbec_world[who], kind, raw, parse_record(kind, raw))
    assert queue.run_once(uow) == 90

    def renamed(written: dict) -> str:
        text = json.dumps(written, default=str, ensure_ascii=False).replace("ONE-", "MANY-")
        for a, b in ((resident_id(10), resident_id(11)), (mask_id(resident_id(10)), mask_id(resident_id(11)))):
            text = text.replace(a, b)
        return text

    expected, got = _written(uow, [p.order_no for p in one_by_one]), _written(uow, [p.order_no for p in batched])
    assert len(got["parcels"]) == 30 and len(got["audits"]) == 120 and len(got["events"]) == 30
    assert {p[8] for p in got["parcels"]} == {"release", "reject"}
    assert json.loads(renamed(expected)) == json.loads(json.dumps(got, default=str, ensure_ascii=False))


def test_documents_a_worker_holds_from_an_earlier_batch_decide_as_documents_read_back(cbec_world, uow, db,
                                                                                        monkeypatch):
    """A worker keeps the documents it stored until their parcel is complete, so the batch that
    brings the last one need not read them back; what it decides is the same either way, and it
    keeps at most WAITING_KEPT orders' documents."""
    queue = stream.DatabaseRecordQueue(lambda: UnitOfWork(db))
    held, read_back = Parcel(), Parcel()

    def send(parcel: Parcel, *kinds: Kind) -> None:
        who = {Kind.ORDER: "platform", Kind.PAYMENT: "payment", Kind.WAYBILL: "logistics"}
        for kind in kinds:
            raw = getattr(parcel, kind.value)
            queue.publish(cbec_world[who[kind]], kind, raw, parse_record(kind, raw))

    for parcel in (held, read_back):
        send(parcel, Kind.ORDER, Kind.PAYMENT)
    assert queue.run_once(uow) == 4
    waiting = service._waiting_documents(uow)
    assert set(waiting[held.order_no]) == set(waiting[read_back.order_no]) == {Kind.ORDER, Kind.PAYMENT}
    del waiting[read_back.order_no]                  # as if stored by another worker
    for parcel in (held, read_back):
        send(parcel, Kind.WAYBILL)
    assert queue.run_once(uow) == 2
    assert held.order_no not in waiting and read_back.order_no not in waiting
    officer = cbec_world["customs_officer"]
    results = [service.get_parcel(uow, officer, p.order_no)["result"] for p in (held, read_back)]
    assert results[0]["decision"] == "release"
    own = ("order_no", "waybill_no", "buyer_year_total_after", "decided_at")
    held_result, read_result = ({k: v for k, v in result.items() if k not in own} for result in results)
    assert held_result == read_result

    monkeypatch.setattr(service, "WAITING_KEPT", 2)
    late = [Parcel() for _ in range(3)]
    for parcel in late:
        send(parcel, Kind.ORDER)
    assert queue.run_once(uow) == 3
    assert list(waiting) == [p.order_no for p in late[1:]]          # the oldest dropped first
