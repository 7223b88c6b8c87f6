"""Benchmark: the cross-border e-commerce batch path (`tradewindow cbec clear`) on a festival's files.

    .venv/bin/python benchmarks/cbec.py [--parcels 1000000] [--small 100000] [--no-sqlite] [--timing]

Generates the three files (`tradewindow cbec generate`), then, each as a real `tradewindow cbec
clear` process (so its peak memory, polled from /proc over it and its
workers, and its CPU time are its own):
  1. PostgreSQL (throwaway cluster): the whole path, parse, match, check, tax, limits, decide, store;
  2. the raw limit in the same run: every row the pipeline stored (documents, parcels, year totals)
     copied back in by COPY into empty databases with the same tables and indexes, through one
     connection and through two at once as the pipeline's two workers write (the faster counts);
  3. SQLite: the whole path, and its raw limit (INSERT ... SELECT of the same rows);
  4. peak memory at a second, smaller size (`--small`), to show it flat.
Prints parcels/s, the ratio to the raw limit, peak memory, CPU time per parcel (ours, and the
PostgreSQL server's over the run), and as its last line the same figures as one JSON object.
`--timing` (passed on as `tradewindow cbec clear --timing FILE`): the PostgreSQL run's passes and
worker processes, wall and CPU seconds each, and the
seconds each worker waited for a core (taken by other processes) or was blocked (on the database,
the disk, or idle): where the cores idled. Not a test: it asserts nothing about time."""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import SIZED_FOR_BENCHMARKS, copy_at_once, running_cluster  # noqa: E402

TABLES = ("cbec_orders", "cbec_payments", "cbec_waybills", "cbec_parcels", "cbec_buyer_years")
TOOL = str(ROOT / ".venv/bin/tradewindow")


def prepare(url: str) -> None:
    """Schema and the demo tariff (the generated files' lines and positive list)."""
    from tradewindow.migrations import upgrade
    from tradewindow.platform.auth import Actor, Role
    from tradewindow.platform.db import UnitOfWork, make_engine
    from tradewindow.tariff import service as tariff

    engine = make_engine(url)
    upgrade(engine)
    tariff.load_demo_schedule(UnitOfWork(engine), Actor(user_id=None, username="bench", role=Role.CUSTOMS))
    engine.dispose()


