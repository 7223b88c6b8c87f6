"""Titles pages: my bills of lading (railway and sea bills), issue a bill, a bill with its history
and the verification of its chain, the forms of each action, and the signing key of one's
enterprise.

Actions taken from these pages are signed by the platform with the party's custodial key. A party
that keeps its own key is never offered a form that would pretend to sign for it: the page shows
the command that signs on its own machine (`tradewindow titles ... --key KEY`) or the API flow
(prepare, sign, send), and a form posted anyway is refused with that advice."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from tradewindow.platform.auth import ENTERPRISE_ROLES, Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import DomainError, Problem, ValidationFailed, require
from tradewindow.platform.web import add_nav, get_uow, page_actor, render
from tradewindow.titles import service

router = APIRouter(include_in_schema=False)
Uow = Annotated[UnitOfWork, Depends(get_uow)]
PageActor = Annotated[Actor, Depends(page_actor)]

add_nav("Bills of lading", "/titles", set(ENTERPRISE_ROLES) | {Role.CUSTOMS}, order=45)
add_nav("Signing key", "/account/signing-key", ENTERPRISE_ROLES, order=96)

FORM_FIELDS = ("kind", "bol_number", "shipper_uscc", "consignee_uscc", "goods_description", "packages",
               "gross_mass_kg", "containers", "place_of_receipt", "place_of_delivery", "vessel", "voyage",
               "port_of_loading", "port_of_discharge", "consignment_reference")
# What a party that keeps its own key runs instead of a form ({number}, {to}: filled in).
COMMANDS = {
    "issue": "tradewindow titles issue BILL.json --key KEY --url {url} --api-key API_KEY",
    "endorse": "tradewindow titles endorse {number} --to {to} --key KEY --url {url} --api-key API_KEY",
    "pledge": "tradewindow titles pledge {number} --bank {to} --key KEY --url {url} --api-key API_KEY",
    "release-pledge": "tradewindow titles release {number} --key KEY --url {url} --api-key API_KEY",
    "take-over": "tradewindow titles take-over {number} --key KEY --url {url} --api-key API_KEY",
    "surrender": "tradewindow titles surrender {number} --key KEY --url {url} --api-key API_KEY",
    "void": "tradewindow titles void {number} --key KEY --url {url} --api-key API_KEY",
}
# Form action -> service function and the counterparty field it takes, if any.
ACTIONS = {
    "endorse": (service.endorse, "to_uscc"),
    "pledge": (service.pledge, "bank_uscc"),
    "release-pledge": (service.release_pledge, None),
    "take-over": (service.take_over, None),
    "surrender": (service.surrender, None),
    "void": (service.void, None),
}


@router.get("/titles")
def bill_list(request: Request, uow: Uow, actor: PageActor, status: str = "", held: int = 0,
              page: int = 1) -> Any:
    page = max(page, 1)
    result = service.list_bills(uow, actor, status or None, bool(held), limit=50, offset=(page - 1) * 50)
    return render(request, "titles/list.html", actor, result=result, status=status, held=held, page=page)


@router.get("/titles/new")
def bill_new(request: Request, uow: Uow, actor: PageActor) -> Any:
    require(actor.is_(*service.ISSUERS), "role_not_allowed", "Bills of lading are issued by carriers.")
    return render(request, "titles/issue.html", actor, values={k: "" for k in FORM_FIELDS} | {"kind": "railway_bill"},
                  problems=[], errors={}, key=_key(uow, actor), command=_command(request, "issue"))


@router.post("/titles/new")
async def bill_issue(request: Request, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in FORM_FIELDS}
    raw: dict[str, Any] = {k: v for k, v in values.items() if v}
    if "containers" in raw:
        raw["containers"] = [c for c in raw["containers"].replace(",", " ").split() if c]
    key = _key(uow, actor)
    try:
        _refuse_unless_custodial(request, key, "issue")
        issued = service.issue_bill(uow, actor, raw)
    except DomainError as exc:
        return render(request, "titles/issue.html", actor, status_code=exc.status, values=values,
                      problems=exc.problems, errors={p.path.split("[")[0]: p.message for p in exc.problems},
                      key=key, command=_command(request, "issue"))
    return RedirectResponse(f"/titles/{issued.bill['bol_number']}?done=issue", status_code=303)


@router.get("/titles/{bol_number}")
def bill_detail(request: Request, bol_number: str, uow: Uow, actor: PageActor, done: str = "") -> Any:
    return _detail(request, uow, actor, bol_number, done=done)


@router.post("/titles/{bol_number}/{action}")
async def bill_act(request: Request, bol_number: str, action: str, uow: Uow, actor: PageActor) -> Any:
    if action not in ACTIONS:
        return _detail(request, uow, actor, bol_number, status_code=404)
    form = await request.form()
    function, counterparty = ACTIONS[action]
    try:
        key = _key(uow, actor)
        if not (key and key["custodial"]):
            service.get_bill(uow, actor, bol_number)       # a bill the caller may not see stays a 404
            _refuse_unless_custodial(request, key, action, bol_number,
                                     str(form.get(counterparty, "")).strip() if counterparty else "")
        if counterparty:
            function(uow, actor, bol_number, str(form.get(counterparty, "")).strip())
        else:
            function(uow, actor, bol_number)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _detail(request, uow, actor, bol_number, status_code=exc.status, problems=exc.problems,
                       failed=action)
    return RedirectResponse(f"/titles/{bol_number}?done={action}", status_code=303)


def _detail(request: Request, uow: Uow, actor: Actor, bol_number: str, status_code: int = 200,
            problems: list | None = None, failed: str = "", done: str = "") -> Any:
    bill = service.get_bill(uow, actor, bol_number)
    verification = service.verify(uow, actor, bol_number)
    me = actor.enterprise_id
    may = {
        "endorse": bill["status"] == "active" and bill["holder"]["id"] == me,
        "pledge": bill["status"] == "active" and bill["holder"]["id"] == me,
        "surrender": bill["status"] == "active" and bill["holder"]["id"] == me,
        "release-pledge": bill["status"] == "pledged" and bill["pledgee"] and bill["pledgee"]["id"] == me,
        "take-over": bill["status"] == "pledged" and bill["pledgee"] and bill["pledgee"]["id"] == me,
        "void": bill["status"] == "active" and bill["sequence"] == 1 and bill["issuer"]["id"] == me,
    }
    key = _key(uow, actor) if me else None
    counterparty = {"endorse": "CREDIT_CODE", "pledge": "BANK_CREDIT_CODE"}
    commands = {action: _command(request, action, bill["bol_number"], counterparty.get(action, ""))
                for action, allowed in may.items() if allowed}
    return render(request, "titles/detail.html", actor, status_code=status_code, bill=bill,
                  verification=verification, may=may, problems=problems or [], failed=failed, done=done,
                  key=key, custodial=bool(key and key["custodial"]), commands=commands)


def _key(uow: UnitOfWork, actor: Actor) -> dict | None:
    return service.current_key(uow, actor.enterprise_id) if actor.enterprise_id else None


def _command(request: Request, action: str, number: str = "", to: str = "") -> str:
    return COMMANDS[action].format(number=number, to=to or "CREDIT_CODE", url=str(request.base_url).rstrip("/"))


def _refuse_unless_custodial(request: Request, key: dict | None, action: str, number: str = "",
                             to: str = "") -> None:
    """The page signs only with a key the platform holds; it never pretends to sign for a party
    that keeps its own."""
    if key is not None and key["custodial"]:
        return
    if key is None:
        message = ("Your enterprise has no signing key. Choose custodial signing on the Signing key page, or make "
                   "your own key (tradewindow titles keygen) and sign on your machine: " + _command(
                       request, action, number, to) + ".")
    else:
        message = ("Your enterprise signs with its own key, which the platform does not hold, so this page cannot "
                   "sign for you. Sign on your machine: " + _command(request, action, number, to) + " (or "
                   "through the API: prepare, sign, send).")
    raise ValidationFailed([Problem("signature", "sign_with_own_key", message)])


@router.get("/account/signing-key")
def key_page(request: Request, uow: Uow, actor: PageActor) -> Any:
    return render(request, "titles/keys.html", actor, keys=service.list_keys(uow, actor), problems=[])


@router.post("/account/signing-key")
async def key_register(request: Request, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    custodial = form.get("custodial") == "yes"
    public_key = str(form.get("public_key", "")).strip() or None
    try:
        service.register_key(uow, actor, None if custodial else public_key, custodial)
    except DomainError as exc:
        return render(request, "titles/keys.html", actor, status_code=exc.status,
                      keys=service.list_keys(uow, actor), problems=exc.problems)
    return RedirectResponse("/account/signing-key", status_code=303)
