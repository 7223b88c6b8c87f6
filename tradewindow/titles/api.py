"""Titles API: signing keys, bills of lading (issue, endorse, pledge, release the pledge, take
over, surrender, void), their history, the record to sign, verification, published heads.

A party with custodial signing sends an action as it is. A party that signs for itself first asks
`POST /api/v1/titles/{number}/prepare` (or `/api/v1/titles/prepare` for an issue) for the record,
signs its canonical bytes with Ed25519, and sends `signed_at`, `previous` and `signature` (base64)
with the action; the canonical form is described in `tradewindow/titles/model.py`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import Field

from tradewindow.platform.auth import ENTERPRISE_ROLES, Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.web import Schema, allow, get_uow
from tradewindow.titles import service

router = APIRouter(prefix="/api/v1", tags=["titles"])
Uow = Annotated[UnitOfWork, Depends(get_uow)]
Party = Annotated[Actor, allow(*ENTERPRISE_ROLES)]
Reader = Annotated[Actor, allow(*ENTERPRISE_ROLES, Role.CUSTOMS)]
Carrier = Annotated[Actor, allow(Role.CARRIER)]
Publisher = Annotated[Actor, allow(Role.ADMIN, Role.CUSTOMS)]

EXAMPLE = {
    "bol_number": "CQDUI2026000123", "shipper_uscc": "91500115GG37HDHFEA", "consignee_uscc": None,
    "goods_description": "Laptop computers, 40 pallets", "packages": 40, "gross_mass_kg": "12850.5",
    "containers": ["CSQU3054383"], "place_of_receipt": "CNCKG", "place_of_delivery": "DEDUI",
    "consignment_reference": "CR-2026-0042",
}
SEA_EXAMPLE = {
    "kind": "sea_bill", "bol_number": "COSU6281734010", "shipper_uscc": "91500115GG37HDHFEA",
    "consignee_uscc": None, "goods_description": "Laptop computers, 40 pallets", "packages": 40,
    "gross_mass_kg": "12850.5", "containers": ["CSQU3054383"], "vessel": "COSCO SHIPPING ARIES",
    "voyage": "062W", "port_of_loading": "CNQZH", "port_of_discharge": "SGSIN",
    "place_of_receipt": "CNCKG", "place_of_delivery": "SGSIN",
}


class KeyBody(Schema):
    public_key: str | None = Field(default=None, max_length=2000,
                                   description="Ed25519 public key: PEM, or its 32 raw bytes in base64 or hex.")
    custodial: bool = Field(default=False, description="Let the platform generate and hold the private key.")


class Signed(Schema):
    signed_at: str | None = Field(default=None, max_length=40, description="The prepared record's `at`.")
    previous: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                                 description="The head hash the record was prepared on.")
    signature: str | None = Field(default=None, max_length=200, description="Base64 Ed25519 signature.")

    def client(self) -> service.ClientSignature | None:
        if self.signature is None and self.previous is None:
            return None
        return service.ClientSignature(self.signature, self.signed_at, self.previous)


class EndorseBody(Signed):
    to_uscc: str = Field(max_length=40)


class PledgeBody(Signed):
    bank_uscc: str = Field(max_length=40)


class PrepareBody(Schema):
    action: Literal["endorse", "pledge", "release_pledge", "take_over", "surrender", "void"]
    to_uscc: str | None = Field(default=None, max_length=40, description="Endorsee, or the bank for a pledge.")


def _json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(value), status_code=status_code)


# --- keys ----------------------------------------------------------------------------------------

@router.get("/signing-keys")
def list_keys(uow: Uow, actor: Party) -> dict:
    """Your enterprise's signing keys, the current one first. Roles: enterprise roles."""
    return {"items": service.list_keys(uow, actor)}


@router.post("/signing-keys", status_code=201)
def register_key(body: KeyBody, uow: Uow, actor: Party) -> dict:
    """Register your public key, or `custodial: true` to let the platform hold a key for you. The
    new key signs from now on; older keys still verify what they signed. Roles: enterprise roles."""
    return service.register_key(uow, actor, body.public_key, body.custodial)


# --- bills ---------------------------------------------------------------------------------------

@router.get("/titles")
def list_bills(uow: Uow, actor: Reader, status: Literal["active", "pledged", "surrendered", "void"] | None = None,
               held: bool = False, kind: Literal["railway_bill", "sea_bill"] | None = None,
               limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)) -> Any:
    """Bills of lading you issued, hold, held or took in pledge (customs: all), newest first;
    `kind` picks railway or sea bills. Roles: enterprise roles, customs."""
    return _json(service.list_bills(uow, actor, status, held, limit, offset, kind))


