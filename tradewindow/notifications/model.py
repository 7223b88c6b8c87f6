"""The notification domain, pure: which codes exist and what they say, how an outbox event becomes
a notification, which subscriptions want it, how a webhook body is signed and checked, and when a
failed delivery is tried again.

The payload convention that makes an event a notification is described in the package docstring
(`tradewindow/notifications/__init__.py`)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from tradewindow.platform.errors import Problems

# --- codes ---------------------------------------------------------------------------------------
# Code -> default message template. A template names fields of the event's payload (or of its
# "notification" object) in braces; a field the event does not carry is left as written. An event
# may always send its own message instead. Codes are stable identifiers integrators branch on:
# add new ones, never rename.

NOTIFICATION_CODES: dict[str, str] = {
    # declarations (DESIGN.md §4.1): one code per transition
    "declaration.lodged": "Declaration {number} was lodged.",
    "declaration.accepted": "Declaration {number} was accepted.",
    "declaration.rejected": "Declaration {number} was rejected.",
    "declaration.lane_assigned": "Declaration {number} was routed to the {lane} lane.",
    "declaration.documents_requested": "Documents were requested for declaration {number}.",
    "declaration.inspection_scheduled": "Declaration {number} was selected for physical inspection.",
    "declaration.inspection_completed": "The inspection of declaration {number} is complete.",
    "declaration.agency_hold": "Declaration {number} is held for an agency decision.",
    "declaration.agency_task_decided": "An agency decided a task on declaration {number}.",
    "declaration.taxes_due": "Duties and taxes are due on declaration {number}.",
    "declaration.paid": "Payment of declaration {number} was recorded.",
    "declaration.released": "Declaration {number} was released.",
    "declaration.amended": "Declaration {number} was amended.",
    "declaration.cancelled": "Declaration {number} was cancelled.",
    "declaration.corrected": "Declaration {number} was corrected after release.",
    "declaration.exited": "The goods of declaration {number} have left the country.",
    "declaration.complete_filing_overdue": "The complete filing of declaration {number} is overdue.",
    # bonded account books
    "bonded.release_planned": "A release to the domestic market was planned.",
    "bonded.shortage_reported": "A shortage was reported in your account book.",
    # cross-border e-commerce
    "ecommerce.inventory_released": "Inventory list {number} was released.",
    "ecommerce.inventory_inspection": "Inventory list {number} was selected for inspection.",
    "ecommerce.inventory_rejected": "Inventory list {number} was rejected.",
    # logistics
    "logistics.alert_raised": "A monitoring alert was raised on consignment {number}.",
    # titles: one code per action on a bill of lading (railway or sea bill), and the signing keys
    "titles.bill_issued": "Bill of lading {number} was issued.",
    "titles.bill_endorsed": "Bill of lading {number} was endorsed to a new holder.",
    "titles.bill_pledged": "Bill of lading {number} was pledged to a bank.",
    "titles.pledge_released": "The pledge on bill of lading {number} was released.",
    "titles.bill_taken_over": "The pledgee took over bill of lading {number}.",
    "titles.bill_surrendered": "Bill of lading {number} was surrendered against delivery.",
    "titles.bill_voided": "Bill of lading {number} was voided by its issuer.",
    "titles.key_registered": "A new signing key {fingerprint} was registered for your enterprise.",
    "titles.heads_published": "The chain heads of {titles} bills of lading were published (checkpoint {hash}).",
    # the platform itself
    "webhook.test": "This is a test notification.",
}

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
FILTER_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*|\*)?)$")


class _LeaveMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render_message(code: str, fields: Mapping[str, Any], message: str | None = None) -> str:
    """The event's own message, else the code's template filled from the event's fields."""
    if message:
        return message.strip()
    template = NOTIFICATION_CODES.get(code)
    if template is None:
        return code
    try:
        return string.Formatter().vformat(template, (), _LeaveMissing(
            {k: v for k, v in fields.items() if isinstance(v, str | int | float)}))
    except (ValueError, IndexError):   # a malformed template must not stop the relay
        return template


# --- from event to notification -----------------------------------------------------------------

@dataclass(frozen=True)
class Notice:
    """What an event tells whom."""

    code: str
    message: str
    subject_type: str
    subject_id: str
    audiences: tuple[str | None, ...]   # enterprise ids; (None,) = nobody's but officers'
    data: dict[str, Any] = field(default_factory=dict)


def notice_from_event(aggregate_type: str, aggregate_id: str, payload: Mapping[str, Any],
                      owner_enterprise_id: str | None) -> Notice | None:
    """The notification an event carries, or None when its payload has no "notification".
    Lenient on purpose: a malformed notification must not hold up every later event in the relay,
    so missing parts fall back to the event's own (aggregate, code as message)."""
    spec = payload.get("notification")
    if not isinstance(spec, Mapping):
        return None
    code = str(spec.get("code") or "").strip()
    if not code:
        return None
    data = {k: v for k, v in payload.items() if k != "notification"}
    audiences: list[str | None] = []
    for enterprise_id in [owner_enterprise_id, *_as_list(spec.get("audiences"))]:
        if enterprise_id and enterprise_id not in audiences:
            audiences.append(str(enterprise_id))
    return Notice(
        code=code[:100],
        message=render_message(code, {**data, **spec}, spec.get("message"))[:1000],
        subject_type=str(spec.get("subject_type") or aggregate_type)[:50],
        subject_id=str(spec.get("subject_id") or aggregate_id)[:64],
        audiences=tuple(audiences) or (None,),
        data=data,
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, Iterable) else []


