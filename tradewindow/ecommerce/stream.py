"""The cross-border e-commerce stream (issue 6, DESIGN.md §5): ingest publishes orders, payments
and waybills; `tradewindow worker cbec` processes apply them. Two implementations of one small
protocol (`RecordQueue`), chosen by settings.job_queue like the job queue itself:

- `CbecStream`, NATS JetStream: subjects `cbec.records.<partition>` in one work-queue stream
  (TW_CBEC), partition = CRC-32 of the buyer's identity number mod settings.cbec_stream_partitions
  (orders: the buyer; payments: the payer, who must be the buyer; waybills carry no buyer, so
  their order number). CRC-32, not Python's hash(), which differs from process to process.
  Message id (`Nats-Msg-Id`) = record kind + number: the server drops a repeat inside its
  duplicate window; beyond it, the service answers a repeat as a repeat anyway. One durable pull
  consumer per partition (`cbec-p<k>`); any number of workers fetch from them.
- `DatabaseRecordQueue`, the embedded default: the same documents as jobs of the database job
  queue (queue `cbec.records`, de-duplicated by the same message id), claimed with a lease.

Both apply what they take with the same code, `service.receive_queued`: a batch of documents
stored in one transaction, then the parcels they completed decided under their buyers' locks;
the messages are acknowledged only after that commits. A worker killed in between leaves them
unacknowledged: they are delivered again and answered as repeats, so a parcel is decided exactly
once and no buyer's year is counted twice. A document the service refuses (invalid, duplicate
number, role) is acknowledged and logged: sending it again cannot help. When a batch fails for
another reason (the database restarting), its documents are applied one by one, and the one that
fails is retried with back-off (nak / job retry); after MAX_DELIVERIES it goes to the dead-letter
subject `cbec.dead.<partition>` (stream TW_CBEC_DEAD), or the job queue's dead state."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from tradewindow.ecommerce import model, service
from tradewindow.ecommerce.model import Kind
from tradewindow.platform import jsontext
from tradewindow.platform.auth import Actor
from tradewindow.platform.bulk import cycle_collection_paused
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.jobs import DEAD, DatabaseJobQueue, backoff
from tradewindow.platform.settings import Settings

log = logging.getLogger("tradewindow.cbec.stream")
STREAM, SUBJECTS = "TW_CBEC", "cbec.records"
DEAD_STREAM, DEAD_SUBJECTS = "TW_CBEC_DEAD", "cbec.dead"
MAX_DELIVERIES = 10
STATUS = "Status"       # the header of a status message answering a pull request (NATS/1.0 404 ...)


def partition(record: model.Record, partitions: int) -> int:
    if isinstance(record, model.Order):
        key = record.buyer_id_number
    elif isinstance(record, model.Payment):
        key = record.payer_id_number
    else:
        key = record.order_no
    return zlib.crc32(key.encode()) % partitions


def message_id(kind: Kind, record: model.Record) -> str:
    return f"{kind.value}:{record.number}"


class RecordQueue(Protocol):
    """Where ingest puts e-commerce documents and `tradewindow worker cbec` takes them from."""

    partitions: int

    def publish(self, actor: Actor, kind: Kind, raw: dict[str, Any], record: model.Record) -> bool: ...

    def run_once(self, uow: UnitOfWork, partitions: list[int] | None = None, batch: int = ...,
                 sampling: model.Sampling | None = None) -> int: ...

    def depth(self) -> int: ...

    def close(self) -> None: ...


def _log_refusals(name: Callable[[int], str], outcomes: list[str | list]) -> int:
    refused = 0
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, list):
            refused += 1
            log.warning("cbec record %s refused: %s", name(index), "; ".join(f"{p.path} {p.code}" for p in outcome))
    return refused


def _first_line(exc: BaseException) -> str:
    """The error's type and first line: a database error's further lines hold the statement and
    its parameters (documents' personal data), which stay out of the log."""
    return f"{type(exc).__name__}: {str(exc).partition(chr(10))[0]}"


def apply_bodies(uow: UnitOfWork, bodies: list[Any], name: Callable[[int], str],
                 sampling: model.Sampling | None) -> None:
    """Apply a batch of queued documents (the same code for both queues); refusals are logged,
    each under its `name(index in bodies)`.
    The cyclic garbage collector waits meanwhile: a batch makes tens of thousands of small objects
    that form no cycles (reference counting frees them), and walking the worker's whole heap
    every few hundred of them was a fifth of its CPU."""
    with cycle_collection_paused():
        _log_refusals(name, service.receive_queued(uow, bodies, sampling))


class CbecStream:
    """The e-commerce stream on NATS JetStream."""

    def __init__(self, url: str, partitions: int = 8, ack_wait: timedelta = timedelta(seconds=30),
                 duplicate_window: timedelta = timedelta(hours=1), fetch_timeout: float = 5.0,
                 retry_unit: timedelta = timedelta(seconds=1)) -> None:
        from nats.js import api  # nats-py only where used

        from tradewindow.platform.nats_queue import NatsConnection

        self.conn = NatsConnection(url)
        self.partitions, self.ack_wait, self.fetch_timeout = partitions, ack_wait, fetch_timeout
        self.retry_unit = retry_unit        # see platform.jobs.backoff
        self.conn.ensure_stream(api.StreamConfig(
            name=STREAM, subjects=[f"{SUBJECTS}.>"], retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE, duplicate_window=duplicate_window.total_seconds()))
        self.conn.ensure_stream(api.StreamConfig(
            name=DEAD_STREAM, subjects=[f"{DEAD_SUBJECTS}.>"], storage=api.StorageType.FILE))
        self._consumers: dict[int, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> CbecStream:
        return cls(settings.nats_url, settings.cbec_stream_partitions,
                   timedelta(seconds=settings.nats_ack_wait_seconds),
                   retry_unit=timedelta(seconds=settings.retry_backoff_seconds))

    # --- publishing ------------------------------------------------------------------------------

    def publish(self, actor: Actor, kind: Kind, raw: dict[str, Any], record: model.Record) -> bool:
        """Publish one parsed record as the actor sent it; False when the server had it already."""
        from tradewindow.platform.nats_queue import MSG_ID

        ack = self.conn.run(self.conn.js.publish(
            f"{SUBJECTS}.{partition(record, self.partitions)}",
            json.dumps(service.queued(actor, kind, raw), ensure_ascii=False).encode(),
            headers={MSG_ID: message_id(kind, record)}))
        return not ack.duplicate

    # --- consuming -------------------------------------------------------------------------------

    def _consumer(self, k: int) -> str:
        """The subject a pull request for partition k goes to: its durable consumer's (`cbec-p<k>`,
        made on first use if no worker made it before)."""
        from nats.js import api
        from nats.js.errors import BadRequestError, NotFoundError

        with self._lock:
            if k not in self._consumers:
                durable = f"cbec-p{k}"
                config = api.ConsumerConfig(durable_name=durable, filter_subject=f"{SUBJECTS}.{k}",
                                            ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait.total_seconds(),
                                            max_deliver=-1, max_ack_pending=-1)

                async def ensure() -> None:
                    try:
                        await self.conn.js.consumer_info(STREAM, durable)
                    except NotFoundError:
                        try:
                            await self.conn.js.add_consumer(STREAM, config)
                        except BadRequestError:     # made meanwhile by another worker
                            await self.conn.js.consumer_info(STREAM, durable)
                self.conn.run(ensure())
                self._consumers[k] = f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{durable}"
            return self._consumers[k]

    def _fetch(self, k: int, batch: int) -> list[Any]:
        """Up to `batch` messages waiting on partition k: one pull request the server answers at
        once (no_wait: the messages there are, then, if fewer than asked, a status message that
        ends the request), taken by a callback into a list. nats-py's own fetch awaits each
        message with a task and a timer of its own: a tenth of a worker's CPU. A message that
        arrives after `fetch_timeout` (the server slow to answer) is delivered again later."""
        subject, nc = self._consumer(k), self.conn.nc

        async def fetch() -> list[Any]:
            taken: list[Any] = []
            over = asyncio.get_running_loop().create_future()

            async def take(msg: Any) -> None:
                if msg.headers and msg.headers.get(STATUS):      # 404 no messages, 408, 409: the end
                    if not over.done():
                        over.set_result(None)
                    return
                taken.append(msg)
                if len(taken) >= batch and not over.done():
                    over.set_result(None)
            subscription = await nc.subscribe(nc.new_inbox(), cb=take)
            try:
                await nc.publish(subject, json.dumps({"batch": batch, "no_wait": True}).encode(),
                                 reply=subscription.subject)
                try:
                    await asyncio.wait_for(over, self.fetch_timeout)
                except TimeoutError:
                    pass
            finally:
                await subscription.unsubscribe()
            return taken
        return self.conn.run(fetch())

    def run_once(self, uow: UnitOfWork, partitions: list[int] | None = None, batch: int = 1000,
                 sampling: model.Sampling | None = None) -> int:
        """Fetch and apply what is waiting on each partition, up to `batch` messages per partition
        in one go; returns the records handled."""
        handled = 0
        for k in partitions if partitions is not None else range(self.partitions):
            messages = self._fetch(k, batch)
            if messages:
                self._apply_batch(uow, messages, sampling)
                handled += len(messages)
        return handled

    @staticmethod
    def _name(msg: Any) -> str:
        from tradewindow.platform.nats_queue import MSG_ID

        return (msg.headers or {}).get(MSG_ID, "?")

    def _apply_batch(self, uow: UnitOfWork, messages: list[Any], sampling: model.Sampling | None) -> None:
        bodies: list[Any] = []
        for msg in messages:
            try:
                bodies.append(jsontext.read(msg.data))
            except ValueError:
                bodies.append(None)          # refused as malformed by the service
        try:
            apply_bodies(uow, bodies, lambda index: self._name(messages[index]), sampling)
        except Exception as exc:  # noqa: BLE001 - find the one that fails: apply one by one
            log.warning("cbec batch of %d failed (%s); applying one by one", len(messages), exc)
            for msg, body in zip(messages, bodies, strict=True):
                self._apply_one(uow, msg, body, sampling)
            return

        async def ack_all() -> None:
            for msg in messages:
                await msg.ack()              # after the commit; a lost ack only means a repeat later
            await self.conn.nc.flush()
        self.conn.run(ack_all())

    def _apply(self, uow: UnitOfWork, msg: Any, sampling: model.Sampling | None) -> None:
        """One message on its own (the tests' and the fallback's way)."""
        try:
            body = jsontext.read(msg.data)
        except ValueError:
            body = None
        self._apply_one(uow, msg, body, sampling)

    def _apply_one(self, uow: UnitOfWork, msg: Any, body: Any, sampling: model.Sampling | None) -> None:
        try:
            apply_bodies(uow, [body], lambda _: self._name(msg), sampling)
        except Exception as exc:  # noqa: BLE001 - the database may be restarting: retry later
            from tradewindow.platform.nats_queue import MSG_ID

            delivered = msg.metadata.num_delivered
            if delivered < MAX_DELIVERIES:
                log.warning("cbec record %s failed (delivery %d), retrying: %s", self._name(msg), delivered,
                            _first_line(exc))
                self.conn.run(msg.nak(delay=backoff(delivered, self.retry_unit).total_seconds()))
                return
            log.error("cbec record %s dead-lettered after %d deliveries: %s", self._name(msg), delivered,
                      _first_line(exc))
            headers = {k: v for k, v in (msg.headers or {}).items() if k != MSG_ID}
            headers["Tw-Error"] = f"{type(exc).__name__}: {exc}"[:4000].replace("\n", " ")
            self.conn.run(self.conn.js.publish(msg.subject.replace(SUBJECTS, DEAD_SUBJECTS, 1), msg.data,
                                               headers=headers))
        self.conn.run(msg.ack_sync(timeout=5))

    def depth(self) -> int:
        return self.conn.run(self.conn.js.stream_info(STREAM)).state.messages

    def delete_streams(self) -> None:
        """Remove both streams and everything in them (tests; an operator starting afresh)."""
        from nats.js.errors import NotFoundError

        for name in (STREAM, DEAD_STREAM):
            try:
                self.conn.run(self.conn.js.delete_stream(name))
            except NotFoundError:
                pass
        self._consumers.clear()

    def close(self) -> None:
        self.conn.close()


class DatabaseRecordQueue:
    """The e-commerce stream in the database job queue (the embedded default): one queue,
    `service.RECORD_QUEUE`; a job per document, de-duplicated by its message id; claimed with a
    lease, so a killed worker's documents are claimed again once it runs out."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], partitions: int = 1,
                 lease: timedelta = timedelta(minutes=1), name: str | None = None,
                 retry_unit: timedelta = timedelta(seconds=1)) -> None:
        self._uow = uow_factory
        self.partitions = partitions          # one queue: the buyers' locks keep the limits
        self.queue = DatabaseJobQueue(uow_factory, lease, retry_unit)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"

    def publish(self, actor: Actor, kind: Kind, raw: dict[str, Any], record: model.Record) -> bool:
        key = f"cbec:{message_id(kind, record)}"
        if self.queue.holds(key):
            return False
        self.queue.enqueue(service.RECORD_QUEUE, service.queued(actor, kind, raw), dedup_key=key,
                           max_attempts=MAX_DELIVERIES)
        return True

    def run_once(self, uow: UnitOfWork, partitions: list[int] | None = None, batch: int = 1000,
                 sampling: model.Sampling | None = None) -> int:
        claimed = self.queue.claim(service.RECORD_QUEUE, self.name, limit=batch)
        if not claimed:
            return 0
        try:
            apply_bodies(uow, [job.payload for job in claimed], lambda index: f"job {claimed[index].id}", sampling)
        except Exception as exc:  # noqa: BLE001 - find the one that fails: apply one by one
            log.warning("cbec batch of %d failed (%s); applying one by one", len(claimed), exc)
            for job in claimed:
                try:
                    apply_bodies(uow, [job.payload], lambda _, job=job: f"job {job.id}", sampling)
                except Exception as failure:  # noqa: BLE001 - retried with back-off, then dead
                    if self.queue.fail(job, f"{type(failure).__name__}: {failure}") == DEAD:
                        log.error("cbec record job %s dead-lettered after %d deliveries: %s", job.id, job.attempts,
                                  _first_line(failure))
                    else:
                        log.warning("cbec record job %s failed (delivery %d), retrying: %s", job.id, job.attempts,
                                    _first_line(failure))
                else:
                    self.queue.complete(job)
            return len(claimed)
        for job in claimed:
            self.queue.complete(job)
        return len(claimed)

    def depth(self) -> int:
        counts = self.queue.depth()
        return counts.get("queued", 0) + counts.get("running", 0)

    def close(self) -> None:
        pass


def record_queue(settings: Settings, uow_factory: Callable[[], UnitOfWork]) -> RecordQueue:
    """The implementation settings.job_queue names: NATS JetStream, or the database (default)."""
    if settings.job_queue == "nats":
        return CbecStream.from_settings(settings)
    return DatabaseRecordQueue(uow_factory, lease=timedelta(seconds=settings.nats_ack_wait_seconds),
                               retry_unit=timedelta(seconds=settings.retry_backoff_seconds))


def run_forever(queue: RecordQueue, uow_factory: Callable[[], UnitOfWork], stopping: threading.Event,
                partitions: list[int] | None = None, poll_seconds: float = 0.2,
                sampling: model.Sampling | None = None, batch: int = 1000) -> None:
    uow = uow_factory()
    while not stopping.is_set():
        try:
            busy = queue.run_once(uow, partitions, batch=batch, sampling=sampling)
        except Exception:  # noqa: BLE001 - keep going; NATS or the database may be restarting
            log.exception("cbec stream round failed; retrying")
            busy = 0
        if not busy:
            stopping.wait(poll_seconds)


_shared: dict[str, CbecStream] = {}
_shared_lock = threading.Lock()


def shared(settings: Settings) -> CbecStream:
    """The process's NATS stream connection for publishing (the API), opened on first use."""
    with _shared_lock:
        if settings.nats_url not in _shared:
            _shared[settings.nats_url] = CbecStream.from_settings(settings)
        return _shared[settings.nats_url]


def publisher(settings: Settings, uow_factory: Callable[[], UnitOfWork]) -> RecordQueue:
    """Where the API publishes: the shared NATS connection, or the database queue."""
    if settings.job_queue == "nats":
        return shared(settings)
    return DatabaseRecordQueue(uow_factory)


def publish_lines(stream: RecordQueue, actor: Actor, objects: Any) -> dict[str, Any]:
    """Publish the valid records of an NDJSON body; each refused line with its errors."""
    published = repeated = 0
    refused = []
    for number, raw in objects:
        parsed = service._parse_batch_line(actor, raw, None)
        if isinstance(parsed, list):
            refused.append({"line": number, "errors": [p.as_dict() for p in parsed]})
            continue
        kind, record = parsed
        fields = {k: v for k, v in raw.items() if k != "kind"}
        if stream.publish(actor, kind, fields, record):
            published += 1
        else:
            repeated += 1
    return {"published": published, "repeated": repeated, "refused": refused}
