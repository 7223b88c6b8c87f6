"""Cross-border e-commerce API: the three documents of a parcel, batches of NDJSON, results, the
buyer's year for customs, cancellation by the platform."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from tradewindow.ecommerce import service
from tradewindow.ecommerce.model import Kind
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import ValidationFailed
from tradewindow.platform.settings import get_settings
from tradewindow.platform.web import Schema, allow, get_uow

router = APIRouter(prefix="/api/v1/cbec", tags=["cross-border e-commerce"])
Uow = Annotated[UnitOfWork, Depends(get_uow)]
Platform = Annotated[Actor, allow(Role.PLATFORM)]
PaymentCompany = Annotated[Actor, allow(Role.PAYMENT)]
LogisticsCompany = Annotated[Actor, allow(Role.LOGISTICS)]
BatchSender = Annotated[Actor, allow(*service.BATCH_SENDERS)]
Reader = Annotated[Actor, allow(*service.READERS)]
Customs = Annotated[Actor, allow(Role.CUSTOMS)]
MAX_BATCH_RECORDS = 10_000

ORDER_EXAMPLE = {
    "order_no": "TM-20261111-000001", "platform_code": "91500107MA5U8Q3K2D",
    "ordered_at": "2026-11-11T00:05:00+08:00", "buyer_id_number": "110105199001020016", "buyer_name": "王小明",
    "consignee_name": "王小明", "consignee_address": "重庆市渝中区解放碑1号", "currency": "CNY",
    "goods_value": "300.00", "freight": "0", "discount": "0", "tax_withheld": "18.90",
    "items": [{"tariff_code": "04022100", "description": "Whole milk powder 900 g", "quantity": "1",
               "unit": "can", "unit_price": "300.00", "origin": "NZ"}]}
PAYMENT_EXAMPLE = {"payment_no": "ZFB-000001", "order_no": "TM-20261111-000001",
                   "payer_id_number": "110105199001020016", "payer_name": "王小明", "amount_paid": "318.90",
                   "paid_at": "2026-11-11T00:05:30+08:00"}
WAYBILL_EXAMPLE = {"waybill_no": "SF-000001", "order_no": "TM-20261111-000001", "consignee_name": "王小明",
                   "consignee_address": "重庆市渝中区解放碑1号", "gross_weight_kg": "1.1",
                   "shipped_at": "2026-11-12T10:00:00+08:00"}


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(value), status_code=status)


def _receive(uow: UnitOfWork, actor: Actor, kind: Kind, body: Any) -> JSONResponse:
    if isinstance(body, list):
        if len(body) > MAX_BATCH_RECORDS:
            raise ValidationFailed(f"At most {MAX_BATCH_RECORDS} records per request.", "too_many")
        summary = service.import_batch(uow, actor, enumerate(body, start=1), kind=kind)
        return _json(summary.as_dict())
    received = service.submit(uow, actor, kind, body)
    return _json(received.as_dict(), 201 if received.created else 200)


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A repeat (same number, same content): the first result; or the summary of an array."},
    409: {"description": "`duplicate`: the number was used for a different document; the first stands."},
}


@router.post("/orders", status_code=201, responses=RESPONSES)
def send_order(uow: Uow, actor: Platform,
               body: Annotated[Any, Body(openapi_examples={"milk powder": {"value": ORDER_EXAMPLE}})]) -> Any:
    """Send an order (or a JSON array of up to 10,000: answered with a batch summary). When its
    payment and waybill are in, the parcel is decided and returned. Roles: platform."""
    return _receive(uow, actor, Kind.ORDER, body)


@router.post("/payments", status_code=201, responses=RESPONSES)
def send_payment(uow: Uow, actor: PaymentCompany,
                 body: Annotated[Any, Body(openapi_examples={"payment": {"value": PAYMENT_EXAMPLE}})]) -> Any:
    """Send the payment of an order (one per order). Roles: payment."""
    return _receive(uow, actor, Kind.PAYMENT, body)


@router.post("/waybills", status_code=201, responses=RESPONSES)
def send_waybill(uow: Uow, actor: LogisticsCompany,
                 body: Annotated[Any, Body(openapi_examples={"waybill": {"value": WAYBILL_EXAMPLE}})]) -> Any:
    """Send the waybill of an order (one per order). Roles: logistics."""
    return _receive(uow, actor, Kind.WAYBILL, body)


# Documented as text/plain (what OpenAPI tools can send); application/x-ndjson is taken alike.
@router.post("/batches", openapi_extra={"requestBody": {"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}}}}})
async def send_batch(request: Request, uow: Uow, actor: BatchSender) -> Any:
    """A batch: NDJSON, one document per line with its "kind" ("order", "payment", "waybill"),
    at most 10,000 lines. Every line is accepted, a repeat, or refused with its errors; then the
    parcels made complete are decided, limits per buyer in ordered_at order. Answers the summary:
    counts by kind, decision and reason, the refused lines, the tax. Roles: platform, payment,
    logistics (each its own kind), admin (any)."""
    text = (await request.body()).decode("utf-8", errors="replace")
    lines = text.splitlines()
    if sum(1 for line in lines if line.strip()) > MAX_BATCH_RECORDS:
        raise ValidationFailed(f"At most {MAX_BATCH_RECORDS} lines per batch.", "too_many")
    summary = service.import_batch(uow, actor, service.ndjson_objects(lines))
    return _json(summary.as_dict())


StreamSender = Annotated[Actor, allow(*service.PARTIES)]


@router.post("/stream", status_code=202, openapi_extra={"requestBody": {"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}}}}})
async def send_stream(request: Request, uow: Uow, actor: StreamSender) -> Any:
    """Publish NDJSON documents (each with its "kind", at most 10,000 lines) to the e-commerce
    stream that `tradewindow worker cbec` processes apply: NATS JetStream when
    TRADEWINDOW_JOB_QUEUE=nats, otherwise the database job queue (which `tradewindow worker`
    applies too). Answered 202 with the counts published, repeated (the stream had the message id
    already) and refused (with errors) before anything is decided. Roles: platform, payment,
    logistics (each its own kind)."""
    from starlette.concurrency import run_in_threadpool

    from tradewindow.ecommerce import stream

    settings = get_settings()
    lines = (await request.body()).decode("utf-8", errors="replace").splitlines()
    if sum(1 for line in lines if line.strip()) > MAX_BATCH_RECORDS:
        raise ValidationFailed(f"At most {MAX_BATCH_RECORDS} lines per request.", "too_many")

    def publish() -> dict:
        return stream.publish_lines(stream.publisher(settings, lambda: uow), actor, service.ndjson_objects(lines))
    return _json(await run_in_threadpool(publish), 202)


@router.get("/parcels")
def list_parcels(uow: Uow, actor: Reader, decision: str | None = None,
                 buyer: str | None = Query(None, max_length=32, description="buyer identity number"),
                 limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000),
                 q: str | None = Query(None, max_length=64, description="start of the order or waybill number")
                 ) -> Any:
    """Decided parcels the caller may see, newest first. Identity numbers are masked except for
    customs. Roles: platform, payment, logistics (their own), customs, zone, admin."""
    return _json(service.list_parcels(uow, actor, decision, buyer, limit, offset, q))


@router.get("/live")
def live_figures(uow: Uow, actor: Reader) -> Any:
    """The live dashboard's figures: parcels per second over the last minute, per decision in
    10-second buckets over the last 5 minutes, decisions and reasons over that window, totals.
    Roles: as for the list (parties see their own parcels)."""
    return _json(service.live_figures(uow, actor))


@router.get("/parcels/{order_no}")
def get_parcel(order_no: str, uow: Uow, actor: Reader) -> Any:
    """What became of an order: the documents received and the result once decided (404 for a
    party that sent none of them). Roles: as for the list."""
    return _json(service.get_parcel(uow, actor, order_no))


class Cancellation(Schema):
    reason: str


@router.post("/parcels/{order_no}/cancel")
def cancel_parcel(order_no: str, body: Cancellation, uow: Uow, actor: Platform) -> Any:
    """Cancel a parcel (order cancelled, goods returned): its amount goes back to the buyer's
    year. Roles: platform (its own orders)."""
    return _json(service.cancel_parcel(uow, actor, order_no, body.reason))


@router.get("/buyers/{buyer_id_number}/year/{year}")
def buyer_year(buyer_id_number: str, year: int, uow: Uow, actor: Customs) -> Any:
    """A buyer's purchases in a calendar year (Asia/Shanghai) against the 26,000 CNY limit.
    Roles: customs."""
    return _json(service.buyer_year(uow, actor, buyer_id_number, year))
