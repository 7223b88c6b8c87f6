"""Benchmark: the cross-border e-commerce stream on NATS JetStream with `tradewindow worker cbec`
processes against PostgreSQL.

    .venv/bin/python benchmarks/cbec_stream.py [--parcels 100000] [--workers 2] [--batch 1000]

Starts a throwaway PostgreSQL cluster and nats-server (-js), writes the records of `--parcels`
parcels with `tradewindow cbec generate` (repeat buyers, out-of-order records, a few percent of
each defect), publishes them all to the stream (core NATS publishes with the message-id header,
one flush at the end: ingest is not what is measured), then starts `--workers` worker processes
and waits until every complete parcel is decided and the stream is drained.

Prints parcels/s two ways: over the wall time from starting the workers (start-up included), and
between the first and the last decision (`decided_at`), which is the steady rate; the worker
processes' CPU time and the PostgreSQL server's over the same span (read from /proc, as
benchmarks/cbec.py does), each per parcel; the load average before and after (other processes
share the cores); and as its last line the same figures as one JSON object. Not a test: it
asserts nothing about time. Figures are only meaningful on an otherwise idle machine."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from benchmarks.cbec import server_cpu  # noqa: E402
from tests.support.nats import running_nats  # noqa: E402
from tests.support.postgres import SIZED_FOR_BENCHMARKS, running_cluster  # noqa: E402
from tradewindow.ecommerce import generate, model, service  # noqa: E402
from tradewindow.ecommerce.stream import SUBJECTS, CbecStream, message_id, partition  # noqa: E402
from tradewindow.ecommerce.tables import cbec_parcels  # noqa: E402
from tradewindow.migrations import upgrade  # noqa: E402
from tradewindow.platform.auth import SYSTEM, Actor, Role  # noqa: E402
from tradewindow.platform.db import UnitOfWork, make_engine  # noqa: E402
from tradewindow.platform.nats_queue import MSG_ID  # noqa: E402
from tradewindow.tariff import service as tariff  # noqa: E402

TRADEWINDOW = str(Path(sys.executable).with_name("tradewindow"))
PARTITIONS = 8
KINDS = {"orders": model.Kind.ORDER, "payments": model.Kind.PAYMENT, "waybills": model.Kind.WAYBILL}


def publish_all(stream: CbecStream, directory: Path, arrival: str = "files") -> tuple[int, int]:
    """Publish every line of the three files, file after file (`arrival` "files": every order
    before any payment, every payment before any waybill, so no parcel is complete until the
    waybills come) or mixed (the next line of each file in turn, as documents sent over the same
    hours arrive); returns (records published, complete parcels)."""
    published = 0
    numbers: dict[model.Kind, set[str]] = {kind: set() for kind in KINDS.values()}
    by_file: list[list[tuple[str, bytes, str]]] = []
    for name, kind in KINDS.items():
        by_file.append(messages := [])
        with open(directory / f"{name}.ndjson", encoding="utf-8") as lines:
            for line in lines:
                raw = json.loads(line)
                try:
                    record = model.parse_record(kind, raw)
                except model.ValidationFailed:
                    continue                  # refused at ingest, as the API would
                numbers[kind].add(record.order_no)
                body = json.dumps(service.queued(SYSTEM, kind, raw), ensure_ascii=False).encode()
                messages.append((f"{SUBJECTS}.{partition(record, stream.partitions)}", body,
                                 message_id(kind, record)))
    complete = len(numbers[model.Kind.ORDER] & numbers[model.Kind.PAYMENT] & numbers[model.Kind.WAYBILL])
    if arrival == "files":
        messages = [message for file in by_file for message in file]
    else:
        messages = [message for line in itertools.zip_longest(*by_file) for message in line if message]

    async def send() -> None:
        nc = stream.conn.nc
        for index, (subject, body, msg_id) in enumerate(messages):
            await nc.publish(subject, body, headers={MSG_ID: msg_id})
            if index % 5000 == 4999:
                await nc.flush()
                await asyncio.sleep(0)
        await nc.flush()
    stream.conn.run(send(), timeout=None)
    published = len(messages)
    deadline = time.monotonic() + 120
    while stream.depth() < published * 0.9 and time.monotonic() < deadline:   # repeats are dropped
        time.sleep(0.2)
    return published, complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000, help="documents per worker transaction and partition")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arrival", choices=("files", "mixed"), default="files",
                        help="publish the files one after the other, or their lines in turn (see publish_all)")
    parser.add_argument("--log", help="keep the workers' log in this file")
    parser.add_argument("--profile", help="run each worker under `py-spy record --format raw` (this py-spy "
                                          "binary); its samples go to --log's name + .<n>.spy")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tw-cbec-stream-") as scratch, \
            running_cluster(SIZED_FOR_BENCHMARKS) as cluster, running_nats() as nats:
        files = Path(scratch)
        generate.generate(generate.Options(parcels=args.parcels, seed=args.seed), files)
        url = cluster.create_database("bench_cbec_stream")
        engine = make_engine(url)
        upgrade(engine)
        tariff.load_demo_schedule(UnitOfWork(engine), Actor(user_id=None, username="bench", role=Role.CUSTOMS))
        stream = CbecStream(nats.url, PARTITIONS)
        started = time.perf_counter()
        published, complete = publish_all(stream, files, args.arrival)
        publish_seconds = time.perf_counter() - started
        depth = stream.depth()
        print(f"{published} records published ({depth} after de-duplication) in {publish_seconds:.1f} s; "
              f"{complete} complete parcels")

        env = {**os.environ, "TRADEWINDOW_DATABASE_URL": url, "TRADEWINDOW_JOB_QUEUE": "nats",
               "TRADEWINDOW_NATS_URL": nats.url, "TRADEWINDOW_CBEC_STREAM_PARTITIONS": str(PARTITIONS),
               "TRADEWINDOW_NATS_ACK_WAIT_SECONDS": "60"}
        env.pop("TRADEWINDOW_DEMO_MODE", None)
        log = open(files / "workers.log", "wb")  # noqa: SIM115 - closed below
        load_before = [round(x, 2) for x in os.getloadavg()]
        server_began, nats_began = server_cpu(cluster.data_dir), process_cpu(nats.process.pid)
        started, started_at = time.perf_counter(), datetime.now(UTC)
        command = [TRADEWINDOW, "worker", "cbec", "--batch", str(args.batch)]
        workers = [subprocess.Popen(command if not args.profile else [
            args.profile, "record", "--format", "raw", "-r", "200", "-o", f"{args.log or 'workers'}.{n}.spy",
            "--", *command], env=env, stdout=log, stderr=subprocess.STDOUT) for n in range(args.workers)]

        def decided() -> int:
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(cbec_parcels)).scalar_one()
        try:
            last, stalled = -1, time.monotonic()
            while True:
                count = decided()
                if count >= complete and stream.depth() == 0:
                    break
                if count != last:
                    last, stalled = count, time.monotonic()
                elif time.monotonic() - stalled > 60:
                    raise SystemExit(f"stalled at {count} of {complete} parcels; see {files / 'workers.log'}")
                time.sleep(0.5)
            wall = time.perf_counter() - started
            server = server_cpu(cluster.data_dir) - server_began
            nats_cpu = process_cpu(nats.process.pid) - nats_began
        finally:
            for worker in workers:
                for child in _children(worker.pid) if args.profile else [worker.pid]:
                    os.kill(child, signal.SIGTERM)     # py-spy writes its samples once its child ends
            for worker in workers:
                worker.wait(timeout=30)
            cpu = _children_cpu()
            log.close()
            if args.log:
                shutil.copyfile(files / "workers.log", args.log)
        with engine.connect() as conn:
            first, final, count = conn.execute(select(func.min(cbec_parcels.c.decided_at),
                                                      func.max(cbec_parcels.c.decided_at),
                                                      func.count())).one()
            by_decision = dict(conn.execute(select(cbec_parcels.c.decision, func.count())
                                            .group_by(cbec_parcels.c.decision)).all())
        engine.dispose()
        stream.close()
        steady = (final - first).total_seconds()
        first_after = (first - started_at).total_seconds()
        figures = {
            "parcels": count, "records": published, "arrival": args.arrival, "workers": args.workers,
            "batch": args.batch,
            "wall_seconds": round(wall, 2), "parcels_per_second_wall": round(count / wall),
            "steady_seconds": round(steady, 2), "first_decision_after_seconds": round(first_after, 2),
            "parcels_per_second_steady": round(count / steady) if steady else None,
            "worker_cpu_seconds": round(cpu, 1),
            "cpu_ms_per_parcel": round(cpu * 1000 / count, 3) if count else None,
            "server_cpu_seconds": round(server, 1),
            "server_cpu_ms_per_parcel": round(server * 1000 / count, 3) if count else None,
            "nats_cpu_seconds": round(nats_cpu, 1),
            "nats_cpu_ms_per_parcel": round(nats_cpu * 1000 / count, 3) if count else None,
            "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "decisions": by_decision, "target_parcels_per_second": 10_000,
        }
        print(f"{count} parcels decided by {args.workers} workers: {figures['parcels_per_second_wall']} parcels/s "
              f"over {wall:.1f} s from start-up, {figures['parcels_per_second_steady']} parcels/s between the "
              f"first and last decision (the first {first_after:.1f} s after start); "
              f"workers' CPU {cpu:.1f} s ({figures['cpu_ms_per_parcel']} ms per parcel), "
              f"PostgreSQL's "
              f"{server:.1f} s ({figures['server_cpu_ms_per_parcel']} ms per parcel), nats-server's {nats_cpu:.1f} s "
              f"({figures['nats_cpu_ms_per_parcel']} ms per parcel); load average "
              f"{load_before[0]} before, {figures['load_average_after'][0]} after")
        print(json.dumps(figures))


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (the nats-server), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def _children_cpu() -> float:
    """User + system CPU of the reaped worker processes (this process's children)."""
    usage = os.times()
    return usage.children_user + usage.children_system


if __name__ == "__main__":
    main()
