"""Registry API: authentication, enterprises, users, API keys, broker authorisations, licences,
agencies."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from tradewindow.platform.auth import ALL_ROLES, Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.web import Schema, allow, get_uow
from tradewindow.registry import service
from tradewindow.registry.model import EnterpriseInput

router = APIRouter(prefix="/api/v1", tags=["registry"])

Uow = Annotated[UnitOfWork, Depends(get_uow)]
Anyone = Annotated[Actor, allow(*ALL_ROLES)]
Admin = Annotated[Actor, allow(Role.ADMIN)]
ZoneStaff = Annotated[Actor, allow(Role.ZONE, Role.ADMIN)]


class TokenRequest(Schema):
    username: str = Field(max_length=64)
    password: str = Field(max_length=200)


class TokenResponse(Schema):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


@router.post("/auth/token", response_model=TokenResponse)
def issue_token(body: TokenRequest, uow: Uow, request: Request) -> TokenResponse:
    """Exchange a username and password for a bearer token (no role needed). Repeated failures
    lock the account for a while."""
    _, token = service.log_in(uow, body.username, body.password, kind="token")
    hours = request.app.state.settings.token_hours
    return TokenResponse(access_token=token, expires_in=hours * 3600)


@router.post("/auth/logout", status_code=204)
def log_out(request: Request, uow: Uow, actor: Anyone) -> None:
    """Revoke the bearer token used for this call. Roles: any."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    service.log_out(uow, token)


@router.get("/me")
def whoami(actor: Anyone) -> dict:
    """The caller: user, role, enterprise or agency. Roles: any."""
    return {"user_id": actor.user_id, "username": actor.username, "role": actor.role.value,
            "enterprise_id": actor.enterprise_id, "agency_id": actor.agency_id}


# --- enterprises ---------------------------------------------------------------------------------

class EnterpriseBody(Schema):
    uscc: str = Field(max_length=40)
    name_zh: str = Field(default="", max_length=200)
    name_en: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=500)
    sector: str = Field(max_length=20)
    business_scope: str = Field(default="", max_length=2000)
    kinds: list[str] = Field(min_length=1, max_length=10)
    credit_tier: str = "general"

    def to_input(self) -> EnterpriseInput:
        return EnterpriseInput(uscc=self.uscc, name_zh=self.name_zh, name_en=self.name_en,
                               address=self.address, sector=self.sector,
                               business_scope=self.business_scope, kinds=tuple(self.kinds),
                               credit_tier=self.credit_tier)


class EnterprisePatch(Schema):
    name_zh: str | None = Field(default=None, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    sector: str | None = Field(default=None, max_length=20)
    business_scope: str | None = Field(default=None, max_length=2000)
    kinds: list[str] | None = Field(default=None, min_length=1, max_length=10)
    credit_tier: str | None = None
    version: int | None = Field(default=None, description="The version you read; refused if stale.")


class WithdrawBody(Schema):
    reason: str = Field(min_length=1, max_length=1000)


class LicenceApplication(Schema):
    licence_type: str


class FirstUser(Schema):
    username: str = Field(max_length=64)
    password: str = Field(max_length=200)
    role: Role
    display_name: str = ""


class StartupBody(Schema):
    client_reference: str = Field(min_length=1, max_length=64)
    enterprise: EnterpriseBody
    licences: list[LicenceApplication] = Field(default_factory=list, max_length=20)
    first_user: FirstUser | None = None


@router.get("/enterprises")
def list_enterprises(uow: Uow, actor: Anyone, q: str | None = Query(None, max_length=100),
                     sector: str | None = None, status: str | None = None, kind: str | None = None,
                     limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)) -> dict:
    """Enterprises the caller may see: officers, the zone and banks all; an enterprise itself and
    those linked to it by a broker authorisation. Roles: any."""
    return service.list_enterprises(uow, actor, q, sector, status, kind, limit, offset)


@router.post("/enterprises", status_code=201)
def register_enterprise(body: EnterpriseBody, uow: Uow, actor: ZoneStaff) -> dict:
    """Register an enterprise. Roles: zone, admin."""
    return service.register_enterprise(uow, actor, body.to_input())


