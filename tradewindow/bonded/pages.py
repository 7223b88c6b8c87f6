"""Bonded pages: the account books, a book with its balances, lots and vehicles (VIN search), the
movement history of a lot or vehicle, the forms for each move, the release-to-domestic flow that
shows the duty and taxes before the dealer confirms, and the reconciliation report with its CSV."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, RedirectResponse

from tradewindow.bonded import service
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork, business_today
from tradewindow.platform.errors import DomainError
from tradewindow.platform.web import add_dashboard_cards, add_nav, get_uow, page_actor, render

router = APIRouter(include_in_schema=False)
Uow = Annotated[UnitOfWork, Depends(get_uow)]
PageActor = Annotated[Actor, Depends(page_actor)]
READERS = {Role.TRADER, Role.BROKER, Role.CUSTOMS, Role.ZONE, Role.ADMIN}

add_nav("Bonded books", "/bonded", READERS, order=35)


def _dashboard(uow: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    if actor.role not in READERS:
        return []
    figures = service.dashboard_figures(uow, actor)
    return [{"label": "Bonded account books", "figure": figures["books"], "href": "/bonded"},
            {"label": "Bonded moves waiting for their declaration", "figure": figures["pending"], "href": "/bonded"}]


add_dashboard_cards(_dashboard, order=20)

# Form action -> service function; lines come from the `serials` (one per line) or the item/lot
# and quantity fields.
ACTIONS = {"reexport": service.reexport, "temporary": service.take_out_temporarily, "destroy": service.destroy}


@router.get("/bonded")
def book_list(request: Request, uow: Uow, actor: PageActor) -> Any:
    return render(request, "bonded/list.html", actor, books=service.list_books(uow, actor), problems=[])


@router.post("/bonded")
async def book_open(request: Request, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    raw = {k: str(form[k]).strip() for k in ("kind", "name", "enterprise_uscc") if str(form.get(k, "")).strip()}
    try:
        book = service.open_book(uow, actor, raw)
    except DomainError as exc:
        return render(request, "bonded/list.html", actor, status_code=exc.status,
                      books=service.list_books(uow, actor), problems=exc.problems)
    return RedirectResponse(f"/bonded/{book['id']}", status_code=303)


@router.get("/bonded/{book_id}")
def book_detail(request: Request, book_id: str, uow: Uow, actor: PageActor, q: str = "", done: str = "") -> Any:
    return _detail(request, uow, actor, book_id, q=q, done=done)


def _detail(request: Request, uow: UnitOfWork, actor: Actor, book_id: str, status_code: int = 200,
            **context: Any) -> Any:
    context.setdefault("q", "")
    return render(request, "bonded/detail.html", actor, status_code=status_code,
                  book=service.get_book(uow, actor, book_id), units=service.list_units(uow, actor, book_id,
                                                                                        context["q"]),
                  temporarily_out=service.temporarily_out(uow, actor, book_id),
                  incoming=service.incoming_transfers(uow, actor, book_id),
                  boms=service.list_boms(uow, actor, book_id),
                  orders=service.list_processing_orders(uow, actor, book_id),
                  may_keep=actor.is_(*service.KEEPERS), may_supervise=actor.is_(*service.SUPERVISORS),
                  **{"problems": [], "quote": None, "values": {}, **context})


@router.get("/bonded/{book_id}/history")
def move_history(request: Request, book_id: str, uow: Uow, actor: PageActor, lot_id: str = "",
                 serial: str = "") -> Any:
    return render(request, "bonded/history.html", actor, book=service.get_book(uow, actor, book_id),
                  moves=service.history(uow, actor, book_id, lot_id or None, serial or None),
                  lot_id=lot_id, serial=serial)


def _lines(form: Any) -> list[dict]:
    serials = [s for s in str(form.get("serials", "")).replace(",", " ").split() if s]
    lines: list[dict] = [{"serial": s} for s in serials]
    if str(form.get("quantity", "")).strip():
        key = "lot_id" if str(form.get("lot_id", "")).strip() else "item_id"
        lines.append({key: str(form.get(key, "")).strip(), "quantity": str(form["quantity"]).strip()})
    return lines


@router.post("/bonded/{book_id}/admit")
async def admit(request: Request, book_id: str, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    serials = [s for s in str(form.get("serials", "")).replace(",", " ").split() if s]
    raw: dict[str, Any] = {"declaration": str(form.get("declaration", "")).strip() or None,
                           "location": str(form.get("location", "")).strip() or None}
    if serials:
        raw["serials"] = {str(form.get("line_number", "1")).strip() or "1": serials}
    try:
        service.admit_entry(uow, actor, book_id, {k: v for k, v in raw.items() if v is not None})
    except DomainError as exc:
        return _detail(request, uow, actor, book_id, status_code=exc.status, problems=exc.problems)
    return RedirectResponse(f"/bonded/{book_id}?done=admit", status_code=303)


@router.post("/bonded/{book_id}/release")
async def release(request: Request, book_id: str, uow: Uow, actor: PageActor) -> Any:
    """First the quote (taxes at today's rates) with a confirm button; the confirmed form lodges."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("serials", "item_id", "lot_id", "quantity",
                                                        "client_reference", "licence_numbers")}
    raw: dict[str, Any] = {"lines": _lines(form)}
    if values["licence_numbers"]:
        raw["licence_numbers"] = values["licence_numbers"].replace(",", " ").split()
    try:
        if form.get("confirm") != "yes":
            quote = service.quote_release(uow, actor, book_id, raw)
            return _detail(request, uow, actor, book_id, quote=quote, values=values)
        requested = service.release_to_domestic(uow, actor, book_id, {**raw, "client_reference":
                                                                      values["client_reference"] or None})
    except DomainError as exc:
        return _detail(request, uow, actor, book_id, status_code=exc.status, problems=exc.problems, values=values)
    return RedirectResponse(f"/declarations/{requested.declaration['id']}", status_code=303) \
        if requested.declaration else RedirectResponse(f"/bonded/{book_id}", status_code=303)


