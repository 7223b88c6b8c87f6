"""Tariff API: browse lines and rates by date, quote duties and taxes, load and export the
schedule."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from tradewindow.platform.auth import ALL_ROLES, Actor, Role
from tradewindow.platform.db import UnitOfWork, business_today
from tradewindow.platform.errors import ValidationFailed
from tradewindow.platform.web import allow, get_uow
from tradewindow.tariff import service

router = APIRouter(prefix="/api/v1", tags=["tariff"])
Uow = Annotated[UnitOfWork, Depends(get_uow)]
Anyone = Annotated[Actor, allow(*ALL_ROLES)]
TariffKeeper = Annotated[Actor, allow(Role.CUSTOMS, Role.ADMIN)]

QUOTE_EXAMPLE = {"regime": "general", "date": "2025-01-15", "items": [{
    "tariff_code": "87032361", "origin": "DE", "currency": "USD", "customs_value": "50000.00",
    "quantity": "1", "unit": "NAR"}]}


@router.get("/tariff/lines")
def search_lines(uow: Uow, actor: Anyone, q: str = Query("", max_length=100),
                 date: date | None = None, limit: int = Query(50, ge=1, le=500)) -> dict:
    """National lines by code prefix or words of the description, with the rates in force on the
    date (default today). Rates are decimal strings (0.15 = 15 %), null where none. Roles: any."""
    return service.search_lines(uow, actor, q, date, limit)


@router.get("/tariff/lines/{code}")
def get_line(code: str, uow: Uow, actor: Anyone, date: date | None = None) -> dict:
    """One line: rates in force on the date and every measure over time. Roles: any."""
    return service.get_line(uow, actor, code, date)


@router.get("/tariff/hs/{code}")
def hs_entry(code: str, uow: Uow, actor: Anyone) -> dict:
    """An HS chapter, heading or subheading with its ancestors and children. Roles: any."""
    return service.hs_entry(uow, code)


@router.get("/tariff/exchange-rates")
def exchange_rates(uow: Uow, actor: Anyone, date: date | None = None) -> dict:
    """Customs exchange rates (CNY per unit) in force on the date. Roles: any."""
    return {"date": date or business_today(), "rates": service.exchange_rate_table(uow, date)}


@router.post("/tax/quote")
def tax_quote(uow: Uow, actor: Anyone,
              body: Annotated[Any, Body(openapi_examples={"car": {"value": QUOTE_EXAMPLE}})]) -> dict:
    """Duty, consumption tax and VAT for goods (regime `general` or `cbec`), with the rate
    applied and why. Every problem of the request is listed at once (422). Roles: any."""
    return service.quote(uow, actor, body)


CSV_EXPORTS = {
    "schedule": service.export_schedule,
    "agreements": service.export_agreements,
    "exchange-rates": service.export_exchange_rates,
}
CSV_IMPORTS = {
    "schedule": service.import_schedule,
    "agreements": service.import_agreements,
    "exchange-rates": service.import_exchange_rates,
    "hs": service.import_hs,
}


@router.get("/tariff/{kind}.csv", response_class=PlainTextResponse)
def export_csv(kind: str, uow: Uow, actor: Anyone) -> PlainTextResponse:
    """The whole schedule, the agreements or the exchange rates as CSV (format in
    tradewindow/tariff/data/README.md). Roles: any."""
    if kind not in CSV_EXPORTS:
        raise ValidationFailed(f"One of: {', '.join(CSV_EXPORTS)}.", "unknown_export", "kind")
    return PlainTextResponse(CSV_EXPORTS[kind](uow), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'})


@router.put("/tariff/{kind}.csv")
async def import_csv(kind: str, request: Request, uow: Uow, actor: TariffKeeper) -> dict:
    """Replace the schedule, agreements, exchange rates or HS nomenclature with the CSV in the
    body (Content-Type text/csv). All or nothing; every problem listed. Roles: customs, admin."""
    if kind not in CSV_IMPORTS:
        raise ValidationFailed(f"One of: {', '.join(CSV_IMPORTS)}.", "unknown_import", "kind")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("The file is not UTF-8 text.", "not_utf8", "body") from exc
    return CSV_IMPORTS[kind](uow, actor, text)
