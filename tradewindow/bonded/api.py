"""Bonded API: account books, admission of a released bonded-entry declaration, release to the
domestic market (with a tax quote first), re-export, transfer to another zone, processing
(bills of materials, orders), destruction,
temporary removal and return, stocktaking, movement history, vehicles by VIN, reconciliation (JSON or CSV).

Bodies are read by the service (every problem at once, unknown fields refused); quantities are
decimal strings."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, PlainTextResponse

from tradewindow.bonded import model, service
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import ValidationFailed
from tradewindow.platform.web import allow, get_uow

router = APIRouter(prefix="/api/v1/bonded", tags=["bonded"])
Uow = Annotated[UnitOfWork, Depends(get_uow)]
Reader = Annotated[Actor, allow(Role.TRADER, Role.BROKER, Role.CUSTOMS, Role.ZONE, Role.ADMIN)]
Keeper = Annotated[Actor, allow(Role.TRADER, Role.BROKER)]
Opener = Annotated[Actor, allow(Role.TRADER, Role.ZONE, Role.ADMIN)]
Supervisor = Annotated[Actor, allow(Role.CUSTOMS, Role.ADMIN)]
Json = Annotated[dict[str, Any], Body()]


def _created(result: Any, created: bool) -> JSONResponse:
    return JSONResponse(jsonable_encoder(result), status_code=201 if created else 200)


@router.get("/books")
def list_books(uow: Uow, actor: Reader) -> list[dict]:
    return service.list_books(uow, actor)


@router.post("/books", status_code=201)
def open_book(body: Json, uow: Uow, actor: Opener) -> dict:
    return service.open_book(uow, actor, body)


@router.get("/books/{book_id}")
def get_book(book_id: str, uow: Uow, actor: Reader) -> dict:
    return service.get_book(uow, actor, book_id)


@router.post("/books/{book_id}/entries")
def admit_entry(book_id: str, body: Json, uow: Uow, actor: Keeper) -> JSONResponse:
    """Admit the goods of a released bonded_entry declaration: `{"declaration": id or number,
    "serials": {"1": [VIN, ...]}, "location": "bonded_storage"}`."""
    admitted = service.admit_entry(uow, actor, book_id, body)
    return _created({"lots": admitted.lots}, admitted.created)


@router.post("/books/{book_id}/entries.csv")
async def admit_entry_csv(book_id: str, request: Request, uow: Uow, actor: Keeper,
                          declaration: str = Query(max_length=64),
                          location: str = Query("bonded_storage", max_length=30)) -> JSONResponse:
    """Bulk admission of many vehicles: the body is a CSV (`line,serial`, a row per VIN or
    container) of a released bonded_entry declaration. Every problem at once; all or nothing."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("The file is not UTF-8 text.", "not_utf8", "body") from exc
    serials, problems = model.serials_from_csv(text)
    problems.raise_if_any()
    admitted = service.admit_entry(uow, actor, book_id, {"declaration": declaration, "serials": serials,
                                                         "location": location})
    return _created({"lots": admitted.lots}, admitted.created)


@router.get("/books/{book_id}/units")
def list_units(book_id: str, uow: Uow, actor: Reader, q: str = "") -> list[dict]:
    return service.list_units(uow, actor, book_id, q)


@router.get("/books/{book_id}/moves")
def history(book_id: str, uow: Uow, actor: Reader, lot_id: str | None = None, serial: str | None = None) -> list[dict]:
    return service.history(uow, actor, book_id, lot_id, serial)


@router.post("/books/{book_id}/release-quote")
def quote_release(book_id: str, body: Json, uow: Uow, actor: Reader) -> dict:
    """The declaration a release would lodge and the duty and taxes due at today's rates."""
    return service.quote_release(uow, actor, book_id, body)


@router.post("/books/{book_id}/releases")
def release(book_id: str, body: Json, uow: Uow, actor: Keeper) -> JSONResponse:
    requested = service.release_to_domestic(uow, actor, book_id, body)
    return _created({"request": requested.request, "declaration": requested.declaration}, requested.created)