def generate(parcels: int, folder: Path) -> float:
    began = time.perf_counter()
    subprocess.run([TOOL, "cbec", "generate", "--parcels", str(parcels), "--seed", "1", "--out", str(folder)],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def server_cpu(data_dir: Path | None) -> float:
    """CPU seconds of a PostgreSQL server so far: the postmaster, its living children and the
    children it has reaped (the backends of closed connections)."""
    if data_dir is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))     # utime, stime, cutime, cstime
    for task in Path(f"/proc/{postmaster}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                child_fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(child_fields[11]) + int(child_fields[12])
    return total / tick


def clear(url: str, folder: Path, out: Path, data_dir: Path | None = None, timing: Path | None = None) -> dict:
    """One `tradewindow cbec clear` process: wall time, its CPU time and peak memory (wait4), and
    the PostgreSQL server's CPU time over it when `data_dir` names the server's."""
    env = {**os.environ, "TRADEWINDOW_DATABASE_URL": url}
    server_began = server_cpu(data_dir)
    began = time.perf_counter()
    process = subprocess.Popen([TOOL, "cbec", "clear", "--orders", str(folder / "orders.ndjson"),
                                "--payments", str(folder / "payments.ndjson"),
                                "--waybills", str(folder / "waybills.ndjson"), "--out", str(out),
                                *(["--timing", str(timing)] if timing is not None else [])],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = [0]
    watcher = threading.Thread(target=_watch_memory, args=(process.pid, peak), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    server = server_cpu(data_dir) - server_began
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"cbec clear failed ({process.returncode})")
    summary = json.loads(Path(str(out) + ".summary.json").read_text(encoding="utf-8"))
    parcels = summary["parcels_decided"]
    cpu = usage.ru_utime + usage.ru_stime
    figures = {"parcels": parcels, "seconds": round(wall, 2), "parcels_per_second": round(parcels / wall),
               "cpu_us_per_parcel": round(cpu / parcels * 1e6), "peak_rss_mib": round(peak[0] / 1024),
               "decisions": summary["decisions"]}
    if data_dir is not None:
        figures["server_cpu_us_per_parcel"] = round(server / parcels * 1e6)
        figures["cores_busy"] = round((cpu + server) / wall, 2)
    return figures


def timing_report(timing: Path) -> list[str]:
    """The steps the clearing process and its workers timed: each pass's wall and CPU seconds, and
    per worker process its busy share of the pass (CPU / the pass's wall)."""
    steps = [json.loads(line) for line in timing.read_text(encoding="utf-8").splitlines()]
    passes = [s for s in steps if s["worker"] is None and not s["step"].startswith("store")]
    lines = []
    origin = min(s["start"] for s in steps)
    for step in passes:
        wall = step["end"] - step["start"]
        lines.append(f"  {step['step']:<20} {step['start'] - origin:7.2f} s +{wall:6.2f} s wall, "
                     f"{step['cpu']:6.2f} s CPU in the parent")
        for worker in sorted({s["worker"] for s in steps if s["step"].startswith("worker ")
                              and step["start"] <= s["start"] <= step["end"]}):
            mine = [s for s in steps if s["worker"] == worker and s["step"].startswith("worker ")
                    and step["start"] <= s["start"] <= step["end"]]
            for s in mine:
                parts = [p for p in steps if p["worker"] == worker and not p["step"].startswith("worker ")
                         and s["start"] <= p["start"] <= s["end"]]
                stores = [p for p in steps if p["step"].startswith("store") and p["pid"] == s["pid"]
                          and s["start"] <= p["start"] <= s["end"]]
                lines.append(f"    worker {worker}: {s['end'] - s['start']:6.2f} s wall (ends "
                             f"{step['end'] - s['end']:5.2f} s before the pass), {s['cpu']:6.2f} s CPU, "
                             f"{s['queued']:6.2f} s waiting for a core, "
                             f"{s['end'] - s['start'] - s['cpu'] - s['queued']:6.2f} s blocked, "
                             f"{len(parts)} partitions (longest "
                             f"{max((p['end'] - p['start'] for p in parts), default=0):.2f} s)"
                             + (f", storing {sum(p['end'] - p['start'] for p in stores):.2f} s wall "
                                f"{sum(p['cpu'] for p in stores):.2f} s CPU" if stores else ""))
                if parts:
                    walls = " ".join(f"{p['end'] - p['start']:.1f}" for p in parts)
                    lines.append(f"      partitions, s wall: {walls}")
    return lines


def _rss_kib(pid: int) -> int:
    """Proportional resident memory (PSS: a page shared by the forked matching workers counts once
    in all) of a process and its descendants, in KiB."""
    total = 0
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        total += int(rollup.split("\nPss:")[1].split()[0]) if "\nPss:" in rollup else 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _rss_kib(int(child))
    except (OSError, ValueError, IndexError):
        pass
    return total


def _watch_memory(pid: int, peak: list[int]) -> None:
    """Peak memory by polling /proc (ru_maxrss would carry this benchmark's own size over exec)."""
    while Path(f"/proc/{pid}").exists():
        rss = _rss_kib(pid)
        if rss == 0:
            break
        peak[0] = max(peak[0], rss)
        time.sleep(0.1)


def raw_limit_postgres(source_dsn: str, target_dsns: list[str], parcels: int) -> dict:
    """COPY every stored row of the five tables into the same, empty tables of another database:
    through one connection into the first of `target_dsns`, then through as many connections at
    once as the pipeline has workers (2), each table's rows dealt out between them, into the
    second. The raw limit is the faster: the pipeline writes from two processes too, so one COPY
    stream alone would understate what the server can take on two cores."""
    dumps: dict[str, bytes] = {}
    with psycopg.connect(source_dsn) as conn, conn.cursor() as cursor:
        for table in TABLES:
            buffer = io.BytesIO()
            with cursor.copy(f"COPY {table} TO STDOUT") as copy:
                for block in copy:
                    buffer.write(block)
            dumps[table] = buffer.getvalue()
    one = copy_at_once(target_dsns[0], [[(table, dumps[table]) for table in TABLES]])
    lines = {table: dump.splitlines(keepends=True) for table, dump in dumps.items()}
    several = copy_at_once(target_dsns[1], [[(table, b"".join(lines[table][k::RAW_STREAMS])) for table in TABLES]
                                            for k in range(RAW_STREAMS)])
    best = min(one, several)
    return {"seconds": round(best, 2), "parcels_per_second": round(parcels / best),
            "one_stream_parcels_per_second": round(parcels / one),
            f"{RAW_STREAMS}_streams_parcels_per_second": round(parcels / several),
            "bytes": sum(len(d) for d in dumps.values())}


RAW_STREAMS = 2


def raw_limit_sqlite(source: Path, target: Path, parcels: int) -> dict:
    conn = sqlite3.connect(target)
    conn.execute("ATTACH DATABASE ? AS source", (str(source),))
    began = time.perf_counter()
    with conn:
        for table in TABLES:
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM source.{table}")
    seconds = time.perf_counter() - began
    conn.close()
    return {"seconds": round(seconds, 2), "parcels_per_second": round(parcels / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=None, help="second size for the memory check "
                        "(default: a tenth)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--timing", action="store_true", help="report the passes and workers of the "
                        "PostgreSQL run")
    args = parser.parse_args()
    small = args.small or max(1, args.parcels // 10)
    figures: dict = {"parcels": args.parcels, "cpus": os.cpu_count(),
                     "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="cbec-bench-") as temp:
        work = Path(temp)
        figures["generate_seconds"] = round(generate(args.parcels, work / "big"), 1)
        generate(small, work / "small")
        print(f"generated {args.parcels:,} parcels in {figures['generate_seconds']} s", flush=True)
        with running_cluster(SIZED_FOR_BENCHMARKS) as cluster:
            url = cluster.create_database("cbec_bench")
            prepare(url)
            timing = work / "timing.ndjson" if args.timing else None
            figures["postgresql"] = clear(url, work / "big", work / "pg.ndjson", cluster.data_dir, timing)
            for name in ("cbec_raw", "cbec_raw_streams"):
                prepare(cluster.create_database(name))
            figures["postgresql_raw"] = raw_limit_postgres(cluster.dsn("cbec_bench"),
                                                           [cluster.dsn("cbec_raw"), cluster.dsn("cbec_raw_streams")],
                                                           figures["postgresql"]["parcels"])
            small_url = cluster.create_database("cbec_small")
            prepare(small_url)
            figures["postgresql_small"] = clear(small_url, work / "small", work / "pg-small.ndjson")
        pg, raw = figures["postgresql"], figures["postgresql_raw"]
        figures["postgresql_ratio_to_raw"] = round(pg["parcels_per_second"] / raw["parcels_per_second"], 3)
        print(f"PostgreSQL: {pg['parcels_per_second']:,} parcels/s ({pg['seconds']} s), raw COPY limit "
              f"{raw['parcels_per_second']:,} parcels/s (one stream {raw['one_stream_parcels_per_second']:,}, "
              f"{RAW_STREAMS} at once {raw[f'{RAW_STREAMS}_streams_parcels_per_second']:,}), "
              f"ratio {figures['postgresql_ratio_to_raw']}, "
              f"{pg['cpu_us_per_parcel']} µs CPU per parcel, peak {pg['peak_rss_mib']} MiB "
              f"({figures['postgresql_small']['peak_rss_mib']} MiB at {small:,} parcels); server "
              f"{pg['server_cpu_us_per_parcel']} µs CPU per parcel, {pg['cores_busy']} cores busy on average",
              flush=True)
        if timing is not None:
            print("\n".join(["PostgreSQL run, step by step:", *timing_report(timing)]), flush=True)
        if not args.no_sqlite:
            db = work / "bench.db"
            prepare(f"sqlite:///{db}")
            figures["sqlite"] = clear(f"sqlite:///{db}", work / "big", work / "sqlite.ndjson")
            raw_db = work / "raw.db"
            prepare(f"sqlite:///{raw_db}")
            figures["sqlite_raw"] = raw_limit_sqlite(db, raw_db, figures["sqlite"]["parcels"])
            lite, lite_raw = figures["sqlite"], figures["sqlite_raw"]
            figures["sqlite_ratio_to_raw"] = round(lite["parcels_per_second"] / lite_raw["parcels_per_second"], 3)
            print(f"SQLite: {lite['parcels_per_second']:,} parcels/s ({lite['seconds']} s), raw limit "
                  f"{lite_raw['parcels_per_second']:,} parcels/s, ratio {figures['sqlite_ratio_to_raw']}, "
                  f"{lite['cpu_us_per_parcel']} µs CPU per parcel, peak {lite['peak_rss_mib']} MiB", flush=True)
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]   # other processes share the cores
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