@router.post("/enterprises/startup", status_code=201)
def start_up_enterprise(body: StartupBody, uow: Uow, actor: ZoneStaff) -> dict:
    """Enterprise start-up in one filing: registration, licences applied for, first user.
    Idempotent by client_reference. Roles: zone, admin."""
    return service.start_up_enterprise(
        uow, actor, body.client_reference, body.enterprise.to_input(),
        [lic.licence_type for lic in body.licences],
        body.first_user.model_dump(mode="json") if body.first_user else None)


@router.get("/enterprises/{enterprise_id}")
def get_enterprise(enterprise_id: str, uow: Uow, actor: Anyone) -> dict:
    """One enterprise, by id or credit code. Roles: any (tenancy applies)."""
    return service.get_enterprise(uow, actor, enterprise_id)


@router.patch("/enterprises/{enterprise_id}")
def update_enterprise(enterprise_id: str, body: EnterprisePatch, uow: Uow, actor: ZoneStaff) -> dict:
    """Change an enterprise's particulars. Roles: zone, admin."""
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    return service.update_enterprise(uow, actor, enterprise_id, changes, body.version)


@router.get("/enterprises/{enterprise_id}/obligations")
def enterprise_obligations(enterprise_id: str, uow: Uow, actor: ZoneStaff) -> dict:
    """What still keeps the enterprise from withdrawing. Roles: zone, admin."""
    enterprise = service.get_enterprise(uow, actor, enterprise_id)
    return {"obligations": [p.as_dict() for p in service.open_obligations(uow, enterprise["id"])]}


@router.post("/enterprises/{enterprise_id}/withdraw")
def withdraw_enterprise(enterprise_id: str, body: WithdrawBody, uow: Uow, actor: ZoneStaff) -> dict:
    """Electronic withdrawal; 409 with every open obligation while any remain. Roles: zone, admin."""
    return service.withdraw_enterprise(uow, actor, enterprise_id, body.reason)


# --- agencies ------------------------------------------------------------------------------------

class AgencyBody(Schema):
    code: str = Field(max_length=20)
    kind: str
    name_en: str = Field(max_length=200)
    name_zh: str = Field(default="", max_length=200)
    parent_code: str | None = None
    location: str | None = Field(default=None, max_length=10)


@router.get("/agencies")
def list_agencies(uow: Uow, actor: Anyone, kind: str | None = None) -> dict:
    """Customs offices, quarantine and licensing authorities, the zone. Roles: any."""
    return {"items": service.list_agencies(uow, kind)}


@router.post("/agencies", status_code=201)
def create_agency(body: AgencyBody, uow: Uow, actor: Admin) -> dict:
    """Roles: admin."""
    return service.create_agency(uow, actor, **body.model_dump())


# --- users and API keys --------------------------------------------------------------------------

class UserBody(Schema):
    username: str = Field(max_length=64)
    password: str = Field(max_length=200)
    role: str
    display_name: str = Field(default="", max_length=200)
    enterprise_uscc: str | None = None
    agency_code: str | None = None


class PasswordBody(Schema):
    password: str = Field(max_length=200)


class ActiveBody(Schema):
    active: bool


class KeyBody(Schema):
    name: str = Field(min_length=1, max_length=100)


@router.get("/users")
def list_users(uow: Uow, actor: Admin) -> dict:
    """Roles: admin."""
    return {"items": service.list_users(uow, actor)}


@router.post("/users", status_code=201)
def create_user(body: UserBody, uow: Uow, actor: Admin) -> dict:
    """Roles: admin."""
    return service.create_user(uow, actor, **body.model_dump())


@router.post("/users/{user_id}/password")
def reset_password(user_id: str, body: PasswordBody, uow: Uow, actor: Admin) -> dict:
    """Set a new password (also unlocks, ends the user's sessions). Roles: admin."""
    return service.reset_password(uow, actor, user_id, body.password)


@router.post("/users/{user_id}/unlock")
def unlock_user(user_id: str, uow: Uow, actor: Admin) -> dict:
    """Roles: admin."""
    return service.unlock_user(uow, actor, user_id)