@router.post("/books/{book_id}/reexports")
def reexport(book_id: str, body: Json, uow: Uow, actor: Keeper) -> JSONResponse:
    requested = service.reexport(uow, actor, book_id, body)
    return _created({"request": requested.request, "declaration": requested.declaration}, requested.created)


@router.post("/books/{book_id}/transfers")
def request_transfer(book_id: str, body: Json, uow: Uow, actor: Keeper) -> JSONResponse:
    """Transfer-out to `destination_book_id` (a book in another zone): reserved until approved there."""
    requested = service.request_transfer(uow, actor, book_id, body)
    return _created({"request": requested.request}, requested.created)


@router.get("/books/{book_id}/transfers/incoming")
def incoming_transfers(book_id: str, uow: Uow, actor: Reader) -> list[dict]:
    return service.incoming_transfers(uow, actor, book_id)


@router.post("/transfers/{request_id}/approve")
def approve_transfer(request_id: str, uow: Uow, actor: Keeper, body: Annotated[dict[str, Any] | None, Body()] = None
                     ) -> dict:
    """The destination approves: transfer-out and transfer-in on both books; returns the transfer-in."""
    return service.approve_transfer(uow, actor, request_id, body)


@router.post("/transfers/{request_id}/cancel")
def cancel_transfer(request_id: str, uow: Uow, actor: Keeper) -> dict:
    return service.cancel_transfer(uow, actor, request_id)


@router.get("/books/{book_id}/boms")
def list_boms(book_id: str, uow: Uow, actor: Reader) -> list[dict]:
    return service.list_boms(uow, actor, book_id)


@router.post("/books/{book_id}/boms", status_code=201)
def record_bom(book_id: str, body: Json, uow: Uow, actor: Keeper) -> dict:
    """A bill-of-materials line: finished item, material, net consumption, process loss rate, validity."""
    return service.record_bom(uow, actor, book_id, body)


@router.get("/books/{book_id}/processing-orders")
def list_processing_orders(book_id: str, uow: Uow, actor: Reader) -> list[dict]:
    return service.list_processing_orders(uow, actor, book_id)


@router.post("/books/{book_id}/processing-orders")
def process(book_id: str, body: Json, uow: Uow, actor: Keeper) -> JSONResponse:
    """Consume materials by the bills of materials and make finished goods; excess flagged taxable."""
    processed = service.process(uow, actor, book_id, body)
    return _created(processed.order, processed.created)


@router.post("/books/{book_id}/destructions")
def destroy(book_id: str, body: Json, uow: Uow, actor: Supervisor) -> JSONResponse:
    requested = service.destroy(uow, actor, book_id, body)
    return _created({"request": requested.request}, requested.created)


@router.post("/books/{book_id}/temporary-removals")
def take_out(book_id: str, body: Json, uow: Uow, actor: Keeper) -> JSONResponse:
    requested = service.take_out_temporarily(uow, actor, book_id, body)
    return _created({"request": requested.request}, requested.created)


@router.get("/books/{book_id}/temporary-removals")
def temporarily_out(book_id: str, uow: Uow, actor: Reader) -> list[dict]:
    return service.temporarily_out(uow, actor, book_id)


@router.post("/requests/{request_id}/return")
def bring_back(request_id: str, uow: Uow, actor: Reader) -> dict:
    return service.return_temporarily_out(uow, actor, request_id)


@router.get("/requests/{request_id}")
def get_request(request_id: str, uow: Uow, actor: Reader) -> dict:
    return service.get_request(uow, actor, request_id)


@router.post("/books/{book_id}/stocktaking")
def stocktaking(book_id: str, body: Json, uow: Uow, actor: Reader, apply: bool = False) -> dict:
    """Counts against the book; `?apply=true` (customs) books the differences as adjustments."""
    return service.stocktaking(uow, actor, book_id, body, apply)


@router.get("/books/{book_id}/reconciliation", response_model=None)
def reconciliation(book_id: str, start: date, end: date, uow: Uow, actor: Reader,
                   format: str = "json") -> Any:
    report = service.reconciliation(uow, actor, book_id, start, end)
    if format == "csv":
        return PlainTextResponse(service.reconciliation_csv(report), media_type="text/csv", headers={
            "content-disposition": f'attachment; filename="reconciliation-{book_id}-{start}-{end}.csv"'})
    return report
