"""The e-commerce stream with real processes: nats-server with JetStream, PostgreSQL, and
`tradewindow worker cbec` processes. One worker is killed (SIGKILL) in the middle of the
stream and others take over: every parcel is decided exactly once and no buyer's year goes over
26,000 CNY — the same results as a one-worker run (equal parcels, so the same count per buyer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.ecommerce.conftest import Parcel, resident_id
from tradewindow.ecommerce import model
from tradewindow.ecommerce.stream import CbecStream
from tradewindow.ecommerce.tables import cbec_buyer_years, cbec_parcels
from tradewindow.migrations import upgrade
from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.platform.db import UnitOfWork, make_engine
from tradewindow.platform.tables import audit_log
from tradewindow.tariff import service as tariff

pytestmark = [pytest.mark.system, pytest.mark.slow]

BUYERS, PER_BUYER, VALUE = 8, 12, "3000.00"      # 8 of each buyer's 12 parcels fit in 26,000
PARTITIONS = 4
TRADEWINDOW = str(Path(sys.executable).with_name("tradewindow"))


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([TRADEWINDOW, "worker", "cbec", "--inspection-rate", "0"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def decided(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(cbec_parcels)).scalar_one()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_killed_stream_worker_loses_nothing_and_counts_nothing_twice(postgres_cluster, nats_server, tmp_path):
    url = postgres_cluster.create_database("cbec_stream")
    engine = make_engine(url)
    upgrade(engine)
    tariff.load_demo_schedule(UnitOfWork(engine), Actor(user_id=None, username="fixture", role=Role.CUSTOMS))

    env = {**os.environ, "TRADEWINDOW_DATABASE_URL": url, "TRADEWINDOW_JOB_QUEUE": "nats",
           "TRADEWINDOW_NATS_URL": nats_server.url, "TRADEWINDOW_NATS_ACK_WAIT_SECONDS": "2",
           "TRADEWINDOW_CBEC_STREAM_PARTITIONS": str(PARTITIONS)}
    env.pop("TRADEWINDOW_DEMO_MODE", None)
    log = tmp_path / "workers.log"
    CbecStream(nats_server.url, PARTITIONS).delete_streams()     # nothing left by other tests
    publisher = CbecStream(nats_server.url, PARTITIONS)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        parcels = [Parcel(buyer=resident_id(100 + b), value=VALUE, order_no=f"STREAM-{b:02d}-{n:03d}",
                          ordered_at=f"2026-11-11T{n:02d}:00:00+08:00")
                   for n in range(PER_BUYER) for b in range(BUYERS)]
        records = [line for parcel in parcels for line in parcel.lines()]
        # Every record once, and a second time: the message id (kind + number) drops the repeats.
        for raw in records + records[: len(records) // 3]:
            fields = {k: v for k, v in raw.items() if k != "kind"}
            kind = model.Kind(raw["kind"])
            publisher.publish(SYSTEM, kind, fields, model.parse_record(kind, fields))
        assert publisher.depth() == len(records)

        workers.append(start_worker(env, log))
        wait_for(lambda: decided(engine) >= 10, 30, "the first worker to decide parcels")
        os.kill(workers[0].pid, signal.SIGKILL)           # in the middle of the stream
        workers[0].wait()
        assert decided(engine) < len(parcels), "the first worker finished before it could be killed"
        workers += [start_worker(env, log), start_worker(env, log)]
        wait_for(lambda: decided(engine) == len(parcels) and publisher.depth() == 0, 40,
                 "every parcel decided and the stream drained")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        publisher.close()

    with engine.connect() as conn:
        rows = conn.execute(select(cbec_parcels.c.order_no, cbec_parcels.c.buyer_id_number,
                                   cbec_parcels.c.decision, cbec_parcels.c.reasons,
                                   cbec_parcels.c.counted_fen)).all()
        years = {r.buyer_id_number: r.total_fen for r in conn.execute(select(cbec_buyer_years))}
        decisions_logged = conn.execute(select(audit_log.c.object_id, func.count())
                                        .where(audit_log.c.action == "ecommerce.parcel_decided")
                                        .group_by(audit_log.c.object_id)).all()
    engine.dispose()

    assert sorted(r.order_no for r in rows) == sorted(p.order_no for p in parcels)
    assert len(decisions_logged) == len(parcels) and {n for _, n in decisions_logged} == {1}
    for b in range(BUYERS):
        buyer = resident_id(100 + b)
        mine = [r for r in rows if r.buyer_id_number == buyer]
        counted = sum(r.counted_fen for r in mine)
        assert counted <= 2_600_000 and years[buyer] == counted
        assert sorted(r.decision for r in mine) == ["reject"] * 4 + ["release"] * 8
        assert all(r.reasons == ["annual_limit_exceeded"] for r in mine if r.decision == "reject")
    assert "Traceback" not in log.read_text(errors="replace")
