"""Benchmark: EPCIS capture of China-Europe trains into PostgreSQL, then container timelines.

    .venv/bin/python benchmarks/epcis.py [--events 1000000] [--batch 1000] [--queries 500]
                                         [--parcels 25] [--senders 1] [--schema PATH] [--profile FILE]

Starts a throwaway PostgreSQL cluster (sized as the other benchmarks':
tests.support.postgres.SIZED_FOR_BENCHMARKS), registers the trains (one consignment each: wagons, each
carrying two containers with an e-lock; planned route Chongqing Tuanjiecun -> Alashankou -> Dostyk
-> Malaszewicze -> Duisburg) and then
  1. captures `--events` EPCIS 2.0 events through the real capture path (`service.capture`: schema,
     event facts, idempotency, containment, tracking, monitoring rules, alerts), `--batch` events
     per EPCIS document, as a postal operator and the carrier would send them: parcels packed into
     mail bags (no eventID: the event hash is the id), bags stuffed into containers, containers
     sealed and loaded onto wagons, the wagons departing and arriving at each stop, customs
     inspecting seals and reefer temperatures at the borders (now and then a broken seal or a
     temperature excursion), unloading at Duisburg: events/s, CPU time per event (the capturing
     processes and the PostgreSQL server), peak memory of a capturing process. With `--senders N`
     N processes capture at once, each its own share of the trains (train i goes to sender
     i mod N, as several carriers' systems send at the same time; a train's events stay in order
     within one sender), so the capture's Python and the server's work use the cores together;
     events/s is then all senders' events over the wall time from the first start to the last end;
  0. (first) the compiled schema validator alone on a sample of the documents: events/s;
  2. the timeline of `--queries` random containers (`service.container_timeline`, as customs):
     p50/p99 latency, and p99 of 100 timelines taken when a tenth of the events were stored;
  3. the raw database limit in the same run: the rows capture stored (events, identifiers,
     containment, tracked events, seals, alerts, captures, audit and outbox records) bulk-loaded
     with COPY into a copy of the database as it was before capture (same tables, same indexes),
     through one connection and through two at once (the faster counts): events/s, and
     capture's share of it.
Prints the figures, and as its last line the same figures as one JSON object. Not a test: it
asserts nothing about time. The machine it runs on is shared: take figures on an idle machine.

The schema is GS1's EPCIS-JSON-Schema.json: --schema, else TRADEWINDOW_EPCIS_SCHEMA, else the
reference data (../shared/data/epcis/)."""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from stdnum import iso6346  # noqa: E402

from tests.support.postgres import SIZED_FOR_BENCHMARKS, copy_at_once, running_cluster  # noqa: E402
from tradewindow.logistics import model, service  # noqa: E402
from tradewindow.logistics.schema import compile_schema  # noqa: E402
from tradewindow.migrations import upgrade  # noqa: E402
from tradewindow.platform.auth import Actor, Role  # noqa: E402
from tradewindow.platform.db import UnitOfWork, make_engine  # noqa: E402
from tradewindow.platform.ids import new_id  # noqa: E402
from tradewindow.platform.settings import get_settings  # noqa: E402
from tradewindow.registry import service as registry  # noqa: E402
from tradewindow.registry.model import EnterpriseInput  # noqa: E402

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CARRIER, TRADER = "91500169FGG0741G3A", "91500115GG37HDHFEA"
# Stop, planned arrival and departure (hours after departure), whether customs inspects there.
ROUTE = [("CNTNR", None, 0, False), ("CNAKU", 96, 100, True), ("KZDOS", 104, 110, False),
         ("PLMAL", 288, 296, True), ("DEDUI", 360, None, False)]
WAGONS, BAGS, PARCELS = 10, 8, 25          # per train; two containers per wagon
TRAIN_INTERVAL = timedelta(minutes=30)
CONTEXT = [model.DEFAULT_CONTEXT, {"tw": model.TW_NAMESPACE}]
# What this run captures, for the raw limit: every table capture writes rows into.
CAPTURED_TABLES = ("epcis_captures", "epcis_events", "containment", "tracked_events",
                   "seals", "monitoring_alerts", "audit_log", "outbox_events")


