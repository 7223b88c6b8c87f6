"""The e-commerce stream with real processes: nats-server with JetStream, PostgreSQL, and
`tradewindow worker cbec` processes. One worker is killed (SIGKILL) in the middle of the stream and
others take over: every parcel is decided exactly once, no buyer's year goes over 26,000 CNY, and
the results equal those of a one-worker run of the same records, parcel by parcel.

What may differ between the two runs, by the rule: a stream applies the annual limit in
completion order, so for a buyer whose parcels do not all fit, *which* of them is refused
`annual_limit_exceeded` (and every running `buyer_year_total_after`) depends on timing. Their
parcels all have the same value here, so *how many* are refused does not. Everything else is
compared parcel by parcel: decision, reasons and the amount counted of every parcel of a buyer
within the limit and of every parcel refused for another reason, the customs value and taxes of
every parcel; per buyer, the decisions and reasons counted, and the year total, which is also the
last `buyer_year_total_after` (the running totals before it follow the completion order)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
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

PARTITIONS = 4
TRADEWINDOW = str(Path(sys.executable).with_name("tradewindow"))
# Buyers over the limit: 12 parcels of 3,000 CNY, of which 8 fit in 26,000.
FULL_BUYERS, PER_FULL_BUYER, FULL_VALUE = 6, 12, "3000.00"
# Buyers within it: 5 parcels each, values differing from buyer to buyer, some spoilt.
LIGHT_BUYERS, PER_LIGHT_BUYER = 6, 5


def records() -> tuple[list[Parcel], list[dict]]:
    parcels = [Parcel(buyer=resident_id(100 + b), value=FULL_VALUE, order_no=f"STREAM-F{b:02d}-{n:03d}",
                      ordered_at=f"2026-11-11T{n:02d}:00:00+08:00")
               for n in range(PER_FULL_BUYER) for b in range(FULL_BUYERS)]
    for b in range(LIGHT_BUYERS):
        for n in range(PER_LIGHT_BUYER):
            parcel = Parcel(buyer=resident_id(200 + b), value=f"{100 + 37 * b + n}.50",
                            order_no=f"STREAM-L{b:02d}-{n:03d}", ordered_at=f"2026-11-11T{n:02d}:30:00+08:00")
            if n == 1:
                parcel.payment["payer_id_number"] = resident_id(900 + b)        # payer_mismatch
            elif n == 2 and b % 2:
                parcel.waybill["consignee_name"] = "李四"                        # consignee_mismatch
            elif n == 3 and b % 3 == 0:
                parcel.order["tax_withheld"] = "1.00"               # tax_withheld and amount mismatch
            parcels.append(parcel)
    return parcels, [line for parcel in parcels for line in parcel.lines()]


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A `tradewindow worker cbec`, returned once it says it started (connected to NATS, its
    streams there): a loaded machine may take many seconds to start a Python process that imports
    every context, and what the test measures from here on should not include that."""
    before = _started(log)
    with open(log, "ab") as out:
        worker = subprocess.Popen([TRADEWINDOW, "worker", "cbec", "--inspection-rate", "0", "--batch", "20"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for(lambda: _started(log) > before, 120, "a worker to start", [worker], log)
    return worker


def _started(log: Path) -> int:
    return log.read_bytes().count(b"cbec worker started") if log.exists() else 0


def decided(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(cbec_parcels)).scalar_one()


def wait_for(condition, timeout: float, what: str, workers: list[subprocess.Popen[bytes]],
             log: Path) -> None:
    """Until `condition()`; fails after `timeout` seconds, or at once when one of `workers` (the
    ones expected to run) has exited, with the workers' log."""
    deadline = time.monotonic() + timeout
    while not condition():
        exited = [w.returncode for w in workers if w.poll() is not None]
        if exited or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
            why = f"a worker exited ({exited})" if exited else f"timed out after {timeout} s"
            raise AssertionError(f"{why} waiting for {what}; the workers' log ends:\n{tail}")
        time.sleep(0.1)


def run(postgres_cluster, nats_server, tmp_path: Path, name: str, kill_one: bool) -> dict:
    """Publish every record (a third of them twice) and let workers decide them: with kill_one,
    one worker killed mid-stream and two more started; otherwise one worker alone."""
    url = postgres_cluster.create_database(name)
    engine = make_engine(url)
    upgrade(engine)
    tariff.load_demo_schedule(UnitOfWork(engine), Actor(user_id=None, username="fixture", role=Role.CUSTOMS))
    env = {**os.environ, "TRADEWINDOW_DATABASE_URL": url, "TRADEWINDOW_JOB_QUEUE": "nats",
           "TRADEWINDOW_NATS_URL": nats_server.url, "TRADEWINDOW_NATS_ACK_WAIT_SECONDS": "2",
           "TRADEWINDOW_CBEC_STREAM_PARTITIONS": str(PARTITIONS)}
    env.pop("TRADEWINDOW_DEMO_MODE", None)
    log = tmp_path / f"{name}.log"
    stale = CbecStream(nats_server.url, PARTITIONS)
    stale.delete_streams()                      # nothing left by other runs
    stale.close()                               # before the server stops, or its client reconnects in vain
    publisher = CbecStream(nats_server.url, PARTITIONS)
    parcels, lines = records()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        # Every record once, and a third a second time: the message id (kind + number) drops them.
        for raw in lines + lines[: len(lines) // 3]:
            fields = {k: v for k, v in raw.items() if k != "kind"}
            kind = model.Kind(raw["kind"])
            publisher.publish(SYSTEM, kind, fields, model.parse_record(kind, fields))
        assert publisher.depth() == len(lines)
        workers.append(start_worker(env, log))
        if kill_one:
            wait_for(lambda: decided(engine) >= 10, 60, "the first worker to decide parcels", workers, log)
            os.kill(workers[0].pid, signal.SIGKILL)           # in the middle of the stream
            workers[0].wait()
            assert decided(engine) < len(parcels), "the first worker finished before it could be killed"
            workers += [start_worker(env, log), start_worker(env, log)]
        # A liveness bound, not a speed test: generous for a loaded machine.
        wait_for(lambda: decided(engine) == len(parcels) and publisher.depth() == 0, 180,
                 "every parcel decided and the stream drained", [w for w in workers if w.returncode is None], log)
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
        rows = {r.order_no: r for r in conn.execute(select(cbec_parcels))}
        years = {r.buyer_id_number: r.total_fen for r in conn.execute(select(cbec_buyer_years))}
        logged = conn.execute(select(audit_log.c.object_id, func.count())
                              .where(audit_log.c.action == "ecommerce.parcel_decided")
                              .group_by(audit_log.c.object_id)).all()
    engine.dispose()
    assert "Traceback" not in log.read_text(errors="replace")
    return {"parcels": parcels, "rows": rows, "years": years, "logged": logged}


def test_a_killed_stream_worker_loses_nothing_counts_nothing_twice_and_decides_as_one_worker(
        postgres_cluster, nats_server, tmp_path):
    stream = run(postgres_cluster, nats_server, tmp_path, "cbec_stream", kill_one=True)
    alone = run(postgres_cluster, nats_server, tmp_path, "cbec_stream_alone", kill_one=False)
    parcels, rows = stream["parcels"], stream["rows"]

    # Nothing lost, nothing counted twice.
    assert sorted(rows) == sorted(p.order_no for p in parcels)
    assert len(stream["logged"]) == len(parcels) and {n for _, n in stream["logged"]} == {1}
    for buyer in {r.buyer_id_number for r in rows.values()}:
        counted = sum(r.counted_fen for r in rows.values() if r.buyer_id_number == buyer)
        assert counted <= 2_600_000 and stream["years"][buyer] == counted

    # The same results as one worker alone.
    assert sorted(alone["rows"]) == sorted(rows)
    assert stream["years"] == alone["years"]
    full = {resident_id(100 + b) for b in range(FULL_BUYERS)}
    taxes = ("customs_value_fen", "duty_fen", "consumption_tax_fen", "vat_fen", "total_tax_fen")
    for order_no, row in rows.items():
        other = alone["rows"][order_no]
        assert [getattr(row, t) for t in taxes] == [getattr(other, t) for t in taxes], order_no
        limited = row.buyer_id_number in full and "annual_limit_exceeded" in (*row.reasons, *other.reasons)
        if not limited:
            assert (row.decision, row.reasons, row.counted_fen) == (other.decision, other.reasons,
                                                                    other.counted_fen), order_no
    for buyer in {r.buyer_id_number for r in rows.values()}:
        mine = [r for r in rows.values() if r.buyer_id_number == buyer]
        theirs = [alone["rows"][r.order_no] for r in mine]
        assert Counter(r.decision for r in mine) == Counter(r.decision for r in theirs), buyer
        assert Counter(tuple(r.reasons) for r in mine) == Counter(tuple(r.reasons) for r in theirs), buyer
        # The last running total is the year's, in both runs (the ones before depend on the order).
        assert max(r.year_total_after_fen for r in mine) == stream["years"][buyer]
        assert max(r.year_total_after_fen for r in theirs) == alone["years"][buyer]
    for b in range(FULL_BUYERS):
        mine = [r for r in rows.values() if r.buyer_id_number == resident_id(100 + b)]
        assert sorted(r.decision for r in mine) == ["reject"] * 4 + ["release"] * 8
        assert all(r.reasons == ["annual_limit_exceeded"] for r in mine if r.decision == "reject")
    light = [r for r in rows.values() if r.buyer_id_number not in full]
    assert {reason for r in light for reason in r.reasons} >= {"payer_mismatch", "consignee_mismatch",
                                                                "tax_withheld_mismatch"}