# --- subscriptions ------------------------------------------------------------------------------

def matches(filters: Sequence[str], code: str) -> bool:
    """A subscription's filter: exact codes, or prefixes ending in '*' ("declaration.*", "*")."""
    for pattern in filters:
        if pattern.endswith("*"):
            if code.startswith(pattern[:-1]):
                return True
        elif code == pattern:
            return True
    return False


def is_public_address(address: str) -> bool:
    """True for an address on the internet at large: not loopback, private, link-local (cloud
    metadata services live there), multicast or reserved."""
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_global
    except ValueError:
        return False


def names_own_network(hostname: str) -> bool:
    """A host name that is plainly this machine or its network, without asking DNS (which the
    delivery does, just before each POST)."""
    name = hostname.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return not is_public_address(name)


def validate_subscription(url: str, codes: Sequence[str], allow_private: bool = False) -> Problems:
    problems = Problems()
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.add("url", "invalid_url", "The webhook URL must be an absolute http or https URL.")
    elif parts.username or parts.password:
        problems.add("url", "invalid_url", "Put no credentials in the URL; verify our signature instead.")
    elif not allow_private and names_own_network(parts.hostname):
        problems.add("url", "private_address", "Webhooks go to public addresses only, not to loopback, "
                     "private or link-local ones.")
    if len(url) > 2000:
        problems.add("url", "too_long", "The webhook URL is longer than 2000 characters.")
    if not codes:
        problems.add("codes", "required", "Name at least one code, or '*' for every notification.")
    for index, code in enumerate(codes):
        if not FILTER_PATTERN.match(code):
            problems.add(f"codes[{index}]", "invalid_code_filter",
                         "A code filter is a code such as declaration.released, or a prefix "
                         "ending in '*' such as declaration.*; '*' alone takes everything.")
    return problems


# --- the webhook body and its signature ----------------------------------------------------------
#
#   POST <your url>
#   Content-Type: application/json
#   X-TradeWindow-Event-Id: <the notification id; the same on every retry: deduplicate on it>
#   X-TradeWindow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>
#
# A receiver recomputes the HMAC over the raw bytes it received (before parsing the JSON), compares
# in constant time, and refuses timestamps outside its replay window. `verify_signature` below uses
# only the standard library so a receiver can copy it as is.

SIGNATURE_HEADER = "X-TradeWindow-Signature"
EVENT_ID_HEADER = "X-TradeWindow-Event-Id"
REPLAY_TOLERANCE_SECONDS = 300


def webhook_body(event_id: str, code: str, message: str, subject_type: str, subject_id: str,
                 at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "code": code, "message": message, "subject_type": subject_type,
            "subject_id": subject_id, "at": at.isoformat().replace("+00:00", "Z"), "data": dict(data)}


def encode_body(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the X-TradeWindow-Signature header."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, body: bytes, now: float,
                     tolerance: int = REPLAY_TOLERANCE_SECONDS) -> bool:
    """True when `header` (X-TradeWindow-Signature) signs `body` (the raw request bytes) with
    `secret` and its timestamp is within `tolerance` seconds of `now` (Unix seconds, time.time()).
    An old, replayed request, a changed body and a wrong secret are all refused."""
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures or abs(now - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


# --- deliveries ------------------------------------------------------------------------------------

class DeliveryStatus(StrEnum):
    PENDING = "pending"        # queued, not tried yet (or redelivery asked for)
    DELIVERED = "delivered"    # the receiver answered 2xx
    FAILED = "failed"          # the last try failed; another is scheduled (next_attempt_at)
    DEAD = "dead"              # every try failed; waits for the owner to ask for a redelivery


# Wait after the n-th failed try (n = 1, 2, ...): the last entry decides how many tries there are
# (one more than the schedule is long): about a day of retries, so a receiver down for a night's
# maintenance still gets everything.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
    timedelta(hours=2), timedelta(hours=6), timedelta(hours=12),
)


def max_attempts(schedule: Sequence[timedelta] = RETRY_SCHEDULE) -> int:
    return len(schedule) + 1


def retry_delay(failed_attempts: int, schedule: Sequence[timedelta] = RETRY_SCHEDULE) -> timedelta | None:
    """How long to wait after `failed_attempts` failures in a row; None: give up (dead)."""
    if failed_attempts < 1 or failed_attempts > len(schedule):
        return None
    return schedule[failed_attempts - 1]


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300
