"""Notification pages: the caller's feed (newest first, "load more" with htmx) and the webhook
subscriptions of the caller's enterprise with their delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from tradewindow.notifications import service
from tradewindow.notifications.model import NOTIFICATION_CODES, DeliveryStatus
from tradewindow.platform.auth import ALL_ROLES, ENTERPRISE_ROLES, Actor
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import DomainError
from tradewindow.platform.web import add_nav, get_uow, page_actor, render

router = APIRouter(include_in_schema=False)
Uow = Annotated[UnitOfWork, Depends(get_uow)]
PageActor = Annotated[Actor, Depends(page_actor)]

add_nav("Notifications", "/notifications", ALL_ROLES, order=80)
add_nav("Webhooks", "/webhooks", ENTERPRISE_ROLES, order=94)

PAGE_SIZE = 50


@router.get("/notifications")
def notification_list(request: Request, uow: Uow, actor: PageActor, before: str = "") -> Any:
    feed = service.recent_notifications(uow, actor, before or None, PAGE_SIZE)
    template = "notifications/_rows.html" if request.headers.get("hx-request") else \
        "notifications/feed.html"
    return render(request, template, actor, feed=feed)


# --- webhooks ------------------------------------------------------------------------------------

def _webhooks_page(request: Request, uow: Uow, actor: Actor, status_code: int = 200,
                   new_secret: dict | None = None, problems: list | None = None,
                   values: dict | None = None) -> Any:
    return render(request, "notifications/webhooks.html", actor, status_code=status_code,
                  subscriptions=service.list_subscriptions(uow, actor, include_inactive=True),
                  new_secret=new_secret, problems=problems or [],
                  values=values or {"url": "", "codes": "*", "description": ""},
                  known_codes=sorted(NOTIFICATION_CODES))


@router.get("/webhooks")
def webhook_list(request: Request, uow: Uow, actor: PageActor) -> Any:
    return _webhooks_page(request, uow, actor)


@router.post("/webhooks")
async def webhook_create(request: Request, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("url", "codes", "description")}
    codes = [c for c in values["codes"].replace(",", " ").split() if c]
    try:
        created = service.create_subscription(uow, actor, values["url"], codes, values["description"])
    except DomainError as exc:
        return _webhooks_page(request, uow, actor, exc.status, problems=exc.problems, values=values)
    # The secret is shown on this one response and never again.
    return _webhooks_page(request, uow, actor, 201, new_secret=created)


@router.post("/webhooks/{subscription_id}/rotate")
def webhook_rotate(request: Request, subscription_id: str, uow: Uow, actor: PageActor) -> Any:
    rotated = service.rotate_secret(uow, actor, subscription_id)
    return _webhooks_page(request, uow, actor, new_secret=rotated)


@router.post("/webhooks/{subscription_id}/delete")
def webhook_delete(subscription_id: str, uow: Uow, actor: PageActor) -> Any:
    service.delete_subscription(uow, actor, subscription_id)
    return RedirectResponse("/webhooks", status_code=303)


@router.get("/webhooks/{subscription_id}")
def webhook_detail(request: Request, subscription_id: str, uow: Uow, actor: PageActor,
                   status: str = "", page: int = 1) -> Any:
    page = max(page, 1)
    subscription = service.get_subscription(uow, actor, subscription_id)
    deliveries = service.list_deliveries(uow, actor, subscription_id, status or None,
                                         limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(request, "notifications/webhook_detail.html", actor, subscription=subscription,
                  deliveries=deliveries, status=status, page=page,
                  statuses=[s.value for s in DeliveryStatus])


@router.post("/webhooks/deliveries/{delivery_id}/redeliver")
def delivery_redeliver(delivery_id: str, uow: Uow, actor: PageActor) -> Any:
    delivery = service.redeliver(uow, actor, delivery_id)
    return RedirectResponse(f"/webhooks/{delivery['subscription_id']}", status_code=303)
