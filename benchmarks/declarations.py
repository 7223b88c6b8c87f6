"""Benchmark: lodging import declarations of 10 items through the HTTP API against PostgreSQL.

    .venv/bin/python benchmarks/declarations.py [--count 2000] [--clients 16] [--rate 100]

Starts a throwaway PostgreSQL cluster and `tradewindow serve` as a real process, then
  1. saturation: `--clients` concurrent clients lodge `--count` declarations as fast as they can
     (validation, lane, agency tasks, assessment and storage included): throughput and latency;
  2. fixed rate: declarations offered at `--rate` per second for 10 s: latency percentiles;
  3. the raw database limit in the same run: the same rows (declaration, items, version, audit,
     event) inserted directly with psycopg by the same number of clients, so the API's figure can
     be read as a fraction of what the database itself allows here.
Prints the figures, and as its last line the same figures as one JSON object. Not a test: it
asserts nothing about time."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import running_cluster  # noqa: E402

# Server processes: one per core of the 2-core machines this runs on.
WORKERS = 2

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


class Client:
    """A light HTTP/1.1 keep-alive client (http.client, bodies encoded before timing): the load
    generator shares the machine's two cores with the server, so it must cost as little as it can."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def lodge(self, body: bytes) -> int:
        try:
            self.connection.request("POST", "/api/v1/declarations", body=body, headers=self.headers)
            response = self.connection.getresponse()
            response.read()
            return response.status
        except (http.client.HTTPException, OSError):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return 0


def bodies(start: int, count: int) -> list[bytes]:
    return [json.dumps(filing(n)).encode() for n in range(start, start + count)]


def saturate(port: int, token: str, start: int, count: int, clients: int) -> tuple[float, list[float], int]:
    payloads = bodies(start, count)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    local = threading.local()

    def lodge(body: bytes) -> None:
        nonlocal failures
        if not hasattr(local, "client"):
            local.client = Client(port, token)
        began = time.perf_counter()
        status = local.client.lodge(body)
        elapsed = time.perf_counter() - began
        with lock:
            latencies.append(elapsed)
            failures += status != 201

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lodge, payloads))
    return time.perf_counter() - began, latencies, failures


def fixed_rate(port: int, token: str, start: int, rate: int, seconds: int) -> tuple[list[float], int]:
    payloads = bodies(start, rate * seconds)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    local = threading.local()

    def lodge(body: bytes) -> None:
        nonlocal failures
        if not hasattr(local, "client"):
            local.client = Client(port, token)
        began = time.perf_counter()
        status = local.client.lodge(body)
        with lock:
            latencies.append(time.perf_counter() - began)
            failures += status != 201

    with ThreadPoolExecutor(64) as pool:
        began = time.perf_counter()
        for n, body in enumerate(payloads):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(lodge, body)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    with running_cluster() as cluster:
        url = cluster.create_database("bench")
        prepare(url)
        server = serve(url, args.port)
        try:
            base = f"http://127.0.0.1:{args.port}"
            token = httpx.post(f"{base}/api/v1/auth/token",
                               json={"username": "bench", "password": "bench-password-1"}).json()["access_token"]
            saturate(args.port, token, 0, 50, 4)                              # warm up
            elapsed, latencies, failures = saturate(args.port, token, 100, args.count, args.clients)
            fixed, fixed_failures = fixed_rate(args.port, token, 100 + args.count, args.rate, args.seconds)
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=10)
        raw = raw_limit(cluster.dsn("bench"), args.count, args.clients)
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
        "server_peak_rss_mb": round(rss, 1),
        "raw_database_limit_per_s": round(raw, 1),
        "ratio_to_raw_database": round(throughput / raw, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
    }
    print(f"lodged {args.count} declarations of 10 items with {args.clients} clients in {elapsed:.1f} s")
    print(f"  throughput {throughput:.1f}/s; latency p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
          f"p99 {figures['p99_ms']} ms; failures {failures}")
    print(f"  at {args.rate}/s offered: p50 {figures['fixed_rate_p50_ms']} ms, p99 {figures['fixed_rate_p99_ms']} ms")
    print(f"  server peak memory {rss:.0f} MB; raw PostgreSQL limit {raw:.0f}/s; ratio {throughput / raw:.3f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
