"""Cross-border e-commerce pages: parcel search and detail (identity numbers masked except for
customs), a buyer's year for customs, and a batch upload with its progress and summary."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile

from tradewindow.ecommerce import service
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork, utcnow
from tradewindow.platform.errors import DomainError, require
from tradewindow.platform.web import add_dashboard_cards, add_nav, get_uow, page_actor, render

router = APIRouter(include_in_schema=False)
Uow = Annotated[UnitOfWork, Depends(get_uow)]
PageActor = Annotated[Actor, Depends(page_actor)]

add_nav("E-commerce parcels", "/cbec/parcels", set(service.READERS), order=40)
add_nav("Parcel batch", "/cbec/batches/new", set(service.BATCH_SENDERS), order=41)
add_nav("E-commerce live", "/cbec/live", set(service.READERS), order=42)


def _dashboard(uow: UnitOfWork, actor: Actor) -> list[dict]:
    """Customs: parcels to inspect and refused; parties: their parcels released and refused."""
    if not actor.is_(*service.READERS) or actor.role is Role.ADMIN:
        return []
    wanted = [("inspect", "E-commerce parcels to inspect"), ("reject", "E-commerce parcels refused")] \
        if actor.is_(Role.CUSTOMS, Role.ZONE) else \
        [("release", "E-commerce parcels released"), ("reject", "E-commerce parcels refused")]
    return [{"label": label, "href": f"/cbec/parcels?decision={decision}",
             "figure": service.count_parcels(uow, actor, decision)} for decision, label in wanted]


add_dashboard_cards(_dashboard, order=40)


@router.get("/cbec/parcels")
def parcel_list(request: Request, uow: Uow, actor: PageActor, decision: str = "", buyer: str = "",
                q: str = "", page: int = 1) -> Any:
    page = max(page, 1)
    result = service.list_parcels(uow, actor, decision or None, buyer or None, limit=50, offset=(page - 1) * 50,
                                  q=q[:64] or None)
    return render(request, "ecommerce/parcels.html", actor, result=result, decision=decision, buyer=buyer, q=q,
                  page=page, this_year=utcnow().year)


@router.get("/cbec/buyers")
def buyer_lookup(actor: PageActor, buyer: str = "", year: int = 0) -> Any:
    """The buyer's-year form (customs): to the year page of the buyer named."""
    require(actor.is_(Role.CUSTOMS), "role_not_allowed", "A buyer's year is for customs officers.")
    buyer = buyer.strip().upper()[:32]
    if not buyer:
        return RedirectResponse("/cbec/parcels", status_code=303)
    return RedirectResponse(f"/cbec/buyers/{quote(buyer)}/year/{year or utcnow().year}", status_code=303)


@router.get("/cbec/live")
def live_dashboard(request: Request, uow: Uow, actor: PageActor) -> Any:
    """Parcels per second, decisions and reasons over the last minutes, refreshed by htmx."""
    return render(request, "ecommerce/live.html", actor, live=service.live_figures(uow, actor))


@router.get("/cbec/live/figures")
def live_figures(request: Request, uow: Uow, actor: PageActor) -> Any:
    """The dashboard's figures as a fragment (polled every few seconds)."""
    return render(request, "ecommerce/_live.html", actor, live=service.live_figures(uow, actor))


@router.get("/cbec/parcels/{order_no}")
def parcel_detail(order_no: str, request: Request, uow: Uow, actor: PageActor) -> Any:
    parcel = service.get_parcel(uow, actor, order_no)
    return render(request, "ecommerce/parcel.html", actor, parcel=parcel)


@router.get("/cbec/buyers/{buyer_id_number}/year/{year}")
def buyer_year(buyer_id_number: str, year: int, request: Request, uow: Uow, actor: PageActor) -> Any:
    return render(request, "ecommerce/buyer_year.html", actor,
                  year=service.buyer_year(uow, actor, buyer_id_number, year))


@router.get("/cbec/batches/new")
def batch_form(request: Request, actor: PageActor) -> Any:
    require(actor.is_(*service.BATCH_SENDERS), "role_not_allowed",
            "Batches are sent by platforms, payment and logistics companies, or an administrator.")
    return render(request, "ecommerce/batch.html", actor, summary=None, problems=[])


@router.post("/cbec/batches")
async def batch_upload(request: Request, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    upload = form.get("file")
    fragment = request.headers.get("hx-request") == "true"
    template = "ecommerce/_batch_result.html" if fragment else "ecommerce/batch.html"
    if not isinstance(upload, UploadFile):
        return render(request, template, actor, summary=None, status_code=422, problems=[
            {"code": "required", "message": "Choose an NDJSON file to upload."}])
    lines = (await upload.read()).decode("utf-8-sig", errors="replace").splitlines()
    try:
        summary = service.import_batch(uow, actor, service.ndjson_objects(lines))
    except DomainError as refused:
        return render(request, template, actor, summary=None, problems=refused.problems,
                      status_code=refused.status)
    return render(request, template, actor, summary=summary.as_dict(refused_limit=50), problems=[],
                  filename=upload.filename)
