"""Customs API: declarations, agency tasks, control results, payments, lanes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from tradewindow.customs import documents, service
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.web import Schema, allow, get_uow, json_answer

router = APIRouter(prefix="/api/v1", tags=["customs"])
Uow = Annotated[UnitOfWork, Depends(get_uow)]
Declarant = Annotated[Actor, allow(Role.TRADER, Role.BROKER)]
Reader = Annotated[Actor, allow(Role.TRADER, Role.BROKER, Role.CUSTOMS, Role.QUARANTINE, Role.LICENSING,
                                Role.ZONE, Role.ADMIN)]
CustomsOfficer = Annotated[Actor, allow(Role.CUSTOMS)]
AgencyOfficer = Annotated[Actor, allow(Role.QUARANTINE, Role.LICENSING)]

EXAMPLE = {
    "client_reference": "LRN-2025-000123", "type": "import", "customs_office": "8012",
    "transport_mode": "rail", "transport_document": "CIM-CQ-DE-2025-0042", "country_of_dispatch": "DE",
    "incoterm": "CIF", "currency": "EUR", "invoice_total": "48000.00",
    "items": [{"tariff_code": "87032361", "description": "Passenger car, 2.0 l petrol", "origin": "DE",
               "quantity": "1", "unit": "NAR", "net_mass_kg": "1650", "gross_mass_kg": "1720",
               "value": "48000.00", "licence_numbers": ["25-AIL-500-000127"]}],
}


@router.post("/declarations", status_code=201,
             responses={200: {"description": "A repeat of a client reference: the first result."}})
def lodge(uow: Uow, actor: Declarant,
          body: Annotated[Any, Body(openapi_examples={"car": {"value": EXAMPLE}})]) -> Any:
    """Lodge a declaration. 201 with the declaration (number, status, lane, agency tasks,
    assessment); 200 with the first result when the client reference was already used; 422 with
    every problem (nothing stored). Roles: trader, broker."""
    lodged = service.lodge_declaration(uow, actor, body)
    return json_answer(lodged.declaration, status_code=201 if lodged.created else 200)


def _json(value: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value)


@router.get("/declarations")
def list_declarations(uow: Uow, actor: Reader, status: str | None = None, lane: str | None = None,
                      type: str | None = None, q: str | None = Query(None, max_length=64),
                      limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)) -> dict:
    """Declarations the caller may see, newest first, filtered. Roles: trader, broker, officers."""
    return service.list_declarations(uow, actor, status, lane, type, q, limit, offset)


@router.get("/declarations/{declaration_id}")
def get_declaration(declaration_id: str, uow: Uow, actor: Reader) -> dict:
    """One declaration by id or number. Roles: trader, broker (tenancy applies), officers."""
    return service.get_declaration(uow, actor, declaration_id)


@router.get("/declarations/{declaration_id}/versions")
def versions(declaration_id: str, uow: Uow, actor: Reader) -> dict:
    """Every version of the filing with its assessment. Roles: as for reading."""
    return {"versions": service.history(uow, actor, declaration_id)}


@router.get("/declarations/{declaration_id}/lane")
def lane(declaration_id: str, uow: Uow, actor: Annotated[Actor, allow(Role.CUSTOMS, Role.ADMIN)]) -> dict:
    """Why this lane: every draw and the seed to replay it. Roles: customs, admin."""
    return service.lane_explanation(uow, actor, declaration_id)


@router.get("/declarations/{declaration_id}/documents/{document_id}")
def document(declaration_id: str, document_id: str, uow: Uow, actor: Reader) -> Response:
    """The attached file itself. Roles: as for reading."""
    found = service.document_content(uow, actor, declaration_id, document_id)
    return Response(found["content"], media_type=found["content_type"], headers={
        "Content-Disposition": f'attachment; filename="{found["filename"]}"', "X-Content-SHA256": found["sha256"]})


class ReasonBody(Schema):
    reason: str = Field(min_length=1, max_length=1000)


class AmendBody(Schema):
    reason: str = Field(min_length=1, max_length=1000)
    filing: dict[str, Any]


@router.put("/declarations/{declaration_id}")
def amend(declaration_id: str, body: AmendBody, uow: Uow, actor: Declarant) -> dict:
    """Amend before release: a new version, checked and assessed again. Roles: trader, broker."""
    return service.amend_declaration(uow, actor, declaration_id, body.filing, body.reason)


@router.post("/declarations/{declaration_id}/cancel")
def cancel(declaration_id: str, body: ReasonBody, uow: Uow, actor: Declarant) -> dict:
    """Cancel before release, with the reason. Roles: trader, broker."""
    return service.cancel_declaration(uow, actor, declaration_id, body.reason)


@router.post("/declarations/{declaration_id}/corrections")
def correct(declaration_id: str, body: AmendBody, uow: Uow, actor: Declarant) -> dict:
    """Post-release correction: re-assessed; `difference` says what to pay (+) or refund (−).
    Roles: trader, broker."""
    return service.correct_declaration(uow, actor, declaration_id, body.filing, body.reason)


class CompleteBody(Schema):
    filing: dict[str, Any]


@router.post("/declarations/{declaration_id}/complete")
def complete(declaration_id: str, body: CompleteBody, uow: Uow, actor: Declarant) -> dict:
    """Step two of a two-step declaration: the complete filing (due 14 days after release);
    `difference` says what to pay (+) or refund (−). Roles: trader, broker."""
    return service.complete_declaration(uow, actor, declaration_id, body.filing)


class PaymentBody(Schema):
    kind: Literal["payment", "guarantee", "supplement"] = "payment"
    reference: str = Field(min_length=1, max_length=64)
    amount: Decimal = Field(ge=0, max_digits=18, decimal_places=2)


@router.post("/declarations/{declaration_id}/payments")
def pay(declaration_id: str, body: PaymentBody, uow: Uow, actor: Declarant) -> dict:
    """Record the bank transfer or guarantee covering what is due. Roles: trader, broker."""
    return service.record_payment(uow, actor, declaration_id, body.kind, body.reference, body.amount)


class DocumentBody(Schema):
    type: str
    filename: str = Field(max_length=200)
    content_type: str
    content_base64: str


@router.post("/declarations/{declaration_id}/documents")
def add_document(declaration_id: str, body: DocumentBody, uow: Uow, actor: Declarant) -> dict:
    """Attach a document (e.g. one an agency requested). Roles: trader, broker."""
    return service.add_document(uow, actor, declaration_id, body.model_dump())


class ControlBody(Schema):
    conform: bool
    findings: str = Field(min_length=1, max_length=4000)
    corrected_filing: dict[str, Any] | None = None


@router.post("/declarations/{declaration_id}/controls")
def control(declaration_id: str, body: ControlBody, uow: Uow, actor: CustomsOfficer) -> dict:
    """Result of the physical inspection (red) or document check (yellow). Roles: customs."""
    return service.record_control_result(uow, actor, declaration_id, body.conform, body.findings,
                                         body.corrected_filing)


@router.get("/declarations/{declaration_id}/seal-record")
def seal_record(declaration_id: str, uow: Uow, actor: Annotated[Actor, allow(
        Role.CUSTOMS, Role.QUARANTINE, Role.LICENSING, Role.ZONE, Role.ADMIN)]) -> Any:
    """The seal history of the consignment the declaration names (its consignment reference, else
    its transport document, among its trader's consignments): each sealed container, its seals,
    and whether the record is unbroken. null when no such consignment is followed. Roles: officers."""
    return _json(service.seal_record(uow, actor, declaration_id))


@router.post("/declarations/{declaration_id}/release-sealed",
             responses={409: {"description": "`seal_record_broken` (a seal broken or changed, or a seal alert), "
                                             "`no_seal_record`, `not_sealed_release_type` or `no_control_pending`."}})
def release_sealed(declaration_id: str, uow: Uow, actor: CustomsOfficer) -> dict:
    """Release a sealed container without opening it: an export, transit or re-export on the red
    lane whose consignment's seal record is unbroken gets its inspection recorded as conform,
    "released under unbroken seal record ...". Roles: customs."""
    return service.release_sealed(uow, actor, declaration_id)


@router.post("/declarations/{declaration_id}/exit")
def record_exit(declaration_id: str, uow: Uow, actor: CustomsOfficer) -> dict:
    """Exported goods have left the territory. Roles: customs."""
    return service.record_exit(uow, actor, declaration_id)


@router.get("/agency-tasks")
def tasks(uow: Uow, actor: Annotated[Actor, allow(Role.QUARANTINE, Role.LICENSING, Role.CUSTOMS, Role.ADMIN)],
          status: str | None = "open") -> dict:
    """The agency's queue (oldest deadline first, overdue flagged). Roles: quarantine, licensing,
    customs, admin."""
    return {"items": service.task_queue(uow, actor, status)}


class DecisionBody(Schema):
    decision: Literal["approve", "refuse", "request_documents"]
    reason: str = Field(default="", max_length=2000)


@router.post("/agency-tasks/{task_id}/decision")
def decide(task_id: str, body: DecisionBody, uow: Uow, actor: AgencyOfficer) -> dict:
    """Approve, refuse or request documents. Roles: quarantine, licensing (their own tasks)."""
    return service.decide_task(uow, actor, task_id, body.decision, body.reason)


# --- lane rules ----------------------------------------------------------------------------------

class LaneProfileBody(Schema):
    office: str = Field(max_length=20, description='A customs office code, or "*" for every office.')
    profile: dict[str, Any]


@router.get("/lane-profiles")
def lane_profiles(uow: Uow, actor: Annotated[Actor, allow(Role.CUSTOMS, Role.ADMIN)],
                  office: str | None = None) -> dict:
    """The risk rule profiles. Roles: customs, admin."""
    return {"items": service.list_lane_profiles(uow, actor, office)}


@router.post("/lane-profiles", status_code=201)
def create_lane_profile(body: LaneProfileBody, uow: Uow, actor: CustomsOfficer) -> dict:
    """A new rule profile: conditions (tariff prefixes, origins, traders, credit tiers, transport
    modes, unit-value band, first declaration), a lane and a probability. Roles: customs."""
    return service.save_lane_profile(uow, actor, body.office, body.profile)


@router.put("/lane-profiles/{profile_id}")
def update_lane_profile(profile_id: str, body: LaneProfileBody, uow: Uow, actor: CustomsOfficer) -> dict:
    """Change a rule profile (set "active": false to switch it off). Roles: customs."""
    return service.save_lane_profile(uow, actor, body.office, body.profile, profile_id)


@router.get("/lane-settings/{office}")
def get_lane_settings(office: str, uow: Uow, actor: Annotated[Actor, allow(Role.CUSTOMS, Role.ADMIN)]) -> dict:
    """An office's expected lane rates, minimum random rate and credit-tier modifiers. Roles:
    customs, admin."""
    from tradewindow.customs import selectivity

    return selectivity.render_office_settings(service.lane_settings_for(uow, office))


@router.put("/lane-settings/{office}")
def put_lane_settings(office: str, body: Annotated[dict[str, Any], Body()], uow: Uow,
                      actor: CustomsOfficer) -> dict:
    """Set an office's lane settings; the advanced-AEO modifier must stay below 20 % of the
    general rate (GACC rule). Roles: customs."""
    return service.save_lane_settings(uow, actor, office, body)


# --- printouts -----------------------------------------------------------------------------------

@router.get("/declarations/{declaration_id}/printouts/{kind}",
            responses={200: {"content": {"application/pdf": {}, "text/html": {}}},
                       409: {"description": "`not_released` (release note before release) or `nothing_due` "
                                            "(tax notice when no duty or tax is due)."}})
def printout(declaration_id: str, kind: Literal["declaration", "tax-notice", "release-note"], uow: Uow,
             actor: Reader, format: Literal["pdf", "html"] = "pdf") -> Response:
    """The declaration, its tax payment notice or its release note, as PDF (A4) or as HTML for
    printing. Roles: as for reading the declaration (tenancy applies)."""
    prepared = documents.prepare(uow, actor, declaration_id, kind)
    if format == "html":
        return Response(documents.html(prepared), media_type="text/html; charset=utf-8")
    return Response(documents.pdf(prepared), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{prepared.filename}.pdf"'})
