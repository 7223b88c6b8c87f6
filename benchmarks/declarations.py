"""Benchmark: lodging import declarations of 10 items through the HTTP API against PostgreSQL.

    .venv/bin/python benchmarks/declarations.py [--count 2000] [--clients 16] [--rate 100]

Starts a throwaway PostgreSQL cluster and `tradewindow serve` as a real process (WORKERS server
processes: two per core), then
  1. saturation: `--clients` concurrent clients lodge `--count` declarations as fast as they can
     (validation, lane, agency tasks, assessment and storage included): throughput and latency;
  2. fixed rate: declarations offered at `--rate` per second for `--seconds` s, open loop (each
     request is due at its own moment whether or not the earlier ones are answered, and its
     latency runs from that moment, so queueing in the server or in the load generator counts);
  3. the raw database limit in the same run: the same rows (declaration, items, version, audit,
     event) inserted directly with psycopg by the same number of clients, so the API's figure can
     be read as a fraction of what the database itself allows here.
The load generator is one asyncio loop speaking HTTP/1.1 over keep-alive connections with the
requests encoded beforehand: it shares the machine's cores with the server and the database, so
it must cost as little as it can. The CPU time the server, the database and the load generator
each spent per declaration during the saturation run is reported too: on a busy machine it says
more than the wall-clock figures. Prints the figures, and as its last line the same figures as one
JSON object. Not a test: it asserts nothing about time."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import SIZED_FOR_BENCHMARKS, running_cluster  # noqa: E402

# Server processes: two per core of the 2-core machines this runs on. The kernel hands the
# clients' keep-alive connections to the processes unevenly; with one process per core, one was
# often saturated while the other idled (120-200/s from run to run), with two per core 210-230/s.
WORKERS = 4

ITEMS = [
    ("85423100", "Processors and controllers", "NAR", "1000", "2", "3", "2000.00", "KR"),
    ("76011000", "Unwrought aluminium ingots", "KGM", "1000", "1000", "1010", "2500.00", "AU"),
    ("85423100", "Memory controllers", "NAR", "500", "1", "2", "1500.00", "MY"),
]


def filing(index: int) -> dict:
    items = []
    for n in range(10):
        code, text, unit, qty, net, gross, value, origin = ITEMS[n % len(ITEMS)]
        items.append({"tariff_code": code, "description": f"{text} #{n}", "origin": origin, "quantity": qty,
                      "unit": unit, "net_mass_kg": net, "gross_mass_kg": gross, "value": value})
    total = sum(float(i["value"]) for i in items)
    return {"client_reference": f"BENCH-{index:07d}", "type": "import", "customs_office": "8012",
            "transport_mode": "rail", "transport_document": f"CIM-{index}", "country_of_dispatch": "DE",
            "incoterm": "CIF", "currency": "USD", "invoice_total": f"{total:.2f}", "items": items}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def prepare(url: str) -> None:
    """Schema, demo tariff, one trader with a user, lane settings of the demo."""
    os.environ["TRADEWINDOW_DATABASE_URL"] = url
    from tradewindow.demo import load_demo
    from tradewindow.migrations import upgrade
    from tradewindow.platform.auth import SYSTEM
    from tradewindow.platform.db import UnitOfWork, make_engine
    from tradewindow.registry import service as registry

    engine = make_engine(url)
    upgrade(engine)
    import tradewindow.demo_history as history

    original, history.load_demo_history = history.load_demo_history, lambda *a, **k: 0
    try:
        load_demo(engine)              # agencies, enterprises, demo users, tariff, lane rules
    finally:
        history.load_demo_history = original
    registry.create_user(UnitOfWork(engine), SYSTEM, "bench", "bench-password-1", "trader",
                         enterprise_uscc="91500164BBCG2A2HHH")
    engine.dispose()


def serve(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "TRADEWINDOW_DATABASE_URL": url}
    process = subprocess.Popen([str(ROOT / ".venv/bin/tradewindow"), "serve", "--port", str(port),
                                "--workers", str(WORKERS)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start: " + process.stderr.read().decode()[-2000:])


class Connection:
    """One keep-alive HTTP/1.1 connection of the load generator."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def lodge(self, request: bytes) -> int:
        """Sends one prepared request; the answer's status (0 when the connection failed)."""
        # uvicorn closes a connection idle for 5 s: one idle that long is replaced before use.
        if self.writer is None or time.perf_counter() - self.last_used > 4.0:
            self.close()
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status, length, closing = int(head[9:12]), None, False
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
                elif line.startswith(b"connection:"):
                    closing = b"close" in line
            if length is None:
                raise ValueError("an answer without Content-Length")
            await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.close()
            return 0
        if closing:
            self.close()
        self.last_used = time.perf_counter()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def requests(token: str, start: int, count: int) -> list[bytes]:
    """The HTTP requests lodging filings start .. start+count-1, encoded before any is timed."""
    prepared = []
    for n in range(start, start + count):
        body = json.dumps(filing(n)).encode()
        prepared.append(b"POST /api/v1/declarations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Authorization: Bearer " + token.encode() + b"\r\n"
                        b"Content-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return prepared


def saturate(port: int, token: str, start: int, count: int, clients: int) -> tuple[float, list[float], int]:
    """`clients` connections lodging back to back (closed loop): elapsed seconds, latencies, failures."""
    pending: Iterator[bytes] = iter(requests(token, start, count))
    latencies: list[float] = []
    failures = 0

    async def client() -> None:
        nonlocal failures
        connection = Connection(port)
        for request in pending:
            began = time.perf_counter()
            status = await connection.lodge(request)
            latencies.append(time.perf_counter() - began)
            failures += status != 201
        connection.close()

    async def run() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - began

    return asyncio.run(run()), latencies, failures


def fixed_rate(port: int, token: str, start: int, rate: int, seconds: int,
               connections: int = 64) -> tuple[list[float], int]:
    """Requests offered at `rate` per second (open loop): each is due at start + n / rate and its
    latency is measured from that moment, including any wait for a free connection."""
    prepared = requests(token, start, rate * seconds)
    latencies: list[float] = []
    failures = 0

    async def run() -> None:
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def sender() -> None:
            nonlocal failures
            connection = Connection(port)
            while (item := await queue.get()) is not None:
                due, request = item
                status = await connection.lodge(request)
                latencies.append(time.perf_counter() - due)
                failures += status != 201
            connection.close()

        senders = [asyncio.create_task(sender()) for _ in range(connections)]
        began = time.perf_counter() + 0.1
        for n, request in enumerate(prepared):
            due = began + n / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((due, request))
        for _ in senders:
            queue.put_nowait(None)
        await asyncio.gather(*senders)

    asyncio.run(run())
    return latencies, failures


def raw_limit(dsn: str, count: int, clients: int) -> float:
    """Declarations per second when the same rows go straight into PostgreSQL."""
    def worker(offset: int) -> None:
        with psycopg.connect(dsn, autocommit=False) as conn:
            for n in range(offset, count, clients):
                with conn.transaction():
                    conn.execute("INSERT INTO raw_declarations VALUES (%s, %s, %s)", (n, f"RAW-{n}", "x" * 400))
                    with conn.cursor() as cursor:
                        cursor.executemany("INSERT INTO raw_items VALUES (%s, %s, %s)",
                                           [(n, line, "y" * 120) for line in range(10)])
                    conn.execute("INSERT INTO raw_versions VALUES (%s, %s)", (n, json.dumps(filing(n))))
                    conn.execute("INSERT INTO raw_events VALUES (%s, %s)", (n, "z" * 200))
                    conn.execute("INSERT INTO raw_events VALUES (%s, %s)", (-n - 1, "z" * 200))

    with psycopg.connect(dsn, autocommit=True) as conn:
        for ddl in ("CREATE TABLE raw_declarations (id int primary key, number text unique, body text)",
                    "CREATE TABLE raw_items (declaration int, line int, body text, primary key (declaration, line))",
                    "CREATE TABLE raw_versions (declaration int primary key, filing jsonb)",
                    "CREATE TABLE raw_events (id int primary key, payload text)"):
            conn.execute(ddl)
    began = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - began)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of the server: the process and its worker processes, added up."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            total += int(line.split()[1]) / 1024
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        total += peak_rss_mb(int(child))
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants so far: their own, and that of the children
    they have already waited for (a server's finished workers, a database's closed sessions)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])          # utime, stime, cutime, cstime
    total = ticks / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        total += cpu_seconds(int(child))
    return total