@router.post("/titles", status_code=201,
             responses={200: {"description": "The same bill issued again: the first result."}})
def issue(uow: Uow, actor: Carrier, body: Annotated[Any, Body(openapi_examples={
        "railway bill": {"value": EXAMPLE}, "sea bill": {"value": SEA_EXAMPLE}})]) -> Any:
    """Issue a bill of lading to the shipper (to a named consignee, or to order when
    `consignee_uscc` is null). `kind` is `railway_bill` (the default) or `sea_bill`, which also
    names `vessel`, `voyage`, `port_of_loading` and `port_of_discharge` (place of receipt and of
    delivery default to the ports). 201 with the bill; 200 with the first result when the same
    bill is sent again; 422 with every problem. Roles: carrier."""
    issued = service.issue_bill(uow, actor, body)
    return _json(issued.bill, 201 if issued.created else 200)


@router.post("/titles/prepare")
def prepare_issue(uow: Uow, actor: Carrier, body: Annotated[Any, Body()]) -> Any:
    """The issue record to sign for these particulars (nothing stored). Roles: carrier."""
    return _json(service.prepare_issue(uow, actor, body))


@router.get("/titles/heads")
def checkpoints(uow: Uow, actor: Reader, limit: int = Query(20, ge=1, le=500)) -> Any:
    """The latest published checkpoints of the chain heads. Roles: enterprise roles, customs."""
    return _json({"items": service.list_checkpoints(uow, limit)})


@router.post("/titles/heads")
def publish(uow: Uow, actor: Publisher) -> Any:
    """Publish the heads of every chain now (the worker does it every period). Roles: admin, customs."""
    return _json(service.publish_heads(uow, actor))


@router.get("/titles/{bol_number}")
def get_bill(bol_number: str, uow: Uow, actor: Reader) -> Any:
    """A bill with its particulars and history. Roles: its parties, customs."""
    return _json(service.get_bill(uow, actor, bol_number))


@router.get("/titles/{bol_number}/verify")
def verify(bol_number: str, uow: Uow, actor: Reader) -> Any:
    """Re-check the whole chain (links, hashes, signatures, rules, particulars, current state,
    published heads) and name the first broken record. Roles: its parties, customs."""
    return _json(service.verify(uow, actor, bol_number))


@router.post("/titles/{bol_number}/prepare")
def prepare(bol_number: str, body: PrepareBody, uow: Uow, actor: Party) -> Any:
    """The record to sign for an action now: fields, canonical bytes, hash. Roles: its parties."""
    return _json(service.prepare(uow, actor, bol_number, body.action, body.to_uscc))


@router.post("/titles/{bol_number}/endorse")
def endorse(bol_number: str, body: EndorseBody, uow: Uow, actor: Party) -> Any:
    """The holder endorses the bill to another enterprise. Roles: the holder."""
    return _json(service.endorse(uow, actor, bol_number, body.to_uscc, body.client()))


@router.post("/titles/{bol_number}/pledge")
def pledge(bol_number: str, body: PledgeBody, uow: Uow, actor: Party) -> Any:
    """The holder pledges the bill to a bank; it is locked until released. Roles: the holder."""
    return _json(service.pledge(uow, actor, bol_number, body.bank_uscc, body.client()))


@router.post("/titles/{bol_number}/release-pledge")
def release_pledge(bol_number: str, uow: Uow, actor: Party, body: Signed | None = None) -> Any:
    """The bank releases its pledge. Roles: the pledgee."""
    return _json(service.release_pledge(uow, actor, bol_number, body.client() if body else None))


@router.post("/titles/{bol_number}/take-over")
def take_over(bol_number: str, uow: Uow, actor: Party, body: Signed | None = None) -> Any:
    """On default, the bank holding the pledge becomes the holder. Roles: the pledgee."""
    return _json(service.take_over(uow, actor, bol_number, body.client() if body else None))


@router.post("/titles/{bol_number}/surrender")
def surrender(bol_number: str, uow: Uow, actor: Party, body: Signed | None = None) -> Any:
    """The holder surrenders the bill to the issuer against delivery. Final. Roles: the holder."""
    return _json(service.surrender(uow, actor, bol_number, body.client() if body else None))


@router.post("/titles/{bol_number}/void")
def void(bol_number: str, uow: Uow, actor: Party, body: Signed | None = None) -> Any:
    """The issuer voids a bill before any transfer. Final. Roles: the issuer."""
    return _json(service.void(uow, actor, bol_number, body.client() if body else None))

