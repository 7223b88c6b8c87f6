"""Helpers for the notification tests: the relay subscriber installed (and removed afterwards),
events emitted the way contexts emit them, the worker, and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tradewindow.notifications import service
from tradewindow.platform import jobs as jobs_module
from tradewindow.platform import outbox
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.outbox import relay_pending
from tradewindow.platform.settings import get_settings
from tradewindow.platform.worker import Worker


@pytest.fixture
def installed() -> Iterator[None]:
    """The notifications subscriber on the relay, and the webhook job handler, for this test only."""
    subscribers, handlers = list(outbox._subscribers), dict(jobs_module._handlers)
    service.install()
    jobs_module.handles(service.WEBHOOK_QUEUE)(service.deliver)
    yield
    outbox._subscribers[:] = subscribers
    jobs_module._handlers.clear()
    jobs_module._handlers.update(handlers)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> int:
    """Retries without waiting: three tries in all. Returns the number of tries."""
    monkeypatch.setattr(service, "RETRY_SCHEDULE", (timedelta(0), timedelta(0)))
    return 3


def notify(uow: UnitOfWork, owner: str | None, code: str = "declaration.accepted",
           subject_id: str = "D1", audiences: list[str] | None = None, message: str | None = None,
           subject_type: str = "declaration", **data: object) -> str:
    """Emit one notifiable event in its own transaction, as a context's action would."""
    notification: dict = {"code": code, "subject_type": subject_type, "subject_id": subject_id}
    if message is not None:
        notification["message"] = message
    if audiences is not None:
        notification["audiences"] = audiences
    with uow.transaction():
        return uow.emit(f"test.{code}", subject_type, subject_id, {**data, "notification": notification},
                        owner_enterprise_id=owner)


def relay(uow: UnitOfWork) -> int:
    return relay_pending(UnitOfWork(uow.engine))


def run_worker(engine, rounds: int = 20) -> int:
    """Worker rounds until there is nothing due (or `rounds` is reached); returns rounds run."""
    worker = Worker(engine, name="test-worker")
    for n in range(1, rounds + 1):
        if not worker.run_once():
            return n
    return rounds


@dataclass
class Receiver:
    """A webhook receiver: answers each POST with the next status of `script` (the last one
    repeats) and keeps what it was sent."""

    url: str
    script: list[int] = field(default_factory=lambda: [200])
    requests: list[dict] = field(default_factory=list)

    def answer(self) -> int:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    @property
    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1; private webhook addresses are allowed while it runs."""
    monkeypatch.setenv("TRADEWINDOW_WEBHOOK_PRIVATE_ADDRESSES", "true")
    get_settings.cache_clear()
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
            status = state.answer()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/tradewindow")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