def postmaster_pid(cluster: object) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().split()[0])  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="declarations in the saturation run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in the saturation run")
    parser.add_argument("--rate", type=int, default=100, help="declarations per second offered in the fixed-rate run")
    parser.add_argument("--seconds", type=int, default=10, help="length of the fixed-rate run")
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    with running_cluster(SIZED_FOR_BENCHMARKS) as cluster:
        url = cluster.create_database("bench")
        prepare(url)
        server = serve(url, args.port)
        try:
            base = f"http://127.0.0.1:{args.port}"
            token = httpx.post(f"{base}/api/v1/auth/token",
                               json={"username": "bench", "password": "bench-password-1"}).json()["access_token"]
            saturate(args.port, token, 0, 300, args.clients)                  # warm up
            cpu_before = (cpu_seconds(server.pid), cpu_seconds(postmaster_pid(cluster)), time.process_time())
            elapsed, latencies, failures = saturate(args.port, token, 1000, args.count, args.clients)
            cpu_after = (cpu_seconds(server.pid), cpu_seconds(postmaster_pid(cluster)), time.process_time())
            fixed, fixed_failures = fixed_rate(args.port, token, 1000 + args.count, args.rate, args.seconds)
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=10)
        raw = raw_limit(cluster.dsn("bench"), args.count, args.clients)
    server_cpu, database_cpu, generator_cpu = ((after - before) * 1000 / args.count
                                               for before, after in zip(cpu_before, cpu_after, strict=True))
    throughput = args.count / elapsed
    figures = {
        "declarations": args.count, "items_per_declaration": 10, "clients": args.clients,
        "throughput_per_s": round(throughput, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "failures": failures,
        "fixed_rate_per_s": args.rate,
        "fixed_rate_p50_ms": round(percentile(fixed, 0.50) * 1000, 1),
        "fixed_rate_p99_ms": round(percentile(fixed, 0.99) * 1000, 1),
        "fixed_rate_failures": fixed_failures,
        "server_cpu_ms_per_declaration": round(server_cpu, 2),
        "database_cpu_ms_per_declaration": round(database_cpu, 2),
        "load_generator_cpu_ms_per_declaration": round(generator_cpu, 2),
        "server_peak_rss_mb": round(rss, 1),
        "raw_database_limit_per_s": round(raw, 1),
        "ratio_to_raw_database": round(throughput / raw, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "cores": os.cpu_count(),
    }
    print(f"lodged {args.count} declarations of 10 items with {args.clients} clients in {elapsed:.1f} s")
    print(f"  throughput {throughput:.1f}/s; latency p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
          f"p99 {figures['p99_ms']} ms; failures {failures}")
    print(f"  CPU per declaration: server {server_cpu:.2f} ms, database {database_cpu:.2f} ms, "
          f"load generator {generator_cpu:.2f} ms")
    print(f"  at {args.rate}/s offered (open loop): p50 {figures['fixed_rate_p50_ms']} ms, "
          f"p99 {figures['fixed_rate_p99_ms']} ms; failures {fixed_failures}")
    print(f"  server peak memory {rss:.0f} MB; raw PostgreSQL limit {raw:.0f}/s; ratio {throughput / raw:.3f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
