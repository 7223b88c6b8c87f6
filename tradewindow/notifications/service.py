"""Notification actions: turning relayed events into notifications and webhook deliveries, the pull
feed, webhook subscriptions, and the delivery job.

Nothing here runs inside a web request's critical path except reading: notifications are written by
the outbox relay (in its transaction, so a notification exists exactly when its event was relayed)
and webhooks are POSTed by the worker's "webhooks" queue, never by the request that caused them."""

from __future__ import annotations

import logging
import socket
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping

from tradewindow import __version__
from tradewindow.notifications import model
from tradewindow.notifications.model import DeliveryStatus
from tradewindow.notifications.tables import (
    notifications,
    webhook_attempts,
    webhook_deliveries,
    webhook_subscriptions,
)
from tradewindow.platform import outbox, vault
from tradewindow.platform.auth import ENTERPRISE_ROLES, Actor, new_secret
from tradewindow.platform.db import UnitOfWork, utcnow
from tradewindow.platform.errors import Conflict, ValidationFailed, not_found, require
from tradewindow.platform.ids import new_id
from tradewindow.platform.jobs import DatabaseJobQueue, handles
from tradewindow.platform.outbox import Event
from tradewindow.platform.settings import get_settings
from tradewindow.registry import service as registry

log = logging.getLogger("tradewindow.notifications")

WEBHOOK_QUEUE = "webhooks"
# Injectable for tests and operators: the waits between tries (model.RETRY_SCHEDULE by default) and
# the HTTP timeout of one try.
RETRY_SCHEDULE = model.RETRY_SCHEDULE
HTTP_TIMEOUT_SECONDS = 10.0
MAX_SUBSCRIPTIONS_PER_ENTERPRISE = 20
MAX_FEED_PAGE = 500


def install() -> None:
    """Subscribe to every relayed event. Called by the web app factory and the worker commands
    (the platform's worker sits below this context and cannot import it)."""
    # The relay's subscriber list is module state that tests may reset; look rather than remember.
    if not any(handler is on_event for _, handler in outbox._subscribers):
        outbox.subscribe("", on_event)


# --- from events to notifications (inside the relay's transaction) -------------------------------

def on_event(uow: UnitOfWork, event: Event) -> None:
    """One notification per audience enterprise; one webhook delivery (and its job) per active
    subscription of those enterprises whose filter takes the code."""
    notice = model.notice_from_event(event.aggregate_type, event.aggregate_id, event.payload,
                                     event.owner_enterprise_id)
    if notice is None:
        return
    conn = uow.conn
    conn.execute(insert(notifications), [{
        "id": new_id(), "feed_seq": event.feed_seq, "enterprise_id": enterprise_id,
        "event_id": event.id, "subject_type": notice.subject_type, "subject_id": notice.subject_id,
        "code": notice.code, "message": notice.message, "at": event.created_at,
    } for enterprise_id in notice.audiences])
    audience = [e for e in notice.audiences if e is not None]
    if not audience:
        return
    subscriptions = conn.execute(select(webhook_subscriptions).where(
        webhook_subscriptions.c.enterprise_id.in_(audience),
        webhook_subscriptions.c.active.is_(True))).mappings().all()
    body = model.webhook_body(event.id, notice.code, notice.message, notice.subject_type,
                              notice.subject_id, event.created_at, notice.data)
    now = utcnow()
    for subscription in subscriptions:
        if not model.matches(subscription["codes"], notice.code):
            continue
        delivery_id = new_id()
        conn.execute(insert(webhook_deliveries).values(
            id=delivery_id, subscription_id=subscription["id"],
            enterprise_id=subscription["enterprise_id"], event_id=event.id, code=notice.code,
            body=body, status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now,
            created_at=now))
        _enqueue(uow, delivery_id, dedup_key=f"webhook:{delivery_id}")


