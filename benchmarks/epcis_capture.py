"""Benchmark: EPCIS capture, validated and stored, against the raw insert rate of the same rows.

    .venv/bin/python benchmarks/epcis_capture.py [--events 20000] [--batch 500] [--postgres]
                                                  [--schema PATH]

On a fresh database (a SQLite file, or with --postgres a throwaway PostgreSQL cluster) with one
train consignment registered (a wagon carrying containers), measures
  1. the compiled schema validator alone: events/s;
  2. capture through the service as a carrier would (schema, event facts, storage of event and
     identifiers, containment, linking to the consignment, monitoring rules), `--batch` events per
     EPCIS document: events/s;
  3. the raw database limit: the same event rows inserted with executemany, no checks: events/s.
Prints the figures, and as its last line the same figures as one JSON object. Not a test: it
asserts nothing about time.

The schema is GS1's EPCIS-JSON-Schema.json: --schema, else TRADEWINDOW_EPCIS_SCHEMA, else the
reference data (../shared/data/epcis/)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from tradewindow.logistics import model, service  # noqa: E402
from tradewindow.logistics.schema import compile_schema  # noqa: E402
from tradewindow.logistics.tables import epcis_captures, epcis_events  # noqa: E402
from tradewindow.migrations import upgrade  # noqa: E402
from tradewindow.platform.auth import Actor, Role  # noqa: E402
from tradewindow.platform.db import UnitOfWork, make_engine, utcnow  # noqa: E402
from tradewindow.platform.ids import new_id  # noqa: E402
from tradewindow.platform.settings import get_settings  # noqa: E402
from tradewindow.registry import service as registry  # noqa: E402
from tradewindow.registry.model import EnterpriseInput  # noqa: E402

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ROUTE = ["CNTNR", "CNAKU", "KZDOS", "PLMAL", "DEDUI"]
CONTAINERS = ["CSQU3054383", "MSKU1234565", "TGHU1234567", "CMAU1234564"]


def events(count: int) -> list[dict]:
    """A train's life: the wagon's moves, container readings with seals and temperatures, and
    parcels aggregated into containers."""
    found = []
    for i in range(count):
        moment = (T0 + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
        place = {"id": model.location_uri(ROUTE[min(i * len(ROUTE) // count, len(ROUTE) - 1)])}
        base = {"eventTime": moment, "eventTimeZoneOffset": "+08:00", "bizLocation": place}
        container = model.equipment_epc("container", CONTAINERS[i % len(CONTAINERS)])
        if i % 3 == 0:
            found.append({"type": "ObjectEvent", **base, "action": "OBSERVE", "bizStep": "transporting",
                          "epcList": [model.equipment_epc("wagon", "C701234567")], "disposition": "in_transit"})
        elif i % 3 == 1:
            found.append({"type": "ObjectEvent", **base, "action": "OBSERVE", "bizStep": "inspecting",
                          "epcList": [container], "tw:seal": {"number": "CN4471023", "status": "intact"},
                          "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 4.5,
                                                                   "uom": "CEL"}]}]})
        else:
            found.append({"type": "AggregationEvent", **base, "action": "ADD", "bizStep": "packing",
                          "parentID": container,
                          "childEPCs": [f"urn:epc:id:sgtin:4012345.011111.{i}"]})
    return found


def document(batch: list[dict]) -> dict:
    return model.wrap_events(batch, utcnow())


def prepare(engine) -> Actor:
    uow = UnitOfWork(engine)
    zone = Actor(user_id=None, username="bench", role=Role.ZONE)
    for uscc, kinds in (("91500169FGG0741G3A", ("carrier",)), ("91500115GG37HDHFEA", ("trader",))):
        registry.register_enterprise(uow, zone, EnterpriseInput(
            uscc=uscc, name_zh="测试", name_en="Bench", address="Chongqing", sector="xiyong",
            business_scope="", kinds=kinds, credit_tier="general"))
    carrier = registry.enterprise_by_uscc(uow, "91500169FGG0741G3A")
    actor = Actor(user_id=None, username="bench", role=Role.CARRIER, enterprise_id=carrier["id"])
    service.register_consignment(uow, actor, {
        "client_reference": "BENCH-1", "transport_document": "CIM-BENCH-1", "trader": "91500115GG37HDHFEA",
        "legs": [{"mode": "rail", "route": [{"location": p} for p in ROUTE]}],
        "equipment": [{"kind": "wagon", "number": "C701234567"},
                      *({"kind": "container", "number": n, "carried_on": "C701234567",
                         "seals": [{"number": "CN4471023"}]} for n in CONTAINERS)]})
    return actor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--schema", type=Path, default=None)
    args = parser.parse_args()
    schema_path = (args.schema or (Path(os.environ["TRADEWINDOW_EPCIS_SCHEMA"])
                                   if os.environ.get("TRADEWINDOW_EPCIS_SCHEMA")
                                   else ROOT.parent / "shared" / "data" / "epcis" / "EPCIS-JSON-Schema.json"))
    os.environ["TRADEWINDOW_EPCIS_SCHEMA"] = str(schema_path)
    get_settings.cache_clear()
    all_events = events(args.events)
    batches = [all_events[i:i + args.batch] for i in range(0, len(all_events), args.batch)]
    documents = [document(b) for b in batches]

    compiled = compile_schema(schema_path)
    started = time.perf_counter()
    for doc in documents:
        assert not compiled.problems(doc)
    validate_rate = len(all_events) / (time.perf_counter() - started)

    with ExitStack() as stack:
        if args.postgres:
            from tests.support.postgres import running_cluster

            cluster = stack.enter_context(running_cluster())
            urls = [cluster.create_database("bench_capture"), cluster.create_database("bench_raw")]
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            urls = [f"sqlite:///{folder}/capture.db", f"sqlite:///{folder}/raw.db"]
        engine, raw_engine = make_engine(urls[0]), make_engine(urls[1])
        for each in (engine, raw_engine):
            upgrade(each)
        actor = prepare(engine)
        uow = UnitOfWork(engine)
        started = time.perf_counter()
        for doc in documents:
            service.capture(uow, actor, doc)
        capture_rate = len(all_events) / (time.perf_counter() - started)

        capture_id = new_id()
        with raw_engine.begin() as conn:
            conn.execute(insert(epcis_captures).values(id=capture_id, captured_by=None, user_id=None,
                                                       captured_at=utcnow(), context=None, event_count=0,
                                                       new_count=0))
        started = time.perf_counter()
        for batch in batches:
            now = utcnow()
            rows = [{"pk": new_id(), "event_id": model.event_hash(e), "event_type": e["type"],
                     "action": e["action"], "event_time": model.parse_instant(e["eventTime"]),
                     "time_zone_offset": "+08:00", "record_time": now, "biz_step": e.get("bizStep"),
                     "disposition": e.get("disposition"), "read_point": None,
                     "biz_location": e["bizLocation"]["id"], "locode": None, "capture_id": capture_id,
                     "captured_by": None, "body": e} for e in batch]
            with raw_engine.begin() as conn:
                conn.execute(insert(epcis_events), rows)
        raw_rate = len(all_events) / (time.perf_counter() - started)
        engine.dispose()
        raw_engine.dispose()

    figures = {"database": "postgresql" if args.postgres else "sqlite", "events": len(all_events),
               "batch": args.batch, "validate_events_per_s": round(validate_rate),
               "capture_events_per_s": round(capture_rate), "raw_insert_events_per_s": round(raw_rate),
               "capture_share_of_raw": round(capture_rate / raw_rate, 3)}
    print(f"schema validation alone:          {figures['validate_events_per_s']:>9,} events/s")
    print(f"capture (validated, stored, monitored): {figures['capture_events_per_s']:>9,} events/s")
    print(f"raw insert of the same rows:      {figures['raw_insert_events_per_s']:>9,} events/s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
