"""The cross-border e-commerce stream on NATS JetStream (issue 6, DESIGN.md §5): ingest publishes
orders, payments and waybills; `tradewindow cbec stream-worker` processes apply them.

- Subjects `cbec.records.<partition>` in one work-queue stream (TW_CBEC), partition = CRC-32 of the
  buyer's identity number mod settings.cbec_stream_partitions (orders: the buyer; payments: the
  payer, who must be the buyer; waybills carry no buyer, so their order number). CRC-32, not
  Python's hash(), which differs from process to process.
- Message id (`Nats-Msg-Id`) = record kind + number: the server drops a repeat inside its
  duplicate window; beyond it, the service answers a repeat as a repeat anyway.
- One durable pull consumer per partition (`cbec-p<k>`); any number of workers fetch from them.
  A record is applied through `service.submit` (store, then decide under the per-buyer-year lock)
  and acknowledged afterwards. A worker killed in between leaves the message unacknowledged: it is
  redelivered after the ack wait and applied again, which the service answers as a repeat, so a
  parcel is decided exactly once and no buyer's year is counted twice. A record the service
  refuses (invalid, duplicate number, role) is acknowledged and logged: sending it again cannot
  help. Any other error (the database restarting) naks it for a retry with back-off; after
  MAX_DELIVERIES it goes to the dead-letter subject `cbec.dead.<partition>` (stream TW_CBEC_DEAD)."""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from nats.js import api

from tradewindow.ecommerce import model, service
from tradewindow.ecommerce.model import Kind
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import DomainError
from tradewindow.platform.jobs import backoff
from tradewindow.platform.nats_queue import MSG_ID, NatsConnection
from tradewindow.platform.settings import Settings

log = logging.getLogger("tradewindow.cbec.stream")
STREAM, SUBJECTS = "TW_CBEC", "cbec.records"
DEAD_STREAM, DEAD_SUBJECTS = "TW_CBEC_DEAD", "cbec.dead"
MAX_DELIVERIES = 10


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


class CbecStream:
    def __init__(self, url: str, partitions: int = 8, ack_wait: timedelta = timedelta(seconds=30),
                 duplicate_window: timedelta = timedelta(hours=1), fetch_timeout: float = 0.2) -> None:
        self.conn = NatsConnection(url)
        self.partitions, self.ack_wait, self.fetch_timeout = partitions, ack_wait, fetch_timeout
        self.conn.ensure_stream(api.StreamConfig(
            name=STREAM, subjects=[f"{SUBJECTS}.>"], retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE, duplicate_window=duplicate_window.total_seconds()))
        self.conn.ensure_stream(api.StreamConfig(
            name=DEAD_STREAM, subjects=[f"{DEAD_SUBJECTS}.>"], storage=api.StorageType.FILE))
        self._subscriptions: dict[int, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> CbecStream:
        return cls(settings.nats_url, settings.cbec_stream_partitions,
                   timedelta(seconds=settings.nats_ack_wait_seconds))

    # --- publishing ------------------------------------------------------------------------------

    def publish(self, actor: Actor, kind: Kind, raw: dict[str, Any], record: model.Record) -> bool:
        """Publish one parsed record as the actor sent it; False when the server had it already."""
        body = {"kind": kind.value, "record": raw,
                "actor": {"user_id": actor.user_id, "username": actor.username, "role": actor.role.value,
                          "enterprise_id": actor.enterprise_id}}
        ack = self.conn.run(self.conn.js.publish(
            f"{SUBJECTS}.{partition(record, self.partitions)}", json.dumps(body, ensure_ascii=False).encode(),
            headers={MSG_ID: message_id(kind, record)}))
        return not ack.duplicate

    # --- consuming -------------------------------------------------------------------------------

    def _subscription(self, k: int) -> Any:
        with self._lock:
            if k not in self._subscriptions:
                config = api.ConsumerConfig(ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait.total_seconds(),
                                            max_deliver=-1, max_ack_pending=-1)
                self._subscriptions[k] = self.conn.run(self.conn.js.pull_subscribe(
                    f"{SUBJECTS}.{k}", durable=f"cbec-p{k}", stream=STREAM, config=config))
            return self._subscriptions[k]

    def _fetch(self, k: int, batch: int) -> list[Any]:
        subscription = self._subscription(k)

        async def fetch() -> list[Any]:
            try:
                return await subscription.fetch(batch, timeout=self.fetch_timeout)
            except TimeoutError:
                return []
        return self.conn.run(fetch())

    def run_once(self, uow: UnitOfWork, partitions: list[int] | None = None, batch: int = 100,
                 sampling: model.Sampling | None = None) -> int:
        """Fetch and apply what is waiting on each partition; returns the records handled."""
        handled = 0
        for k in partitions if partitions is not None else range(self.partitions):
            for msg in self._fetch(k, batch):
                self._apply(uow, msg, sampling)
                handled += 1
        return handled

    def _apply(self, uow: UnitOfWork, msg: Any, sampling: model.Sampling | None) -> None:
        try:
            body = json.loads(msg.data)
            who = body["actor"]
            actor = Actor(user_id=who["user_id"], username=who["username"], role=Role(who["role"]),
                          enterprise_id=who["enterprise_id"])
            service.submit(uow, actor, Kind(body["kind"]), body["record"], sampling)
        except (DomainError, ValueError, KeyError, TypeError) as refused:
            # Refused for good (invalid record, number already used, role): acknowledge.
            log.warning("cbec record %s refused: %s", msg.headers.get(MSG_ID) if msg.headers else "?", refused)
        except Exception as exc:  # noqa: BLE001 - the database may be restarting: retry later
            delivered = msg.metadata.num_delivered
            if delivered < MAX_DELIVERIES:
                log.warning("cbec record failed (delivery %d), retrying: %s", delivered, exc)
                self.conn.run(msg.nak(delay=backoff(delivered).total_seconds()))
                return
            headers = {k: v for k, v in (msg.headers or {}).items() if k != MSG_ID}
            headers["Tw-Error"] = f"{type(exc).__name__}: {exc}"[:4000].replace("\n", " ")
            self.conn.run(self.conn.js.publish(msg.subject.replace(SUBJECTS, DEAD_SUBJECTS, 1), msg.data,
                                               headers=headers))
        self.conn.run(msg.ack_sync(timeout=5))

    def run_forever(self, uow_factory: Callable[[], UnitOfWork], stopping: threading.Event,
                    partitions: list[int] | None = None, poll_seconds: float = 0.2,
                    sampling: model.Sampling | None = None) -> None:
        uow = uow_factory()
        while not stopping.is_set():
            try:
                busy = self.run_once(uow, partitions, sampling=sampling)
            except Exception:  # noqa: BLE001 - keep going; NATS or the database may be restarting
                log.exception("cbec stream round failed; retrying")
                busy = 0
            if not busy:
                stopping.wait(poll_seconds)

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
        self._subscriptions.clear()

    def close(self) -> None:
        self.conn.close()


_shared: dict[str, CbecStream] = {}
_shared_lock = threading.Lock()


def shared(settings: Settings) -> CbecStream:
    """The process's stream connection for publishing (the API), opened on first use."""
    with _shared_lock:
        if settings.nats_url not in _shared:
            _shared[settings.nats_url] = CbecStream.from_settings(settings)
        return _shared[settings.nats_url]


def publish_lines(stream: CbecStream, actor: Actor, objects: Any) -> dict[str, Any]:
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