def _enqueue(uow: UnitOfWork, delivery_id: str, dedup_key: str, run_after: datetime | None = None) -> None:
    # Joins the caller's transaction: the job exists exactly when its delivery row does.
    DatabaseJobQueue(lambda: uow).enqueue(WEBHOOK_QUEUE, {"delivery_id": delivery_id},
                                          dedup_key=dedup_key, run_after=run_after, uow=uow)


# --- the pull feed -------------------------------------------------------------------------------

def notifications_after(uow: UnitOfWork, actor: Actor, after_cursor: str | int | None = None,
                        limit: int = 100) -> dict:
    """The caller's notifications after `after_cursor`, oldest first. The cursor is the position
    the relay gave the event in commit order (its feed_seq), so paging with `next` never skips an
    event whose transaction committed late, and never repeats one."""
    after = parse_cursor(after_cursor)
    limit = max(1, min(int(limit), MAX_FEED_PAGE))
    with uow.read():
        rows = _feed_rows(uow, actor, notifications.c.feed_seq > after, notifications.c.feed_seq, limit)
    return {"notifications": [_feed_item(r) for r in rows],
            "next": str(rows[-1]["feed_seq"]) if rows else str(after)}


def recent_notifications(uow: UnitOfWork, actor: Actor, before_cursor: str | int | None = None,
                         limit: int = 50) -> dict:
    """Newest first, for the web page: `before` pages back through older notifications."""
    before = parse_cursor(before_cursor) if before_cursor not in (None, "") else None
    limit = max(1, min(int(limit), MAX_FEED_PAGE))
    condition = notifications.c.feed_seq < before if before is not None else notifications.c.feed_seq > 0
    with uow.read():
        rows = _feed_rows(uow, actor, condition, notifications.c.feed_seq.desc(), limit)
    return {"notifications": [_feed_item(r) for r in rows],
            "before": str(rows[-1]["feed_seq"]) if len(rows) == limit else None}


def parse_cursor(cursor: str | int | None) -> int:
    if cursor is None or cursor == "":
        return 0
    text = str(cursor).strip()
    if not text.isdigit() or len(text) > 18:
        raise ValidationFailed("The cursor is the `next` value of an earlier answer (or 0).",
                               "invalid_cursor", "after")
    return int(text)


def _feed_rows(uow: UnitOfWork, actor: Actor, condition: Any, order: Any, limit: int) -> list[RowMapping]:
    scope = _feed_scope(uow, actor)
    visible = [condition]
    if scope is not None:
        if not scope:
            return []
        visible.append(notifications.c.enterprise_id.in_(scope))
    # A broker may be told of one event under its own name and its principal's: one row per event,
    # so page by distinct positions first.
    seqs = [s for (s,) in uow.conn.execute(
        select(notifications.c.feed_seq).where(*visible).distinct().order_by(order).limit(limit))]
    if not seqs:
        return []
    rows = uow.conn.execute(select(notifications).where(*visible, notifications.c.feed_seq.in_(seqs))
                            .order_by(order, notifications.c.id)).mappings().all()
    seen: set[int] = set()
    unique = []
    for row in rows:
        if row["feed_seq"] not in seen:
            seen.add(row["feed_seq"])
            unique.append(row)
    return unique


def _feed_scope(uow: UnitOfWork, actor: Actor) -> list[str] | None:
    """Whose notifications the actor reads; None: everyone's (officers and administrators)."""
    return registry.own_scope(uow, actor)


def _feed_item(row: Any) -> dict:
    return {
        "id": row["event_id"],
        "declaration_id": row["subject_id"] if row["subject_type"] == "declaration" else None,
        "subject_type": row["subject_type"],
        "subject_id": row["subject_id"],
        "code": row["code"],
        "message": row["message"],
        "at": row["at"],
    }


# --- webhook subscriptions -----------------------------------------------------------------------

