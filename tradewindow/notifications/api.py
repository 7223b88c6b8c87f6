"""Notifications API: the pull feed, webhook subscriptions and their delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from tradewindow.notifications import service
from tradewindow.platform.auth import ALL_ROLES, ENTERPRISE_ROLES, Actor
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.web import Schema, allow, get_uow

router = APIRouter(prefix="/api/v1", tags=["notifications"])

Uow = Annotated[UnitOfWork, Depends(get_uow)]
Anyone = Annotated[Actor, allow(*ALL_ROLES)]
Enterprise = Annotated[Actor, allow(*ENTERPRISE_ROLES)]


@router.get("/notifications")
def feed(uow: Uow, actor: Anyone,
         after: str = Query("0", max_length=20, description="The `next` of the previous answer; 0 to start."),
         limit: int = Query(100, ge=1, le=service.MAX_FEED_PAGE)) -> dict:
    """The caller's notifications after the cursor, in commit order: a trader's own, a broker's own
    and its principals', everyone's for officers. Keep `next` and ask again with `after=next`;
    no notification is ever skipped or repeated, also when its transaction committed late.
    Roles: any."""
    return service.notifications_after(uow, actor, after, limit)


class SubscriptionBody(Schema):
    url: str = Field(max_length=2000, description="Where to POST; http or https.")
    codes: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=50,
                             description="Codes to send: exact, or a prefix ending in '*'.")
    description: str = Field(default="", max_length=200)


@router.get("/webhooks")
def list_webhooks(uow: Uow, actor: Enterprise, include_inactive: bool = False) -> dict:
    """The caller's enterprise's webhook subscriptions (never their secrets). Roles: enterprise
    roles."""
    return {"items": service.list_subscriptions(uow, actor, include_inactive)}


@router.post("/webhooks", status_code=201)
def create_webhook(body: SubscriptionBody, uow: Uow, actor: Enterprise) -> dict:
    """Subscribe. The answer carries `secret`, shown this once: every delivery is signed with it
    (header `X-TradeWindow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`).
    Roles: enterprise roles."""
    return service.create_subscription(uow, actor, body.url, body.codes, body.description)


@router.get("/webhooks/{subscription_id}")
def get_webhook(subscription_id: str, uow: Uow, actor: Enterprise) -> dict:
    """One subscription of the caller's enterprise. Roles: enterprise roles."""
    return service.get_subscription(uow, actor, subscription_id)


@router.post("/webhooks/{subscription_id}/rotate-secret")
def rotate_webhook_secret(subscription_id: str, uow: Uow, actor: Enterprise) -> dict:
    """A new signing secret, shown this once; the old one stops at once. Roles: enterprise roles."""
    return service.rotate_secret(uow, actor, subscription_id)


@router.delete("/webhooks/{subscription_id}")
def delete_webhook(subscription_id: str, uow: Uow, actor: Enterprise) -> dict:
    """Stop sending; the delivery log is kept. Roles: enterprise roles."""
    return service.delete_subscription(uow, actor, subscription_id)


@router.get("/webhooks/{subscription_id}/deliveries")
def list_webhook_deliveries(subscription_id: str, uow: Uow, actor: Enterprise,
                            status: str | None = Query(None, max_length=10),
                            limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=1_000_000)) -> dict:
    """The delivery log, newest first, with every try (status code, duration, error); filter by
    status: pending, delivered, failed (a retry is scheduled) or dead. Roles: enterprise roles."""
    return service.list_deliveries(uow, actor, subscription_id, status, limit, offset)


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", status_code=202)
def redeliver(delivery_id: str, uow: Uow, actor: Enterprise) -> dict:
    """Send a dead (or delivered) delivery again, with a fresh round of retries; the worker sends
    it. Roles: enterprise roles."""
    return service.redeliver(uow, actor, delivery_id)
