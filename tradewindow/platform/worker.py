"""The background worker: relays outbox events to their subscribers and runs queued jobs.

Several workers may run at once (on PostgreSQL, on several machines): the relay numbers events
under a lock and jobs are claimed by conditional update, so none is done twice."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from time import monotonic
from typing import Any

from sqlalchemy import Engine

from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.jobs import JobQueue, job_queue, registered_periodic, registered_queues
from tradewindow.platform.outbox import relay_pending
from tradewindow.platform.settings import get_settings

log = logging.getLogger("tradewindow.worker")


class Worker:
    def __init__(self, engine: Engine, poll_seconds: float = 0.5, name: str | None = None,
                 queue: JobQueue | None = None) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        # The implementation settings.job_queue picks (database table or NATS JetStream).
        self.queue: Any = queue or job_queue(get_settings(), lambda: UnitOfWork(engine))
        self.stopping = threading.Event()
        self._last_run: dict[str, float] = {}

    def run_once(self) -> int:
        """One round: relay events, run the periodic tasks that are due, then the jobs that are
        due. Returns the work done."""
        done = relay_pending(UnitOfWork(self.engine))
        done += self._run_periodic()
        for queue_name, handler in registered_queues().items():
            for job in self.queue.claim(queue_name, self.name, limit=20):
                try:
                    handler(UnitOfWork(self.engine), job.payload)
                except Exception as exc:  # noqa: BLE001 - a job's failure must not stop the worker
                    status = self.queue.fail(job, f"{type(exc).__name__}: {exc}")
                    log.warning("job %s on %s failed (%s): %s", job.id, queue_name, status, exc)
                else:
                    self.queue.complete(job)
                done += 1
        return done

    def _run_periodic(self) -> int:
        ran = 0
        now = monotonic()
        for name, (seconds, task) in registered_periodic().items():
            if now - self._last_run.get(name, -seconds) < seconds:
                continue
            self._last_run[name] = now
            try:
                task(UnitOfWork(self.engine))
            except Exception:  # noqa: BLE001 - one failing task must not stop the others
                log.exception("periodic task %s failed", name)
            ran += 1
        return ran

    def run_forever(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(signum, lambda *_: self.stopping.set())
            except ValueError:   # not the main thread (tests run the worker in a thread)
                pass
        log.info("worker %s started", self.name)
        while not self.stopping.is_set():
            try:
                busy = self.run_once()
            except Exception:  # noqa: BLE001 - keep going; the database may be restarting
                log.exception("worker round failed; retrying")
                busy = 0
            if not busy:
                self.stopping.wait(self.poll_seconds)
        log.info("worker %s stopped", self.name)


def run_in_thread(engine: Engine, poll_seconds: float = 0.5) -> tuple[Worker, threading.Thread]:
    worker = Worker(engine, poll_seconds)
    thread = threading.Thread(target=worker.run_forever, name="tradewindow-worker", daemon=True)
    thread.start()
    return worker, thread