@router.post("/users/{user_id}/active")
def set_user_active(user_id: str, body: ActiveBody, uow: Uow, actor: Admin) -> dict:
    """Roles: admin."""
    return service.set_user_active(uow, actor, user_id, body.active)


@router.get("/api-keys")
def list_api_keys(uow: Uow, actor: Anyone) -> dict:
    """The caller's API keys (never their secrets). Roles: any."""
    return {"items": service.list_api_keys(uow, actor)}


@router.post("/api-keys", status_code=201)
def create_api_key(body: KeyBody, uow: Uow, actor: Anyone) -> dict:
    """A new key; its secret is in this answer and nowhere else, ever. Roles: any."""
    return service.create_api_key(uow, actor, body.name)


@router.post("/api-keys/{key_id}/rotate", status_code=201)
def rotate_api_key(key_id: str, uow: Uow, actor: Anyone) -> dict:
    """Revoke the key and issue its successor. Roles: any (own keys; admin all)."""
    return service.rotate_api_key(uow, actor, key_id)


@router.delete("/api-keys/{key_id}")
def revoke_api_key(key_id: str, uow: Uow, actor: Anyone) -> dict:
    """Roles: any (own keys; admin all)."""
    return service.revoke_api_key(uow, actor, key_id)


# --- broker authorisations -----------------------------------------------------------------------

class AuthorisationBody(Schema):
    broker_uscc: str = Field(max_length=40)
    valid_from: date
    valid_to: date | None = None


@router.get("/authorisations")
def list_authorisations(uow: Uow, actor: Anyone) -> dict:
    """Broker authorisations given or held by the caller's enterprise. Roles: any."""
    return {"items": service.list_authorisations(uow, actor)}


@router.post("/authorisations", status_code=201)
def authorise_broker(body: AuthorisationBody, uow: Uow,
                     actor: Annotated[Actor, allow(Role.TRADER)]) -> dict:
    """A trader authorises a broker to lodge for it. Roles: trader."""
    return service.authorise_broker(uow, actor, body.broker_uscc, body.valid_from, body.valid_to)


@router.post("/authorisations/{authorisation_id}/revoke")
def revoke_authorisation(authorisation_id: str, uow: Uow,
                         actor: Annotated[Actor, allow(Role.TRADER, Role.ZONE, Role.ADMIN)]) -> dict:
    """Roles: trader (its own), zone, admin."""
    return service.revoke_broker_authorisation(uow, actor, authorisation_id)


# --- licences ------------------------------------------------------------------------------------

class LicenceBody(Schema):
    enterprise_uscc: str = Field(max_length=40)
    licence_type: str
    number: str = Field(max_length=64)
    issuer: str = Field(max_length=200)
    valid_from: date
    valid_to: date | None = None
    scope: dict | None = None


class LicenceDecision(Schema):
    grant: bool
    reason: str = Field(default="", max_length=1000)
    number: str | None = Field(default=None, max_length=64)
    valid_to: date | None = None


@router.get("/licences")
def list_licences(uow: Uow, actor: Anyone, enterprise_id: str | None = None,
                  status: str | None = None) -> dict:
    """Licences: officers see all, an enterprise its own. Roles: any."""
    return {"items": service.list_licences(uow, actor, enterprise_id, status)}


@router.post("/licences", status_code=201)
def record_licence(body: LicenceBody, uow: Uow,
                   actor: Annotated[Actor, allow(Role.LICENSING, Role.ZONE, Role.ADMIN)]) -> dict:
    """Record a licence held. Roles: licensing, zone, admin."""
    return service.record_licence(uow, actor, **body.model_dump())


@router.post("/licences/{licence_id}/decision")
def decide_licence(licence_id: str, body: LicenceDecision, uow: Uow,
                   actor: Annotated[Actor, allow(Role.LICENSING, Role.ZONE, Role.ADMIN)]) -> dict:
    """Grant or refuse a licence applied for. Roles: licensing, zone, admin."""
    return service.decide_licence(uow, actor, licence_id, body.grant, body.reason, body.number,
                                  body.valid_to)