def events_per_train() -> int:
    containers = 2 * WAGONS
    inspections = sum(1 for *_, inspect in ROUTE if inspect)
    moves = 2 * len(ROUTE) - 2
    return (containers * BAGS + containers + containers + WAGONS + WAGONS * moves
            + containers * inspections + WAGONS + containers)


def container_number(serial: int) -> str:
    body = f"TWCU{serial:06d}"
    return body + iso6346.calc_check_digit(body)


def train_numbers(train: int) -> tuple[list[str], list[str]]:
    wagons = [f"C70{train * WAGONS + w:07d}" for w in range(WAGONS)]
    containers = [container_number(train * 2 * WAGONS + c) for c in range(2 * WAGONS)]
    return wagons, containers


def consignment(train: int) -> dict:
    wagons, containers = train_numbers(train)
    start = T0 + train * TRAIN_INTERVAL
    route = [{"location": code,
              **({"planned_arrival": (start + timedelta(hours=arrive)).isoformat()} if arrive is not None else {}),
              **({"planned_departure": (start + timedelta(hours=leave)).isoformat()} if leave is not None else {})}
             for code, arrive, leave, _ in ROUTE]
    return {"client_reference": f"TRAIN-{train:06d}", "transport_document": f"CIM-{train:06d}",
            "trader": TRADER, "description": "Cross-border e-commerce mail, reefer and dry containers",
            "temperature": {"min": "-5", "max": "25"},
            "legs": [{"mode": "rail", "route": route}],
            "equipment": [*({"kind": "wagon", "number": w} for w in wagons),
                          *({"kind": "container", "number": c, "carried_on": wagons[i // 2],
                             "seals": [{"number": _seal(train, i), "kind": "elock"}]}
                            for i, c in enumerate(containers))]}


def _seal(train: int, index: int) -> str:
    return f"CN{train * 2 * WAGONS + index:08d}"


def _moment(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def train_events(train: int, rng: random.Random) -> list[dict]:
    """One train's events in time order."""
    wagons, containers = train_numbers(train)
    start = T0 + train * TRAIN_INTERVAL
    found: list[tuple[datetime, dict]] = []

    def add(hours: float, locode: str, body: dict, *, with_id: bool = True) -> None:
        moment = start + timedelta(hours=hours)
        event = {"type": body.pop("type", "ObjectEvent"), "eventTime": _moment(moment),
                 "eventTimeZoneOffset": "+08:00" if locode.startswith("CN") else "+01:00"}
        if with_id:
            event["eventID"] = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        event.update(body)
        event["readPoint"] = {"id": f"urn:epc:id:sgln:0614141.{ROUTE_INDEX[locode]:05d}.{rng.randint(1, 9)}"}
        event["bizLocation"] = {"id": model.location_uri(locode)}
        found.append((moment, event))

    for c, container in enumerate(containers):
        epc = model.equipment_epc("container", container)
        bags = [f"urn:epc:id:sscc:0614141.{(train * 2 * WAGONS + c) * BAGS + b:010d}" for b in range(BAGS)]
        for b, bag in enumerate(bags):
            parcels = [f"urn:epc:id:sgtin:4012345.011111.{train}{c:02d}{b:02d}{p:03d}" for p in range(PARCELS)]
            add(-30 + c * 0.1 + b * 0.01, "CNTNR", {
                "type": "AggregationEvent", "action": "ADD", "bizStep": "packing", "disposition": "in_progress",
                "parentID": bag, "childEPCs": parcels}, with_id=False)
        add(-12 + c * 0.05, "CNTNR", {"type": "AggregationEvent", "action": "ADD", "bizStep": "loading",
                                      "disposition": "in_progress", "parentID": epc, "childEPCs": bags})
        add(-10 + c * 0.05, "CNTNR", {"action": "OBSERVE", "bizStep": "sealing", "disposition": "sealed",
                                      "epcList": [epc], "tw:seal": {"number": _seal(train, c), "kind": "elock",
                                                                    "status": "intact"}})
    for w, wagon in enumerate(wagons):
        add(-6 + w * 0.05, "CNTNR", {"type": "AggregationEvent", "action": "ADD", "bizStep": "loading",
                                     "disposition": "in_transit", "parentID": model.equipment_epc("wagon", wagon),
                                     "childEPCs": [model.equipment_epc("container", c)
                                                   for c in containers[2 * w:2 * w + 2]]})
    for code, arrive, leave, inspect in ROUTE:
        for w, wagon in enumerate(wagons):
            epc = model.equipment_epc("wagon", wagon)
            if arrive is not None:
                add(arrive + w * 0.02, code, {"action": "OBSERVE", "bizStep": "arriving",
                                              "disposition": "in_transit", "epcList": [epc]})
            if leave is not None:
                add(leave + w * 0.02, code, {"action": "OBSERVE", "bizStep": "departing",
                                             "disposition": "in_transit", "epcList": [epc]})
        if inspect:
            for c, container in enumerate(containers):
                broken = rng.random() < 0.002
                warm = rng.random() < 0.002
                add(arrive + 1 + c * 0.02, code, {
                    "action": "OBSERVE", "bizStep": "inspecting", "disposition": "sealed",
                    "epcList": [model.equipment_epc("container", container)],
                    "tw:seal": {"number": _seal(train, c), "kind": "elock",
                                "status": "broken" if broken else "intact"},
                    "sensorElementList": [{"sensorReport": [{
                        "type": "Temperature", "value": 31.5 if warm else round(rng.uniform(2, 8), 1),
                        "uom": "CEL"}]}]})
    final = ROUTE[-1][1]
    for w, wagon in enumerate(wagons):
        add(final + 2 + w * 0.05, "DEDUI", {
            "type": "AggregationEvent", "action": "DELETE", "bizStep": "unloading", "disposition": "in_progress",
            "parentID": model.equipment_epc("wagon", wagon),
            "childEPCs": [model.equipment_epc("container", c) for c in containers[2 * w:2 * w + 2]]})
    for c, container in enumerate(containers):
        add(final + 8 + c * 0.05, "DEDUI", {"type": "AggregationEvent", "action": "DELETE",
                                            "bizStep": "unpacking", "disposition": "in_progress",
                                            "parentID": model.equipment_epc("container", container)})
    found.sort(key=lambda item: item[0])
    return [event for _, event in found]


ROUTE_INDEX = {code: i + 1 for i, (code, *_) in enumerate(ROUTE)}


def documents(trains: int, limit: int, batch: int, seed: int = 7, sender: int = 0,
              senders: int = 1) -> Iterator[dict]:
    """EPCIS documents of `batch` events, the trains one after the other, made as they are sent;
    of the first `limit` events of all trains, those of the trains of `sender` (of `senders`).
    Each train draws from its own random generator, so a train is the same whoever sends it."""
    per_train = events_per_train()
    pending: list[dict] = []
    for train in range(sender, trains, senders):
        room = limit - train * per_train
        if room <= 0:
            break
        for event in train_events(train, random.Random(seed * 1_000_003 + train))[:room]:
            pending.append(event)
            if len(pending) == batch:
                yield _document(pending)
                pending = []
    if pending:
        yield _document(pending)


def _document(events: list[dict]) -> dict:
    return {"@context": CONTEXT, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": _moment(datetime.now(UTC)), "epcisBody": {"eventList": events}}


def prepare(engine, trains: int) -> tuple[Actor, Actor]:
    """Carrier and trader, the trains as consignments; the carrier and a customs officer."""
    uow = UnitOfWork(engine)
    zone = Actor(user_id=None, username="bench", role=Role.ZONE)
    for uscc, kinds in ((CARRIER, ("carrier",)), (TRADER, ("trader",))):
        registry.register_enterprise(uow, zone, EnterpriseInput(
            uscc=uscc, name_zh="测试", name_en="Bench", address="Chongqing", sector="xiyong",
            business_scope="", kinds=kinds, credit_tier="general"))
    carrier = registry.enterprise_by_uscc(uow, CARRIER)
    actor = Actor(user_id=None, username="bench", role=Role.CARRIER, enterprise_id=carrier["id"])
    for train in range(trains):
        service.register_consignment(uow, actor, consignment(train))
    return actor, Actor(user_id=None, username="officer", role=Role.CUSTOMS)


class ServerClock:
    """CPU seconds the PostgreSQL server has used (postmaster, its live and finished children)."""

    def __init__(self, data_dir: Path) -> None:
        self.pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        self.tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(entry.name), int(fields[1])
            if pid == self.pid:
                total += sum(int(v) for v in fields[11:15])      # utime stime cutime cstime
            elif ppid == self.pid:
                total += int(fields[11]) + int(fields[12])
        return total / self.tick


def timelines(uow: UnitOfWork, officer: Actor, trains: int, count: int, rng: random.Random) -> tuple[list[float], int]:
    """Latencies (ms) of `count` timelines of random containers of the first `trains` trains, as
    customs asks for them, and how many events they listed."""
    latencies, entries = [], 0
    for index in range(count + 20):
        _, containers = train_numbers(rng.randrange(trains))
        started = time.perf_counter()
        found = service.container_timeline(uow, officer, rng.choice(containers))
        if index >= 20:               # the first few warm the caches
            latencies.append((time.perf_counter() - started) * 1000)
            entries += len(found["events"])
    return latencies, entries


def send(url: str, carrier: Actor, trains: int, events: int, batch: int, sender: int, senders: int,
         started: Any) -> tuple[int, float, float, float, float]:
    """One sender process (--senders > 1): captures its trains' documents once `started` is set,
    making each as it goes (held all at once they would be most of its memory; making them costs
    about a tenth of capturing them, counted in the wall time but not in the CPU per event).
    Returns (events captured, CPU seconds, first start and last end as time.time(), peak MB)."""
    engine = make_engine(url)
    uow = UnitOfWork(engine)
    captured, cpu = 0, 0.0
    started.wait()
    begun = time.time()
    for doc in documents(trains, events, batch, sender=sender, senders=senders):
        own = time.process_time()
        captured += service.capture(uow, carrier, doc)["captured"]
        cpu += time.process_time() - own
    ended = time.time()
    engine.dispose()
    return captured, cpu, begun, ended, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def send_together(url: str, carrier: Actor, trains: int, events: int, batch: int, senders: int,
                  server: ServerClock) -> tuple[int, float, float, float, float]:
    """Capture with `senders` processes at once (forked after the trains are registered): events,
    wall seconds, their CPU seconds, the server's CPU seconds, the largest sender's peak MB."""
    context = multiprocessing.get_context("fork")
    started = context.Manager().Event()
    with context.Pool(senders) as pool:
        pending = [pool.apply_async(send, (url, carrier, trains, events, batch, s, senders, started))
                   for s in range(senders)]
        time.sleep(0.5)                      # the senders connect
        theirs = server.seconds()
        started.set()
        results = [p.get() for p in pending]
        server_cpu = server.seconds() - theirs
    wall = max(r[3] for r in results) - min(r[2] for r in results)
    return (sum(r[0] for r in results), wall, sum(r[1] for r in results), server_cpu,
            max(r[4] for r in results))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def columns(conn: psycopg.Connection, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        (table,))]


def raw_load(source_dsn: str, target_dsn: str, folder: Path, boundary: str,
             server: ServerClock) -> tuple[float, int, float, dict[str, float]]:
    """COPY the rows capture stored (ids after `boundary`, a ULID taken just before capture) out
    of the capture database (untimed), then into the copy of the database as it was before
    capture (timed). Returns (seconds, bytes loaded, server CPU seconds, seconds by table)."""
    files = {}
    with psycopg.connect(source_dsn) as source:
        for table in CAPTURED_TABLES:
            path = folder / f"{table}.copy"
            names = columns(source, table)
            listed = ", ".join(names)
            where = f" WHERE id > '{boundary}'" if "id" in names else ""
            with path.open("wb") as out, source.cursor().copy(
                    f"COPY (SELECT {listed} FROM {table}{where}) TO STDOUT") as copy:
                for data in copy:
                    out.write(data)
            files[table] = (path, listed)
    with psycopg.connect(target_dsn) as target:
        theirs = server.seconds()
        started = time.perf_counter()
        size = 0
        by_table = {}
        with target.transaction():
            for table, (path, names) in files.items():
                begun = time.perf_counter()
                with path.open("rb") as data, target.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    while block := data.read(1 << 20):
                        copy.write(block)
                        size += len(block)
                by_table[table] = time.perf_counter() - begun
        return time.perf_counter() - started, size, server.seconds() - theirs, by_table


RAW_STREAMS = 2


def raw_load_at_once(target_dsn: str, folder: Path) -> float:
    """Seconds to COPY the same rows (the files `raw_load` wrote) into another copy of the database
    as it was before capture, through RAW_STREAMS connections at once, each table's rows dealt out
    between them: with two senders capture writes from two processes too, so one COPY stream
    alone would understate what the server can take on two cores."""
    rows = {table: (folder / f"{table}.copy").read_bytes().splitlines(keepends=True) for table in CAPTURED_TABLES}
    return copy_at_once(target_dsn, [[(table, b"".join(rows[table][k::RAW_STREAMS])) for table in CAPTURED_TABLES]
                                     for k in range(RAW_STREAMS)])


def main() -> None:
    global PARCELS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="events per EPCIS document")
    parser.add_argument("--queries", type=int, default=500, help="container timelines to time")
    parser.add_argument("--schema", type=Path, default=None)
    parser.add_argument("--parcels", type=int, default=PARCELS, help="parcels packed into each mail bag")
    parser.add_argument("--senders", type=int, default=1,
                        help="processes capturing at once, each its own share of the trains")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of capture here")
    args = parser.parse_args()
    if args.profile and args.senders > 1:
        parser.error("--profile takes one sender")
    PARCELS = args.parcels
    schema_path = (args.schema or (Path(os.environ["TRADEWINDOW_EPCIS_SCHEMA"])
                                   if os.environ.get("TRADEWINDOW_EPCIS_SCHEMA")
                                   else ROOT.parent / "shared" / "data" / "epcis" / "EPCIS-JSON-Schema.json"))
    os.environ["TRADEWINDOW_EPCIS_SCHEMA"] = str(schema_path)
    get_settings.cache_clear()
    per_train = events_per_train()
    trains = -(-args.events // per_train)
    sample = list(itertools.islice(documents(trains, min(args.events, 50_000), args.batch), 50))
    compiled = compile_schema(schema_path)
    started = time.process_time()
    for doc in sample:
        assert not compiled.problems(doc)
    validate_rate = sum(len(d["epcisBody"]["eventList"]) for d in sample) / (time.process_time() - started)
    del sample

    with (running_cluster(SIZED_FOR_BENCHMARKS) as cluster,
          tempfile.TemporaryDirectory(prefix="tw-epcis-bench-") as scratch):
        url = cluster.create_database("bench_capture")
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        carrier, officer = prepare(engine, trains)
        prepared = time.perf_counter() - started
        engine.dispose()
        cluster.create_database("bench_raw", template="bench_capture")
        cluster.create_database("bench_raw_streams", template="bench_capture")
        engine = make_engine(url)
        uow = UnitOfWork(engine)
        server = ServerClock(cluster.data_dir)

        profile = cProfile.Profile() if args.profile else None
        elapsed = cpu = 0.0
        captured = alerts = 0
        server_cpu = 0.0
        early: list[float] = []
        boundary = new_id()
        if args.senders > 1:
            captured, elapsed, cpu, server_cpu, peak_mb = send_together(
                url, carrier, trains, args.events, args.batch, args.senders, server)
        for doc in documents(trains, args.events, args.batch) if args.senders == 1 else ():
            theirs = server.seconds()
            wall, own = time.perf_counter(), time.process_time()
            if profile:
                profile.enable()
            result = service.capture(uow, carrier, doc)
            if profile:
                profile.disable()
            elapsed += time.perf_counter() - wall
            cpu += time.process_time() - own
            server_cpu += server.seconds() - theirs
            captured += result["captured"]
            if not early and captured >= args.events // 10 and captured >= 2 * per_train:
                # Timelines with a tenth of the events stored, to compare with the end: flat or not.
                early, _ = timelines(uow, officer, captured // per_train, min(100, args.queries), random.Random(5))
            print(f"\rcaptured {captured:,} events", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if profile:
            profile.dump_stats(str(args.profile))
        if args.senders == 1:
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        with uow.read() as conn:
            alerts = conn.exec_driver_sql("SELECT count(*) FROM monitoring_alerts").scalar_one()
        latencies, entries = timelines(uow, officer, trains, args.queries, random.Random(11))
        engine.dispose()

        raw_seconds, raw_bytes, raw_server_cpu, raw_tables = raw_load(
            cluster.dsn("bench_capture"), cluster.dsn("bench_raw"), Path(scratch), boundary, server)
        raw_streams_seconds = raw_load_at_once(cluster.dsn("bench_raw_streams"), Path(scratch))

    rate = captured / elapsed
    raw_rate = captured / min(raw_seconds, raw_streams_seconds)
    figures = {
        "database": "postgresql", "events": captured, "trains": trains, "batch": args.batch,
        "senders": args.senders,
        "capture_events_per_s": round(rate), "capture_seconds": round(elapsed, 1),
        "client_cpu_us_per_event": round(cpu / captured * 1e6, 1),
        "server_cpu_us_per_event": round(server_cpu / captured * 1e6, 1),
        "alerts": alerts, "peak_memory_mb": round(peak_mb),
        "timeline_queries": len(latencies),
        "timeline_events_per_query": round(entries / max(1, len(latencies)), 1),
        "timeline_p50_ms": round(percentile(latencies, 0.50), 2),
        "timeline_p99_ms": round(percentile(latencies, 0.99), 2),
        "timeline_p99_ms_at_tenth": round(percentile(early, 0.99), 2) if early else None,
        "validate_events_per_s": round(validate_rate), "parcels_per_bag": PARCELS,
        "raw_copy_events_per_s": round(raw_rate), "raw_copy_mb": round(raw_bytes / 1e6),
        "raw_copy_one_stream_events_per_s": round(captured / raw_seconds),
        f"raw_copy_{RAW_STREAMS}_streams_events_per_s": round(captured / raw_streams_seconds),
        "raw_server_cpu_us_per_event": round(raw_server_cpu / captured * 1e6, 1),
        "capture_share_of_raw": round(rate / raw_rate, 3),
        "prepare_seconds": round(prepared, 1),
    }
    print(f"trains registered:                {trains:>9,} ({prepared:.0f} s)")
    print(f"capture (validated, stored, monitored): {figures['capture_events_per_s']:>9,} events/s "
          f"({captured:,} events in {elapsed:.1f} s, {alerts} alerts, {args.senders} sender(s))")
    print(f"  CPU per event: client {figures['client_cpu_us_per_event']} us, "
          f"PostgreSQL {figures['server_cpu_us_per_event']} us")
    print(f"schema validation alone:          {figures['validate_events_per_s']:>9,} events/s (CPU)")
    print(f"container timeline:               p50 {figures['timeline_p50_ms']} ms, "
          f"p99 {figures['timeline_p99_ms']} ms ({figures['timeline_events_per_query']} events each; "
          + (f"p99 {figures['timeline_p99_ms_at_tenth']} ms with a tenth of the events stored)" if early
             else "not taken at a tenth with several senders)"))
    print(f"peak memory (a capturing process): {figures['peak_memory_mb']:>8,} MB")
    print(f"raw COPY of the same rows:        {figures['raw_copy_events_per_s']:>9,} events/s "
          f"(one stream {figures['raw_copy_one_stream_events_per_s']:,}, {RAW_STREAMS} at once "
          f"{figures[f'raw_copy_{RAW_STREAMS}_streams_events_per_s']:,}; {figures['raw_copy_mb']} MB; "
          f"PostgreSQL CPU {figures['raw_server_cpu_us_per_event']} us/event in one stream)")
    print("  by table: " + ", ".join(f"{t} {raw_tables[t] / raw_seconds:.0%}"
                                     for t in sorted(raw_tables, key=raw_tables.get, reverse=True)[:5]))
    print(f"capture / raw:                    {figures['capture_share_of_raw']:>9}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
