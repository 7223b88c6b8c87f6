"""The job queue on NATS JetStream (settings.job_queue = "nats"), for deployments beyond one
machine (DESIGN.md §5). It satisfies `platform.jobs.JobQueue` as DatabaseJobQueue does:

- enqueue publishes to `<subjects>.<queue>` in a stream with work-queue retention (a message is
  removed once acknowledged). A `dedup_key` becomes the message's `Nats-Msg-Id` header, so the
  server drops a repeat inside the stream's duplicate window and answers with the first message's
  sequence, which is the job's id: a repeated key returns the first job's id. (Outside the window
  the database queue still remembers the key and JetStream does not: handlers must be idempotent,
  as every handler here is anyway.)
- claim is a fetch from one durable pull consumer per queue. The consumer's ack wait is the lease:
  a worker that dies leaves its messages to be redelivered when it runs out, and `attempts` is the
  server's delivery count.
- complete acknowledges; fail naks with the same exponential back-off as the database queue, or,
  after the last attempt, copies the job to the dead-letter stream (`<subjects>_dead.<queue>`,
  limits retention, kept for an operator) and acknowledges the original.
- depth reads stream and consumer info: queued, running (delivered, not acknowledged: this
  includes a failed job waiting out its back-off) and dead. Finished jobs are gone from a
  work-queue stream, so there is no "done" count.
- run_after: JetStream 2.9 has no scheduled delivery, so a job fetched before its time is naked
  with the remaining delay and not handed out (each such early fetch counts as a delivery).

Why a background event-loop thread: nats-py is asyncio only, and Trade Window is synchronous (sync
FastAPI endpoints in a thread pool, Typer commands, the worker's loop). A NATS connection belongs
to the event loop that opened it, so one loop runs for the life of the process in a daemon thread
and owns the connection; the sync methods hand coroutines to it (`run_coroutine_threadsafe`) and
wait for the result. Any number of threads may call them at once; the connection is shared, as
nats-py intends."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

import nats
from nats.js import api
from nats.js.errors import BadRequestError, NotFoundError

from tradewindow.platform.db import utcnow
from tradewindow.platform.jobs import DEAD, QUEUED, RUNNING, Job, backoff

T = TypeVar("T")
log = logging.getLogger("tradewindow.nats")
MSG_ID = "Nats-Msg-Id"
RUN_AFTER = "Tw-Run-After"
MAX_ATTEMPTS = "Tw-Max-Attempts"
ERROR = "Tw-Error"


class NatsConnection:
    """One NATS connection owned by a private event loop in a daemon thread, used synchronously."""

    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tradewindow-nats", daemon=True)
        self._thread.start()
        try:
            self.nc = self.run(nats.connect(url, connect_timeout=connect_timeout, max_reconnect_attempts=-1,
                                            allow_reconnect=True, error_cb=self._error,
                                            disconnected_cb=self._disconnected, reconnected_cb=self._reconnected),
                               timeout=connect_timeout + 5)
        except BaseException:
            self._stop_loop()
            raise
        self.js = self.nc.jetstream()

    # nats-py's own error callback logs each error with its traceback: while a server restarts,
    # one every reconnect attempt (2 s). Each is one line here; the client keeps trying.
    async def _error(self, exc: Exception) -> None:
        log.warning("NATS %s: %s: %s", self.url, type(exc).__name__, exc)

    async def _disconnected(self) -> None:
        if not self._closing:       # nats-py says so on close() too
            log.warning("NATS %s: disconnected; reconnecting", self.url)

    async def _reconnected(self) -> None:
        log.info("NATS %s: reconnected", self.url)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def ensure_stream(self, config: api.StreamConfig) -> None:
        async def ensure() -> None:
            try:
                await self.js.stream_info(config.name or "")
            except NotFoundError:
                try:
                    await self.js.add_stream(config)
                except BadRequestError:     # created meanwhile by another process
                    await self.js.stream_info(config.name or "")
        self.run(ensure())

    def close(self) -> None:
        self._closing = True
        try:
            self.run(self.nc.close(), timeout=10)
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class JetStreamJobQueue:
    def __init__(self, url: str, *, name: str = "TW_JOBS", subjects: str = "tw.jobs",
                 lease: timedelta = timedelta(minutes=5), duplicate_window: timedelta = timedelta(hours=1),
                 fetch_timeout: float = 0.2, connection: NatsConnection | None = None,
                 retry_unit: timedelta = timedelta(seconds=1)) -> None:
        self.conn = connection or NatsConnection(url)
        self.retry_unit = retry_unit        # see jobs.backoff
        self.name, self.subjects = name, subjects
        self.dead_name, self.dead_subjects = f"{name}_DEAD", f"{subjects}_dead"
        self.lease, self.fetch_timeout = lease, fetch_timeout
        self.conn.ensure_stream(api.StreamConfig(
            name=name, subjects=[f"{subjects}.>"], retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE, duplicate_window=duplicate_window.total_seconds()))
        self.conn.ensure_stream(api.StreamConfig(
            name=self.dead_name, subjects=[f"{self.dead_subjects}.>"], retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE))
        self._subscriptions: dict[str, Any] = {}
        self._held: dict[str, Any] = {}          # job id -> the message, until complete or fail
        self._lock = threading.Lock()

    @staticmethod
    def _consumer(queue: str) -> str:
        return "q-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in queue)

    def enqueue(self, queue: str, payload: dict[str, Any], *, dedup_key: str | None = None,
                run_after: datetime | None = None, max_attempts: int = 5) -> str:
        headers = {MAX_ATTEMPTS: str(max_attempts)}
        if dedup_key is not None:
            headers[MSG_ID] = dedup_key
        if run_after is not None:
            headers[RUN_AFTER] = run_after.isoformat()
        ack = self.conn.run(self.conn.js.publish(f"{self.subjects}.{queue}", json.dumps(payload).encode(),
                                                 headers=headers))
        return str(ack.seq)

    def _subscription(self, queue: str) -> Any:
        with self._lock:
            if queue not in self._subscriptions:
                config = api.ConsumerConfig(ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.lease.total_seconds(),
                                            max_deliver=-1, max_ack_pending=-1)
                self._subscriptions[queue] = self.conn.run(self.conn.js.pull_subscribe(
                    f"{self.subjects}.{queue}", durable=self._consumer(queue), stream=self.name, config=config))
            return self._subscriptions[queue]

    def claim(self, queue: str, worker: str, limit: int = 1) -> list[Job]:
        subscription = self._subscription(queue)

        async def fetch() -> list[Any]:
            try:
                return await subscription.fetch(limit, timeout=self.fetch_timeout)
            except (TimeoutError, nats.errors.TimeoutError):
                return []

        claimed = []
        for msg in self.conn.run(fetch()):
            headers = msg.headers or {}
            if RUN_AFTER in headers:
                wait = (datetime.fromisoformat(headers[RUN_AFTER]) - utcnow()).total_seconds()
                if wait > 0:
                    self.conn.run(msg.nak(delay=wait))
                    continue
            job = Job(str(msg.metadata.sequence.stream), queue, json.loads(msg.data),
                      msg.metadata.num_delivered, int(headers.get(MAX_ATTEMPTS, "5")), worker)
            with self._lock:
                self._held[job.id] = msg
            claimed.append(job)
        return claimed

    def _release(self, job: Job) -> Any:
        with self._lock:
            return self._held.pop(job.id, None)

    def complete(self, job: Job) -> bool:
        """Acknowledge. False when this queue does not hold the job (never claimed here, or finished)."""
        msg = self._release(job)
        if msg is None:
            return False
        self.conn.run(msg.ack_sync(timeout=5))
        return True

    def fail(self, job: Job, error: str) -> str:
        msg = self._release(job)
        if msg is None:
            return RUNNING
        if job.attempts >= job.max_attempts:
            headers = {**(msg.headers or {}), ERROR: error[:4000].replace("\r", " ").replace("\n", " "),
                       "Tw-Job-Id": job.id}
            headers.pop(MSG_ID, None)
            self.conn.run(self.conn.js.publish(f"{self.dead_subjects}.{job.queue}", msg.data, headers=headers))
            # Acknowledged rather than terminated: nats-server 2.9 keeps a terminated message in a
            # work-queue stream, where it would count as queued for ever.
            self.conn.run(msg.ack_sync(timeout=5))
            return DEAD
        self.conn.run(msg.nak(delay=backoff(job.attempts, self.retry_unit).total_seconds()))
        return QUEUED

    def depth(self) -> dict[str, int]:
        async def read() -> dict[str, int]:
            stream = await self.conn.js.stream_info(self.name)
            dead = await self.conn.js.stream_info(self.dead_name)
            running = 0
            for consumer in await self.conn.js.consumers_info(self.name):
                running += consumer.num_ack_pending
            return {QUEUED: stream.state.messages - running, RUNNING: running, DEAD: dead.state.messages}
        return {status: count for status, count in self.conn.run(read()).items() if count}

    def delete_streams(self) -> None:
        """Remove both streams (tests; an operator resetting a queue)."""
        for name in (self.name, self.dead_name):
            try:
                self.conn.run(self.conn.js.delete_stream(name))
            except NotFoundError:
                pass

    def close(self) -> None:
        self.conn.close()
