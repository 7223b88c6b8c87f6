"""Registry pages: log in and out, the home dashboard, enterprises, licences, users, API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from tradewindow.platform.audit import recent_audit
from tradewindow.platform.auth import ALL_ROLES, Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import DomainError, Problem, require
from tradewindow.platform.web import (
    SESSION_COOKIE,
    add_dashboard_cards,
    add_nav,
    dashboard_cards,
    get_uow,
    optional_actor,
    page_actor,
    render,
)
from tradewindow.registry import service
from tradewindow.registry.model import LICENCE_TYPES, ZONE_SECTORS, CreditTier, EnterpriseInput

router = APIRouter(include_in_schema=False)
Uow = Annotated[UnitOfWork, Depends(get_uow)]
PageActor = Annotated[Actor, Depends(page_actor)]

add_nav("Home", "/", ALL_ROLES, order=0)
add_nav("Enterprises", "/enterprises", {Role.ZONE, Role.ADMIN, Role.CUSTOMS, Role.QUARANTINE,
                                        Role.LICENSING, Role.BANK, Role.TRADER, Role.BROKER}, order=10)
add_nav("Licences", "/licences", ALL_ROLES - {Role.BANK}, order=60)
add_nav("Users", "/users", {Role.ADMIN}, order=90)
add_nav("API keys", "/account/keys", ALL_ROLES, order=95)

ROLE_INTROS = {
    Role.TRADER: "Lodge declarations, keep your bonded books, follow your consignments.",
    Role.BROKER: "Lodge for the traders who authorised you.",
    Role.CUSTOMS: "Decide lanes, inspect, assess and release.",
    Role.QUARANTINE: "Decide the quarantine tasks raised for your agency.",
    Role.LICENSING: "Decide licence applications and licence checks.",
    Role.ZONE: "Register enterprises, follow the zone's figures.",
    Role.BANK: "Take bills of lading in pledge and release them.",
    Role.CARRIER: "Report consignments, seals and events; issue railway bills of lading.",
    Role.PLATFORM: "Send cross-border e-commerce orders.",
    Role.PAYMENT: "Send payments for cross-border e-commerce orders.",
    Role.LOGISTICS: "Send waybills for cross-border e-commerce parcels.",
    Role.ADMIN: "Users, keys, reference data and the calendar.",
}


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect would let a phishing link bounce through our login.
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Any:
    return render(request, "login.html", None, next=_safe_next(next), error=None, username="",
                  demo_mode=request.app.state.settings.demo_mode)


@router.post("/login")
def login(request: Request, uow: Uow, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/") -> Any:
    try:
        _, session = service.log_in(uow, username, password, kind="session")
    except DomainError as exc:
        return render(request, "login.html", None, status_code=401, next=_safe_next(next),
                      error=exc.problems[0].message, username=username,
                      demo_mode=request.app.state.settings.demo_mode)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax",
                        secure=request.app.state.settings.secure_cookies,
                        max_age=request.app.state.settings.token_hours * 3600)
    return response


@router.post("/logout")
def logout(request: Request, uow: Uow, actor: Annotated[Actor | None, Depends(optional_actor)]) -> Any:
    if session := request.cookies.get(SESSION_COOKIE):
        service.log_out(uow, session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/")
def dashboard(request: Request, uow: Uow, actor: PageActor) -> Any:
    cards = dashboard_cards(uow, actor)
    recent = []
    if actor.is_(Role.ADMIN, Role.ZONE):
        with uow.read() as conn:
            recent = recent_audit(conn, limit=15)
    return render(request, "dashboard.html", actor, cards=cards, recent=recent,
                  role_intro=ROLE_INTROS.get(actor.role, ""))


def _registry_cards(uow: UnitOfWork, actor: Actor) -> list[dict]:
    cards = []
    if actor.is_(Role.ZONE, Role.ADMIN, Role.CUSTOMS, Role.QUARANTINE, Role.LICENSING, Role.BANK):
        active = service.list_enterprises(uow, actor, status="active", limit=1)["total"]
        cards.append({"label": "Active enterprises", "figure": active, "href": "/enterprises"})
    if actor.is_(Role.LICENSING, Role.ZONE, Role.ADMIN):
        pending = len(service.list_licences(uow, actor, status="applied"))
        cards.append({"label": "Licence applications to decide", "figure": pending,
                      "href": "/licences?status=applied"})
    if actor.enterprise_id:
        mine = service.get_enterprise(uow, actor, actor.enterprise_id)
        cards.append({"label": "Your enterprise", "figure": mine["name_en"] or mine["name_zh"],
                      "href": f"/enterprises/{mine['id']}"})
        held = len(service.list_licences(uow, actor, status="granted"))
        cards.append({"label": "Licences held", "figure": held, "href": "/licences"})
    return cards


add_dashboard_cards(_registry_cards, order=90)


# --- enterprises ---------------------------------------------------------------------------------

@router.get("/enterprises")
def enterprise_list(request: Request, uow: Uow, actor: PageActor, q: str = "", sector: str = "",
                    status: str = "", page: int = 1) -> Any:
    page = max(page, 1)
    result = service.list_enterprises(uow, actor, q or None, sector or None, status or None,
                                      limit=50, offset=(page - 1) * 50)
    template = "registry/_enterprise_rows.html" if request.headers.get("hx-request") else \
        "registry/enterprises.html"
    return render(request, template, actor, result=result, q=q, sector=sector, status=status,
                  page=page, sectors=ZONE_SECTORS)


def _empty_form() -> dict:
    return {"uscc": "", "name_zh": "", "name_en": "", "address": "", "sector": "liangjiang",
            "business_scope": "", "kinds": ["trader"], "credit_tier": "general"}


def _form_context(values: dict, problems: list[Problem], **extra: Any) -> dict:
    return {"values": values, "errors": {p.path: p.message for p in problems},
            "problems": problems, "sectors": ZONE_SECTORS, "tiers": [t.value for t in CreditTier],
            "kinds": ["trader", "broker", "platform", "payment", "logistics", "carrier", "bank"],
            **extra}


def _require_zone_staff(actor: Actor) -> None:
    # The service refuses the submission anyway; refusing the form spares filling it in for nothing.
    require(actor.is_(*service.ZONE_STAFF), "role_not_allowed", "Only the zone authority edits enterprises.")


@router.get("/enterprises/new")
def enterprise_new(request: Request, actor: PageActor) -> Any:
    _require_zone_staff(actor)
    return render(request, "registry/enterprise_form.html", actor,
                  **_form_context(_empty_form(), [], editing=None))


@router.post("/enterprises/new")
async def enterprise_create(request: Request, uow: Uow, actor: PageActor) -> Any:
    values = await _enterprise_values(request)
    try:
        created = service.register_enterprise(uow, actor, _input(values))
    except DomainError as exc:
        return render(request, "registry/enterprise_form.html", actor, status_code=exc.status,
                      **_form_context(values, exc.problems, editing=None))
    return RedirectResponse(f"/enterprises/{created['id']}?created=1", status_code=303)


@router.get("/enterprises/startup")
def startup_form(request: Request, actor: PageActor) -> Any:
    _require_zone_staff(actor)
    values = {**_empty_form(), "client_reference": "", "licences": [], "first_username": "", "first_role": "trader"}
    return render(request, "registry/startup.html", actor, licence_types=LICENCE_TYPES,
                  **_form_context(values, [], editing=None))


@router.post("/enterprises/startup")
async def startup_file(request: Request, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    values = {**await _enterprise_values(request), "client_reference": str(form.get("client_reference", "")).strip(),
              "licences": [str(v) for v in form.getlist("licences")],
              "first_username": str(form.get("first_username", "")).strip(),
              "first_role": str(form.get("first_role", "trader"))}
    first_user = None
    if values["first_username"]:
        first_user = {"username": values["first_username"], "password": str(form.get("first_password", "")),
                      "role": values["first_role"]}
    try:
        filed = service.start_up_enterprise(uow, actor, values["client_reference"], _input(values),
                                            values["licences"], first_user)
    except DomainError as exc:
        return render(request, "registry/startup.html", actor, status_code=exc.status, licence_types=LICENCE_TYPES,
                      **_form_context(values, exc.problems, editing=None))
    return RedirectResponse(f"/enterprises/{filed['enterprise']['id']}?created=1", status_code=303)


@router.get("/enterprises/{enterprise_id}")
def enterprise_detail(request: Request, enterprise_id: str, uow: Uow, actor: PageActor,
                      created: int = 0) -> Any:
    enterprise = service.get_enterprise(uow, actor, enterprise_id)
    licences = service.list_licences(uow, actor, enterprise_id=enterprise["id"])
    obligations = service.open_obligations(uow, enterprise["id"]) if actor.is_(Role.ZONE, Role.ADMIN) else []
    return render(request, "registry/enterprise_detail.html", actor, enterprise=enterprise,
                  licences=licences, obligations=obligations, created=created,
                  sectors=ZONE_SECTORS, withdraw_errors=[])


@router.get("/enterprises/{enterprise_id}/edit")
def enterprise_edit(request: Request, enterprise_id: str, uow: Uow, actor: PageActor) -> Any:
    _require_zone_staff(actor)
    enterprise = service.get_enterprise(uow, actor, enterprise_id)
    return render(request, "registry/enterprise_form.html", actor,
                  **_form_context(dict(enterprise), [], editing=enterprise))


@router.post("/enterprises/{enterprise_id}/edit")
async def enterprise_update(request: Request, enterprise_id: str, uow: Uow, actor: PageActor) -> Any:
    enterprise = service.get_enterprise(uow, actor, enterprise_id)
    values = await _enterprise_values(request)
    changes = {k: values[k] for k in service.EDITABLE_FIELDS}
    try:
        service.update_enterprise(uow, actor, enterprise_id, changes, int(values.get("version") or 0) or None)
    except DomainError as exc:
        return render(request, "registry/enterprise_form.html", actor, status_code=exc.status,
                      **_form_context({**values, "uscc": enterprise["uscc"]}, exc.problems,
                                      editing=enterprise))
    return RedirectResponse(f"/enterprises/{enterprise_id}", status_code=303)


@router.post("/enterprises/{enterprise_id}/withdraw")
async def enterprise_withdraw(request: Request, enterprise_id: str, uow: Uow, actor: PageActor) -> Any:
    reason = str((await request.form()).get("reason", ""))
    try:
        service.withdraw_enterprise(uow, actor, enterprise_id, reason)
    except DomainError as exc:
        enterprise = service.get_enterprise(uow, actor, enterprise_id)
        return render(request, "registry/enterprise_detail.html", actor, status_code=exc.status,
                      enterprise=enterprise, licences=service.list_licences(uow, actor, enterprise["id"]),
                      obligations=[], created=0, sectors=ZONE_SECTORS, withdraw_errors=exc.problems)
    return RedirectResponse(f"/enterprises/{enterprise_id}", status_code=303)


async def _enterprise_values(request: Request) -> dict:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in
              ("uscc", "name_zh", "name_en", "address", "sector", "business_scope", "credit_tier",
               "version")}
    values["kinds"] = [str(k) for k in form.getlist("kinds")]
    return values


def _input(values: dict) -> EnterpriseInput:
    return EnterpriseInput(uscc=values["uscc"], name_zh=values["name_zh"], name_en=values["name_en"],
                           address=values["address"], sector=values["sector"],
                           business_scope=values["business_scope"], kinds=tuple(values["kinds"]),
                           credit_tier=values["credit_tier"] or "general")


# --- licences ------------------------------------------------------------------------------------

@router.get("/licences")
def licence_list(request: Request, uow: Uow, actor: PageActor, status: str = "") -> Any:
    licences = service.list_licences(uow, actor, status=status or None)
    return render(request, "registry/licences.html", actor, licences=licences, status=status,
                  licence_types=LICENCE_TYPES, errors=[])


@router.post("/licences/{licence_id}/decision")
async def licence_decide(request: Request, licence_id: str, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    try:
        service.decide_licence(uow, actor, licence_id, form.get("grant") == "yes",
                               str(form.get("reason", "")), str(form.get("number", "")) or None)
    except DomainError as exc:
        return render(request, "registry/licences.html", actor, status_code=exc.status,
                      licences=service.list_licences(uow, actor), status="",
                      licence_types=LICENCE_TYPES, errors=exc.problems)
    return RedirectResponse("/licences?status=applied", status_code=303)


# --- users and keys ------------------------------------------------------------------------------

@router.get("/users")
def user_list(request: Request, uow: Uow, actor: PageActor) -> Any:
    return render(request, "registry/users.html", actor, users=service.list_users(uow, actor),
                  roles=[r.value for r in Role], errors=[], values={})


@router.post("/users")
async def user_create(request: Request, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in
              ("username", "password", "role", "display_name", "enterprise_uscc", "agency_code")}
    try:
        service.create_user(uow, actor, values["username"], values["password"], values["role"],
                            values["display_name"], values["enterprise_uscc"] or None,
                            values["agency_code"] or None)
    except DomainError as exc:
        return render(request, "registry/users.html", actor, status_code=exc.status,
                      users=service.list_users(uow, actor), roles=[r.value for r in Role],
                      errors=exc.problems, values=values)
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{user_id}/unlock")
def user_unlock(user_id: str, uow: Uow, actor: PageActor) -> Any:
    service.unlock_user(uow, actor, user_id)
    return RedirectResponse("/users", status_code=303)


@router.get("/account/keys")
def key_list(request: Request, uow: Uow, actor: PageActor) -> Any:
    return render(request, "registry/keys.html", actor, keys=service.list_api_keys(uow, actor),
                  new_key=None)


@router.post("/account/keys")
async def key_create(request: Request, uow: Uow, actor: PageActor) -> Any:
    name = str((await request.form()).get("name", ""))
    new_key = service.create_api_key(uow, actor, name)
    # The secret is shown on this one response and never again.
    return render(request, "registry/keys.html", actor, status_code=201,
                  keys=service.list_api_keys(uow, actor), new_key=new_key)


@router.post("/account/keys/{key_id}/rotate")
def key_rotate(request: Request, key_id: str, uow: Uow, actor: PageActor) -> Any:
    new_key = service.rotate_api_key(uow, actor, key_id)
    return render(request, "registry/keys.html", actor, keys=service.list_api_keys(uow, actor),
                  new_key=new_key)


@router.post("/account/keys/{key_id}/revoke")
def key_revoke(key_id: str, uow: Uow, actor: PageActor) -> Any:
    service.revoke_api_key(uow, actor, key_id)
    return RedirectResponse("/account/keys", status_code=303)