def create_subscription(uow: UnitOfWork, actor: Actor, url: str, codes: list[str] | None = None,
                        description: str = "") -> dict:
    """Subscribe the caller's enterprise. The answer holds the signing secret: the only time it is
    shown, together with rotate_secret's answer."""
    enterprise_id = _require_enterprise(actor)
    url, codes = url.strip(), [c.strip() for c in (codes if codes is not None else ["*"])]
    model.validate_subscription(url, codes, get_settings().webhook_private_addresses).raise_if_any()
    with uow.transaction() as conn:
        mine = conn.execute(select(webhook_subscriptions).where(
            webhook_subscriptions.c.enterprise_id == enterprise_id,
            webhook_subscriptions.c.active.is_(True))).mappings().all()
        if any(s["url"] == url for s in mine):
            raise Conflict("An active subscription already sends to this URL; rotate its secret "
                           "or delete it first.", "duplicate_subscription", "url")
        if len(mine) >= MAX_SUBSCRIPTIONS_PER_ENTERPRISE:
            raise Conflict(f"An enterprise may keep at most {MAX_SUBSCRIPTIONS_PER_ENTERPRISE} "
                           "active subscriptions.", "too_many_subscriptions")
        subscription_id, secret = new_id(), new_secret("tw_whsec")
        row = {"id": subscription_id, "enterprise_id": enterprise_id, "url": url,
               "secret": vault.seal_text(secret, _secret_purpose(subscription_id)), "codes": sorted(set(codes)),
               "description": description.strip()[:200], "active": True, "created_at": utcnow(),
               "created_by": actor.user_id, "secret_rotated_at": None, "deactivated_at": None}
        conn.execute(insert(webhook_subscriptions).values(row))
        uow.audit(actor, "notifications.webhook_created", "webhook_subscription", row["id"], None,
                  _subscription_public(row))
        uow.emit("notifications.webhook_created", "webhook_subscription", row["id"],
                 {"url": url, "codes": row["codes"]}, owner_enterprise_id=enterprise_id)
        return {**_subscription_public(row), "secret": secret}


def _secret_purpose(subscription_id: str) -> str:
    """Webhook secrets are sealed (platform/vault.py): the platform must read them back to sign."""
    return vault.row_purpose("webhook_subscriptions", "secret", subscription_id)


def list_subscriptions(uow: UnitOfWork, actor: Actor, include_inactive: bool = False) -> list[dict]:
    enterprise_id = _require_enterprise(actor)
    with uow.read() as conn:
        query = select(webhook_subscriptions).where(webhook_subscriptions.c.enterprise_id == enterprise_id)
        if not include_inactive:
            query = query.where(webhook_subscriptions.c.active.is_(True))
        rows = conn.execute(query.order_by(webhook_subscriptions.c.created_at)).mappings().all()
        counts = _delivery_counts(uow, [r["id"] for r in rows])
        return [{**_subscription_public(r), "deliveries": counts.get(r["id"], {})} for r in rows]


def get_subscription(uow: UnitOfWork, actor: Actor, subscription_id: str) -> dict:
    with uow.read():
        return _subscription_public(_own_subscription(uow, actor, subscription_id))


def rotate_secret(uow: UnitOfWork, actor: Actor, subscription_id: str) -> dict:
    """A new signing secret, effective for every try from now on (also retries of earlier events);
    the old one stops working at once."""
    with uow.transaction() as conn:
        row = _own_subscription(uow, actor, subscription_id, for_update=True)
        if not row["active"]:
            raise Conflict("This subscription was deleted.", "subscription_inactive")
        secret, now = new_secret("tw_whsec"), utcnow()
        conn.execute(update(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
                     .values(secret=vault.seal_text(secret, _secret_purpose(subscription_id)), secret_rotated_at=now))
        uow.audit(actor, "notifications.webhook_secret_rotated", "webhook_subscription", subscription_id)
        uow.emit("notifications.webhook_secret_rotated", "webhook_subscription", subscription_id, {},
                 owner_enterprise_id=row["enterprise_id"])
        return {**_subscription_public({**row, "secret_rotated_at": now}), "secret": secret}


def delete_subscription(uow: UnitOfWork, actor: Actor, subscription_id: str) -> dict:
    """Stop sending. The subscription and its delivery log are kept (deactivated) for the record;
    deliveries still waiting for a try are given up."""
    with uow.transaction() as conn:
        row = _own_subscription(uow, actor, subscription_id, for_update=True)
        if not row["active"]:
            return _subscription_public(row)
        now = utcnow()
        conn.execute(update(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
                     .values(active=False, deactivated_at=now))
        conn.execute(update(webhook_deliveries).where(
            webhook_deliveries.c.subscription_id == subscription_id,
            webhook_deliveries.c.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value]),
        ).values(status=DeliveryStatus.DEAD.value, next_attempt_at=None,
                 last_error="The subscription was deleted."))
        after = {**row, "active": False, "deactivated_at": now}
        uow.audit(actor, "notifications.webhook_deleted", "webhook_subscription", subscription_id,
                  _subscription_public(row), _subscription_public(after))
        uow.emit("notifications.webhook_deleted", "webhook_subscription", subscription_id, {},
                 owner_enterprise_id=row["enterprise_id"])
        return _subscription_public(after)