@router.post("/bonded/{book_id}/transfer")
async def transfer(request: Request, book_id: str, uow: Uow, actor: PageActor) -> Any:
    """Transfer-out to a book in another zone; it waits for the destination's approval."""
    form = await request.form()
    raw: dict[str, Any] = {k: str(form.get(k, "")).strip() for k in ("client_reference", "destination_book_id",
                                                                      "reason")}
    raw = {k: v for k, v in raw.items() if v}
    try:
        service.request_transfer(uow, actor, book_id, {**raw, "lines": _lines(form)})
    except DomainError as exc:
        return _detail(request, uow, actor, book_id, status_code=exc.status, problems=exc.problems)
    return RedirectResponse(f"/bonded/{book_id}?done=transfer", status_code=303)


@router.post("/bonded/{book_id}/process")
async def process(request: Request, book_id: str, uow: Uow, actor: PageActor) -> Any:
    """A processing order: the finished item and quantity, optionally what one material really used."""
    form = await request.form()
    raw: dict[str, Any] = {k: str(form.get(k, "")).strip() for k in ("client_reference", "finished_item_id",
                                                                      "quantity")}
    if str(form.get("material_item_id", "")).strip() and str(form.get("material_used", "")).strip():
        raw["materials"] = [{"item_id": str(form["material_item_id"]).strip(),
                             "quantity": str(form["material_used"]).strip()}]
    try:
        service.process(uow, actor, book_id, {k: v for k, v in raw.items() if v})
    except DomainError as exc:
        return _detail(request, uow, actor, book_id, status_code=exc.status, problems=exc.problems)
    return RedirectResponse(f"/bonded/{book_id}?done=process", status_code=303)


@router.post("/bonded/{book_id}/bom")
async def record_bom(request: Request, book_id: str, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    raw: dict[str, Any] = {k: str(form.get(k, "")).strip() for k in (
        "finished_item_id", "material_item_id", "net_consumption", "loss_rate", "valid_from", "valid_to")}
    raw = {k: v for k, v in raw.items() if v}
    finished = {k: str(form.get(f"finished_{k}", "")).strip() for k in ("tariff_code", "description", "unit")}
    if "finished_item_id" not in raw and any(finished.values()):
        raw["finished"] = finished
    try:
        service.record_bom(uow, actor, book_id, raw)
    except DomainError as exc:
        return _detail(request, uow, actor, book_id, status_code=exc.status, problems=exc.problems)
    return RedirectResponse(f"/bonded/{book_id}?done=bom", status_code=303)


@router.post("/bonded/transfers/{request_id}/{decision}")
async def decide_transfer(request: Request, request_id: str, decision: str, uow: Uow, actor: PageActor) -> Any:
    """The destination approves (or refuses) an incoming transfer; the sender may withdraw it."""
    form = await request.form()
    book_id = str(form.get("book_id", "")).strip()
    try:
        if decision == "approve":
            service.approve_transfer(uow, actor, request_id,
                                     {"location": str(form.get("location") or "bonded_storage")})
        elif decision == "cancel":
            service.cancel_transfer(uow, actor, request_id, str(form.get("reason", "")).strip())
        else:
            return _detail(request, uow, actor, book_id, status_code=404)
    except DomainError as exc:
        return _detail(request, uow, actor, book_id, status_code=exc.status, problems=exc.problems)
    return RedirectResponse(f"/bonded/{book_id}?done=transfer-{decision}", status_code=303)


@router.post("/bonded/{book_id}/{action}")
async def act(request: Request, book_id: str, action: str, uow: Uow, actor: PageActor) -> Any:
    if action not in ACTIONS:
        return _detail(request, uow, actor, book_id, status_code=404)
    form = await request.form()
    raw = {k: str(form.get(k, "")).strip() for k in ("client_reference", "reason", "due_day",
                                                       "country_of_destination", "transport_mode")}
    raw = {k: v for k, v in raw.items() if v}
    if action != "reexport":
        raw.pop("country_of_destination", None)
        raw.pop("transport_mode", None)
    try:
        ACTIONS[action](uow, actor, book_id, {**raw, "lines": _lines(form)})
    except DomainError as exc:
        return _detail(request, uow, actor, book_id, status_code=exc.status, problems=exc.problems)
    return RedirectResponse(f"/bonded/{book_id}?done={action}", status_code=303)


@router.post("/bonded/requests/{request_id}/return")
async def bring_back(request: Request, request_id: str, uow: Uow, actor: PageActor) -> Any:
    returned = service.return_temporarily_out(uow, actor, request_id)
    return RedirectResponse(f"/bonded/{returned['book_id']}?done=return", status_code=303)


@router.get("/bonded/{book_id}/reconciliation")
def reconciliation(request: Request, book_id: str, uow: Uow, actor: PageActor, start: date | None = None,
                   end: date | None = None, format: str = "html") -> Any:
    end = end or business_today()
    start = start or end.replace(day=1)
    report = service.reconciliation(uow, actor, book_id, start, end)
    if format == "csv":
        return PlainTextResponse(service.reconciliation_csv(report), media_type="text/csv", headers={
            "content-disposition": f'attachment; filename="reconciliation-{start}-{end}.csv"'})
    return render(request, "bonded/reconciliation.html", actor, report=report)
