"""The whole system as an operator runs it: `tradewindow db upgrade`, `users create`, `serve` and
`worker` as real processes on PostgreSQL, driven over HTTP only.

A wrong credit code, a duplicate enterprise, a malformed JSON body and an unauthorised call each get
their documented 4xx error and change nothing."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from tests.conftest import USCC

pytestmark = [pytest.mark.system, pytest.mark.postgres]

ADMIN_PASSWORD = "system test admin password"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tradewindow(*args: str) -> list[str]:
    return [sys.executable, "-m", "tradewindow.cli", *args]


@pytest.fixture
def database_env(postgres_cluster) -> dict[str, str]:
    url = postgres_cluster.create_database("tradewindow_system")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWINDOW_")}
    env["TRADEWINDOW_DATABASE_URL"] = url
    env["TRADEWINDOW_WORKER_POLL_SECONDS"] = "0.2"
    return env


@pytest.fixture
def start(database_env, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts `tradewindow <args>` in the background; every process is stopped with SIGTERM when the
    test ends and must shut down cleanly within 15 s (uvicorn re-raises the signal once it has shut
    down gracefully, so -SIGTERM counts as clean; a SIGKILL does not)."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def run(*args: str) -> subprocess.Popen:
        log = tmp_path / f"{args[0]}.log"
        process = subprocess.Popen(_tradewindow(*args), env=database_env, cwd=REPO_ROOT,
                                   stdout=log.open("w"), stderr=subprocess.STDOUT)
        started.append((process, log))
        return process

    yield run
    unclean = []
    for process, log in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.returncode not in (0, -signal.SIGTERM):
            unclean.append(f"{process.args[3:]} exited {process.returncode}:\n{log.read_text()[-3000:]}")
    assert unclean == []


def _wait_until_serving(base_url: str, server: subprocess.Popen, log_hint: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"tradewindow serve exited with {server.returncode}; see {log_hint}")
        try:
            if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"tradewindow serve did not answer /healthz within {timeout} s; see {log_hint}")


def _unrelayed(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    return float(re.search(r"^tradewindow_outbox_unrelayed_events (\S+)$", text, re.MULTILINE)[1])


def test_serve_and_worker_as_real_processes_on_postgresql(database_env, start, tmp_path):
    upgrade = subprocess.run(_tradewindow("db", "upgrade"), env=database_env, cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    created = subprocess.run(_tradewindow("users", "create", "operator", "admin", "--password", ADMIN_PASSWORD),
                             env=database_env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stdout + created.stderr

    port = _free_port()
    server = start("serve", "--port", str(port))
    base_url = f"http://127.0.0.1:{port}"
    _wait_until_serving(base_url, server, str(tmp_path / "serve.log"))

    with httpx.Client(base_url=base_url, timeout=10) as http:
        health = http.get("/healthz").json()
        assert health == {"status": "ok", "database": "postgresql"}

        token = http.post("/api/v1/auth/token", json={"username": "operator", "password": ADMIN_PASSWORD})
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

        enterprise = {"uscc": USCC["trader"], "name_zh": "重庆长江汽车进口贸易有限公司",
                      "name_en": "Chongqing Yangtze Auto Import Trading Co., Ltd.", "sector": "xiyong",
                      "kinds": ["trader"], "credit_tier": "advanced_aeo"}
        registered = http.post("/api/v1/enterprises", headers=auth, json=enterprise)
        assert registered.status_code == 201, registered.text

        # The event waits in the outbox until a worker relays it.
        assert _unrelayed(http) >= 1
        worker = start("worker")
        # A liveness bound, not a speed test: generous, because a loaded CI machine may take a while
        # to start a Python process that imports every context.
        deadline = time.monotonic() + 120
        while _unrelayed(http) != 0 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        worker_log = (tmp_path / "worker.log").read_text()[-3000:]
        assert _unrelayed(http) == 0, f"the worker process did not relay the outbox event:\n{worker_log}"

        def enterprises() -> list[dict]:
            response = http.get("/api/v1/enterprises", headers=auth)
            assert response.status_code == 200
            return response.json()["items"]

        before = enterprises()
        assert [e["uscc"] for e in before] == [USCC["trader"]]

        wrong_code = http.post("/api/v1/enterprises", headers=auth,
                               json={**enterprise, "uscc": "91500115GG37HDHFEB", "name_en": "Misprint"})
        assert wrong_code.status_code == 422
        assert wrong_code.json()["errors"][0] == {
            "path": "uscc", "code": "invalid_uscc",
            "message": wrong_code.json()["errors"][0]["message"]}

        duplicate = http.post("/api/v1/enterprises", headers=auth, json={**enterprise, "name_en": "Again"})
        assert duplicate.status_code == 409
        assert duplicate.json()["errors"][0]["code"] == "duplicate"

        malformed = http.post("/api/v1/enterprises", content=b'{"uscc": "9150',
                              headers={**auth, "content-type": "application/json"})
        assert malformed.status_code == 422
        assert malformed.json()["errors"][0]["code"] == "malformed_json"

        unauthorised = http.post("/api/v1/enterprises", json={**enterprise, "uscc": USCC["spare"]})
        assert unauthorised.status_code == 401
        assert unauthorised.json()["errors"][0]["code"] == "not_authenticated"

        bad_token = http.post("/api/v1/enterprises", json={**enterprise, "uscc": USCC["spare"]},
                              headers={"Authorization": "Bearer tw_tok_forged"})
        assert bad_token.status_code == 401

        assert enterprises() == before
    # ... and no event was emitted for any of them. Counted in the database rather than read from
    # the backlog gauge: the worker's periodic tasks may emit events of their own at any moment.
    engine = sqlalchemy.create_engine(database_env["TRADEWINDOW_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            registry_events = conn.execute(sqlalchemy.text(
                "SELECT event_type FROM outbox_events WHERE event_type LIKE 'registry.%'")).scalars().all()
    finally:
        engine.dispose()
    assert registry_events == ["registry.enterprise_registered"]