# --- deliveries ------------------------------------------------------------------------------------

def list_deliveries(uow: UnitOfWork, actor: Actor, subscription_id: str, status: str | None = None,
                    limit: int = 50, offset: int = 0) -> dict:
    """The delivery log of one subscription, newest first, each with its tries."""
    if status is not None and status not in set(DeliveryStatus):
        raise ValidationFailed(f"Status is one of: {', '.join(DeliveryStatus)}.", "invalid_choice",
                               "status")
    limit = max(1, min(int(limit), 200))
    with uow.read() as conn:
        _own_subscription(uow, actor, subscription_id)
        query = select(webhook_deliveries).where(webhook_deliveries.c.subscription_id == subscription_id)
        if status:
            query = query.where(webhook_deliveries.c.status == status)
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(query.order_by(webhook_deliveries.c.created_at.desc(),
                                           webhook_deliveries.c.id.desc())
                            .limit(limit).offset(max(offset, 0))).mappings().all()
        attempts = _attempts_of(uow, [r["id"] for r in rows])
        items = [{**_delivery_public(r), "attempt_log": attempts.get(r["id"], [])} for r in rows]
        return {"items": items, "total": total, "limit": limit, "offset": offset}


def get_delivery(uow: UnitOfWork, actor: Actor, delivery_id: str) -> dict:
    with uow.read():
        row = _own_delivery(uow, actor, delivery_id)
        return {**_delivery_public(row), "attempt_log": _attempts_of(uow, [row["id"]]).get(row["id"], [])}


def redeliver(uow: UnitOfWork, actor: Actor, delivery_id: str) -> dict:
    """Try a dead (or an already delivered) delivery again, with a fresh round of retries."""
    with uow.transaction() as conn:
        row = _own_delivery(uow, actor, delivery_id, for_update=True)
        if row["status"] in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
            raise Conflict("This delivery is still being tried; wait for it to be delivered or dead.",
                           "delivery_in_progress")
        subscription = conn.execute(select(webhook_subscriptions).where(
            webhook_subscriptions.c.id == row["subscription_id"])).mappings().one()
        if not subscription["active"]:
            raise Conflict("The subscription was deleted; nothing can be delivered to it.",
                           "subscription_inactive")
        now = utcnow()
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
            status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now, delivered_at=None))
        _enqueue(uow, delivery_id, dedup_key=f"webhook:{delivery_id}:{_logged_attempts(uow, delivery_id)}")
        uow.audit(actor, "notifications.webhook_redelivery", "webhook_delivery", delivery_id,
                  {"status": row["status"]}, {"status": DeliveryStatus.PENDING.value})
        return _delivery_public({**row, "status": DeliveryStatus.PENDING.value, "attempts": 0,
                                 "next_attempt_at": now, "delivered_at": None})


# --- the delivery job (the worker's "webhooks" queue) --------------------------------------------

@handles(WEBHOOK_QUEUE)
def deliver(uow: UnitOfWork, payload: dict[str, Any]) -> None:
    """One try of one delivery. The POST happens outside any transaction (a slow receiver must not
    hold a database lock); its outcome is then recorded, and a failure schedules the next try by
    the retry schedule or, after the last, leaves the delivery dead for its owner to see and
    redeliver. The queue itself retries this job only when recording fails (database trouble)."""
    delivery_id = payload["delivery_id"]
    with uow.read() as conn:
        row = conn.execute(
            select(webhook_deliveries, webhook_subscriptions.c.url, webhook_subscriptions.c.secret,
                   webhook_subscriptions.c.active)
            .join(webhook_subscriptions, webhook_subscriptions.c.id == webhook_deliveries.c.subscription_id)
            .where(webhook_deliveries.c.id == delivery_id)).mappings().first()
    if row is None or row["status"] not in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        return   # delivered, dead or gone meanwhile: a stale job
    if not row["active"]:
        _give_up(uow, delivery_id, "The subscription was deleted.")
        return
    secret = vault.unseal_text(row["secret"], _secret_purpose(row["subscription_id"]))
    status_code, error, duration_ms = post_signed(row["url"], secret, row["body"])
    _record_attempt(uow, delivery_id, status_code, error, duration_ms)


def post_signed(url: str, secret: str, body: dict[str, Any]) -> tuple[int | None, str | None, int]:
    """POST the body, signed; returns (status code, error, duration in ms)."""
    refused = _private_destination(url)
    if refused:
        return None, refused, 0
    raw = model.encode_body(body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"TradeWindow-Webhooks/{__version__}",
        model.EVENT_ID_HEADER: str(body["id"]),
        model.SIGNATURE_HEADER: model.sign(secret, raw, int(time.time())),
    }
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as client:
            response = client.post(url, content=raw, headers=headers)
        status_code = response.status_code
        error = None if model.is_success(status_code) else f"The receiver answered HTTP {status_code}."
    except httpx.HTTPError as exc:
        status_code, error = None, f"{type(exc).__name__}: {exc}"[:2000]
    return status_code, error, int((time.perf_counter() - started) * 1000)


def _private_destination(url: str) -> str | None:
    """Why the URL may not be posted to, if its host resolves to this machine or its network: a
    subscriber must not reach the platform's own services through us. Checked just before each
    POST, as DNS answers change; a name rebound between this check and the connection remains a
    gap that only an egress proxy or firewall closes."""
    if get_settings().webhook_private_addresses:
        return None
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError) as exc:
        return f"The receiver's host {host!r} could not be resolved: {exc}"[:2000]
    private = sorted(a for a in addresses if not model.is_public_address(a))
    if private:
        return f"Refused: {host!r} resolves to a non-public address ({', '.join(private)})."
    return None


def _record_attempt(uow: UnitOfWork, delivery_id: str, status_code: int | None, error: str | None,
                    duration_ms: int) -> None:
    with uow.transaction() as conn:
        current = _delivery_row(uow, delivery_id, for_update=True)
        now = utcnow()
        conn.execute(insert(webhook_attempts).values(
            id=new_id(), delivery_id=delivery_id, at=now, status_code=status_code,
            duration_ms=duration_ms, error=error))
        attempts = current["attempts"] + 1
        changes: dict[str, Any] = {"attempts": attempts, "last_status_code": status_code,
                                   "last_error": error}
        if error is None:
            changes.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now, next_attempt_at=None)
        elif (delay := model.retry_delay(attempts, RETRY_SCHEDULE)) is None:
            changes.update(status=DeliveryStatus.DEAD.value, next_attempt_at=None)
            log.warning("webhook delivery %s is dead after %d tries: %s", delivery_id, attempts, error)
        else:
            changes.update(status=DeliveryStatus.FAILED.value, next_attempt_at=now + delay)
            _enqueue(uow, delivery_id, run_after=now + delay,
                     dedup_key=f"webhook:{delivery_id}:{_logged_attempts(uow, delivery_id)}")
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
                     .values(**changes))


def _give_up(uow: UnitOfWork, delivery_id: str, reason: str) -> None:
    with uow.transaction() as conn:
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
            status=DeliveryStatus.DEAD.value, next_attempt_at=None, last_error=reason))


# --- helpers -----------------------------------------------------------------------------------------

def _require_enterprise(actor: Actor) -> str:
    require(actor.role in ENTERPRISE_ROLES and actor.enterprise_id is not None, "role_not_allowed",
            "Webhooks belong to an enterprise; log in as one of its users.")
    return actor.enterprise_id  # type: ignore[return-value]


def _own_subscription(uow: UnitOfWork, actor: Actor, subscription_id: str,
                      for_update: bool = False) -> RowMapping:
    enterprise_id = _require_enterprise(actor)
    query = select(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
    query = uow.locking(query, for_update)
    row = uow.conn.execute(query).mappings().first()
    # Another enterprise's subscription does not exist, as far as the caller can tell.
    if row is None or row["enterprise_id"] != enterprise_id:
        raise not_found("webhook subscription", subscription_id)
    return row


def _own_delivery(uow: UnitOfWork, actor: Actor, delivery_id: str, for_update: bool = False) -> RowMapping:
    enterprise_id = _require_enterprise(actor)
    row = _delivery_row(uow, delivery_id, for_update)
    if row is None or row["enterprise_id"] != enterprise_id:
        raise not_found("webhook delivery", delivery_id)
    return row


def _delivery_row(uow: UnitOfWork, delivery_id: str, for_update: bool = False) -> RowMapping:
    query = select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
    query = uow.locking(query, for_update)
    return uow.conn.execute(query).mappings().first()


def _logged_attempts(uow: UnitOfWork, delivery_id: str) -> int:
    return uow.conn.execute(select(func.count()).select_from(webhook_attempts)
                            .where(webhook_attempts.c.delivery_id == delivery_id)).scalar_one()


def _delivery_counts(uow: UnitOfWork, subscription_ids: list[str]) -> dict[str, dict[str, int]]:
    if not subscription_ids:
        return {}
    rows = uow.conn.execute(
        select(webhook_deliveries.c.subscription_id, webhook_deliveries.c.status, func.count())
        .where(webhook_deliveries.c.subscription_id.in_(subscription_ids))
        .group_by(webhook_deliveries.c.subscription_id, webhook_deliveries.c.status)).all()
    counts: dict[str, dict[str, int]] = {}
    for subscription_id, status, count in rows:
        counts.setdefault(subscription_id, {})[status] = count
    return counts


def _attempts_of(uow: UnitOfWork, delivery_ids: list[str]) -> dict[str, list[dict]]:
    if not delivery_ids:
        return {}
    rows = uow.conn.execute(select(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(delivery_ids))
                            .order_by(webhook_attempts.c.at, webhook_attempts.c.id)).mappings()
    found: dict[str, list[dict]] = {}
    for r in rows:
        found.setdefault(r["delivery_id"], []).append(
            {"at": r["at"], "status_code": r["status_code"], "duration_ms": r["duration_ms"],
             "error": r["error"]})
    return found


def _subscription_public(row: Any) -> dict:
    """Everything but the secret, which is shown once (create, rotate) and never listed."""
    return {"id": row["id"], "url": row["url"], "codes": list(row["codes"]),
            "description": row["description"], "active": row["active"],
            "created_at": row["created_at"], "created_by": row["created_by"],
            "secret_rotated_at": row["secret_rotated_at"], "deactivated_at": row["deactivated_at"]}


def _delivery_public(row: Any) -> dict:
    return {"id": row["id"], "subscription_id": row["subscription_id"], "event_id": row["event_id"],
            "code": row["code"], "status": row["status"], "attempts": row["attempts"],
            "last_status_code": row["last_status_code"], "last_error": row["last_error"],
            "next_attempt_at": row["next_attempt_at"], "delivered_at": row["delivered_at"],
            "created_at": row["created_at"], "body": row["body"]}
