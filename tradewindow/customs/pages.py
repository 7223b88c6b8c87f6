"""Customs pages: the declarations list, the lodge form (item rows added with htmx, a live tax
preview from the quote engine, a JSON file upload), a declaration with its stages and the actions
each role may take, the agency task queue, and the lane rules customs keeps as data.

Every action calls the one service function the API calls; a refusal is shown next to the field
its problem path names, with the values as entered."""

from __future__ import annotations

import base64
import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData, UploadFile

from tradewindow.customs import documents, model, selectivity, service
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import DomainError, Problem, Problems, ValidationFailed
from tradewindow.platform.ids import new_id
from tradewindow.platform.money import apportion
from tradewindow.platform.web import add_dashboard_cards, add_nav, get_uow, page_actor, render, templates
from tradewindow.registry import service as registry
from tradewindow.tariff import service as tariff

router = APIRouter(include_in_schema=False)
Uow = Annotated[UnitOfWork, Depends(get_uow)]
PageActor = Annotated[Actor, Depends(page_actor)]

add_nav("Declarations", "/declarations", {Role.TRADER, Role.BROKER, Role.CUSTOMS, Role.QUARANTINE,
                                          Role.LICENSING, Role.ZONE, Role.ADMIN}, order=30)
add_nav("Agency tasks", "/agency-tasks", {Role.QUARANTINE, Role.LICENSING}, order=31)
add_nav("Lane rules", "/lane-rules", {Role.CUSTOMS}, order=32)


def _dashboard(uow: UnitOfWork, actor: Actor) -> list[dict]:
    """What waits for this person: declarations by the status that concerns their role."""
    wanted = {
        Role.CUSTOMS: [("inspection", "Physical inspections to record"), ("document_check", "Document checks to do")],
        Role.TRADER: [("taxes_due", "Declarations with taxes due"), ("documents_requested", "Documents requested"),
                      ("agency_hold", "Waiting for agencies"), ("released", "Released")],
        Role.BROKER: [("taxes_due", "Declarations with taxes due"), ("documents_requested", "Documents requested"),
                      ("released", "Released")],
        Role.ZONE: [("released", "Declarations released"), ("agency_hold", "Waiting for agencies")],
    }.get(actor.role, [])
    cards = [{"label": label, "href": f"/declarations?status={status}",
              "figure": service.list_declarations(uow, actor, status=status, limit=1)["total"]}
             for status, label in wanted]
    if actor.is_(Role.QUARANTINE, Role.LICENSING):
        queue = service.task_queue(uow, actor)
        cards.append({"label": "Agency tasks to decide", "figure": len(queue), "href": "/agency-tasks"})
        cards.append({"label": "Overdue tasks", "figure": sum(t["overdue"] for t in queue), "href": "/agency-tasks"})
    return cards


add_dashboard_cards(_dashboard, order=10)

PAGE_SIZE = 50
HEADER_FIELDS = ("client_reference", "type", "trader_uscc", "customs_office", "transport_mode",
                 "transport_document", "country_of_dispatch", "country_of_origin", "country_of_destination",
                 "incoterm", "currency", "invoice_total", "freight", "insurance")
ITEM_FIELDS = ("tariff_code", "description", "origin", "quantity", "unit", "net_mass_kg", "gross_mass_kg",
               "value", "licence_numbers")
INCOTERMS = ("CIF", "FOB", "CFR")
STAGES = (("lodged_at", "Lodged"), ("accepted_at", "Accepted"), ("lane_cleared_at", "Lane cleared"),
          ("tasks_done_at", "Agency tasks done"), ("paid_at", "Paid"), ("released_at", "Released"),
          ("exited_at", "Exited"))
TIERS = selectivity.CREDIT_TIERS
LANES = [lane.value for lane in selectivity.Lane]


def _money(amount: str | Decimal | None) -> str:
    """'53846.25' -> '53,846.25' (the tariff pages register the same filter)."""
    return "" if amount is None or amount == "" else format(Decimal(amount), ",.2f")


templates.env.filters.setdefault("money", _money)


def _partial(request: Request) -> bool:
    return bool(request.headers.get("hx-request")) and not request.headers.get("hx-history-restore-request")


def _customs_offices(uow: UnitOfWork) -> list[dict]:
    return registry.list_agencies(uow, kind="customs")


# --- the list ------------------------------------------------------------------------------------

@router.get("/declarations")
def declaration_list(request: Request, uow: Uow, actor: PageActor, status: str = "", lane: str = "",
                     type: str = "", q: str = "", page: int = 1) -> Any:
    page = max(page, 1)
    result = service.list_declarations(uow, actor, status or None, lane or None, type or None,
                                       q.strip()[:64] or None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    template = "customs/_declaration_rows.html" if _partial(request) else "customs/declarations.html"
    return render(request, template, actor, result=result, status=status, lane=lane, type=type, q=q,
                  page=page, statuses=[s.value for s in model.Status], lanes=LANES,
                  types=[t.value for t in model.DeclarationType])


# --- the lodge form ------------------------------------------------------------------------------

def _blank_item() -> dict[str, str]:
    return dict.fromkeys(ITEM_FIELDS, "")


def _blank_values(uow: UnitOfWork) -> dict:
    offices = _customs_offices(uow)
    return {**dict.fromkeys(HEADER_FIELDS, ""), "client_reference": f"WEB-{new_id()[-12:].upper()}",
            "type": "import", "customs_office": offices[-1]["code"] if offices else "",
            "transport_mode": "rail", "incoterm": "CIF", "currency": "USD", "items": [_blank_item()]}


def _form_values(form: FormData) -> dict:
    """The form as entered; item fields come as parallel lists, one input of each per row, and
    rows left empty are dropped."""
    values: dict[str, Any] = {name: str(form.get(name, "")).strip() for name in HEADER_FIELDS}
    columns = {name: [str(v) for v in form.getlist(name)] for name in ITEM_FIELDS}
    rows = max((len(c) for c in columns.values()), default=0)
    items = []
    for index in range(rows):
        row = {name: (columns[name][index].strip() if index < len(columns[name]) else "") for name in ITEM_FIELDS}
        if any(row.values()):
            items.append(row)
    values["items"] = items
    return values


def _filing(values: dict) -> dict:
    """The JSON filing of POST /api/v1/declarations that the form says (blank fields left out)."""
    raw: dict[str, Any] = {name: values[name] for name in HEADER_FIELDS if values.get(name)}
    raw["items"] = []
    for row in values["items"]:
        item: dict[str, Any] = {name: row[name] for name in ITEM_FIELDS if row.get(name) and name != "licence_numbers"}
        licences = [n.strip() for n in row.get("licence_numbers", "").split(",") if n.strip()]
        if licences:
            item["licence_numbers"] = licences
        raw["items"].append(item)
    return raw


def _values_from_filing(raw: object) -> dict:
    """Form values from an uploaded JSON filing, so a refused upload can be corrected in the form."""
    values: dict[str, Any] = dict.fromkeys(HEADER_FIELDS, "")
    values["items"] = []
    if not isinstance(raw, dict):
        return values
    for name in HEADER_FIELDS:
        if isinstance(raw.get(name), str | int | float) and not isinstance(raw.get(name), bool):
            values[name] = str(raw[name])
    for item in raw.get("items") or [] if isinstance(raw.get("items"), list) else []:
        row = _blank_item()
        if isinstance(item, dict):
            for name in ITEM_FIELDS:
                value = item.get(name)
                if name == "licence_numbers" and isinstance(value, list):
                    row[name] = ", ".join(str(v) for v in value)
                elif isinstance(value, str | int | float) and not isinstance(value, bool):
                    row[name] = str(value)
        values["items"].append(row)
    return values


def _field_of(path: str, item_count: int) -> str | None:
    """Where a problem shows in the form: 'currency', 'items[0].value', 'items[1]' (the row),
    or None (the list at the top)."""
    if path in HEADER_FIELDS or path == "items":
        return path
    if not path.startswith("items["):
        return None
    index_text, _, rest = path[len("items["):].partition("]")
    if not index_text.isdigit() or int(index_text) >= item_count:
        return None
    name = rest.removeprefix(".").split("[")[0].split(".")[0]
    return f"items[{index_text}].{name}" if name in ITEM_FIELDS else f"items[{index_text}]"


def _lodge_context(uow: UnitOfWork, actor: Actor, values: dict, problems: list[Problem]) -> dict:
    errors: dict[str, str] = {}
    general: list[Problem] = []
    for problem in problems:
        field = _field_of(problem.path, len(values["items"]))
        if field is None:
            general.append(problem)
        else:
            errors[field] = f"{errors[field]} {problem.message}" if field in errors else problem.message
    if not values["items"]:
        values = {**values, "items": [_blank_item()]}
    return {"values": values, "errors": errors, "problems": problems, "general_problems": general,
            "offices": _customs_offices(uow), "types": [t.value for t in model.DeclarationType],
            "transport_modes": sorted(model.TRANSPORT_MODES), "incoterms": INCOTERMS,
            "is_broker": actor.is_(Role.BROKER), "preview": None, "preview_problems": []}


@router.get("/declarations/new")
def declaration_new(request: Request, uow: Uow, actor: PageActor) -> Any:
    return render(request, "customs/lodge.html", actor, **_lodge_context(uow, actor, _blank_values(uow), []))


@router.get("/declarations/new/item")
def declaration_item_row(request: Request, actor: PageActor) -> Any:
    """One more, empty item row (the "add item" button appends it)."""
    return render(request, "customs/_lodge_item.html", actor, row=_blank_item(), index=None, errors={})


@router.post("/declarations/new")
async def declaration_lodge(request: Request, uow: Uow, actor: PageActor) -> Any:
    values = _form_values(await request.form())
    return _lodge(request, uow, actor, _filing(values), values)


@router.post("/declarations/upload")
async def declaration_upload(request: Request, uow: Uow, actor: PageActor) -> Any:
    """A JSON file of the API's filing (or a CSV file of one filing, a row per item): lodged as
    is; when refused, its values fill the form."""
    upload = (await request.form()).get("file")
    content = await upload.read() if isinstance(upload, UploadFile) else b""
    if isinstance(upload, UploadFile) and (upload.filename or "").lower().endswith(".csv"):
        return _lodge_csv(request, uow, actor, content)
    try:
        raw = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        values = _blank_values(uow)
        problem = Problem("file", "malformed_json", f"The file is not a JSON declaration ({exc}).")
        return render(request, "customs/lodge.html", actor, status_code=422,
                      **_lodge_context(uow, actor, values, [problem]))
    return _lodge(request, uow, actor, raw, _values_from_filing(raw))


def _lodge_csv(request: Request, uow: UnitOfWork, actor: Actor, content: bytes) -> Any:
    try:
        filings, problems = model.filings_from_csv(content.decode("utf-8-sig"))
    except UnicodeDecodeError:
        filings, problems = [], Problems([Problem("file", "not_utf8", "The file is not UTF-8 text.")])
    if not problems and len(filings) != 1:
        problems.add("file", "one_filing_per_upload",
                     "Upload one declaration per file here; `tradewindow declarations lodge` takes many.")
    if problems:
        return render(request, "customs/lodge.html", actor, status_code=422,
                      **_lodge_context(uow, actor, _blank_values(uow), problems.items))
    return _lodge(request, uow, actor, filings[0], _values_from_filing(filings[0]))


def _lodge(request: Request, uow: UnitOfWork, actor: Actor, raw: object, values: dict) -> Any:
    try:
        lodged = service.lodge_declaration(uow, actor, raw)
    except DomainError as exc:
        return render(request, "customs/lodge.html", actor, status_code=exc.status,
                      **_lodge_context(uow, actor, values, exc.problems))
    flag = "created=1" if lodged.created else "repeat=1"
    return RedirectResponse(f"/declarations/{lodged.declaration['id']}?{flag}", status_code=303)


@router.post("/declarations/new/preview")
async def declaration_preview(request: Request, uow: Uow, actor: PageActor) -> Any:
    """The duties and taxes the items would pay today: the quote engine on the same request a
    lodged filing makes (freight and insurance spread over the items by value)."""
    values = _form_values(await request.form())
    preview, problems, note = None, [], ""
    rows = [r for r in values["items"] if r["tariff_code"] and r["value"]]
    if values["type"] and values["type"] not in {t.value for t in model.TAXED_TYPES}:
        note = f"A {values['type'].replace('_', ' ')} declaration pays no duty or tax."
    elif not rows:
        note = "Enter a tariff code and a value to see the duties and taxes."
    else:
        try:
            preview = tariff.quote(uow, actor, _quote_request(values, rows))
        except ValidationFailed as exc:
            problems = exc.problems
    return render(request, "customs/_preview.html", actor, preview=preview, preview_problems=problems,
                  note=note, rows=rows)


def _quote_request(values: dict, rows: list[dict]) -> dict:
    incoterm = values["incoterm"] or "CIF"
    currency = values["currency"] or None
    weights = [_decimal(r["value"]) for r in rows]
    spread = all(w is not None and w > 0 for w in weights)
    freight, insurance = _decimal(values["freight"]), _decimal(values["insurance"])
    freights = apportion(freight, weights, currency or "CNY") if spread and freight else [None] * len(rows)
    insurances = apportion(insurance, weights, currency or "CNY") if spread and insurance is not None \
        else [None] * len(rows)
    items = []
    for row, item_freight, item_insurance in zip(rows, freights, insurances, strict=True):
        item: dict[str, Any] = {"tariff_code": row["tariff_code"], "origin": row["origin"] or None,
                                "currency": currency, "quantity": row["quantity"] or None}
        if row["unit"]:
            item["unit"] = row["unit"]
        if incoterm == "CIF":
            item["customs_value"] = row["value"]
        else:
            item.update(price=row["value"], incoterm=incoterm)
            if incoterm == "FOB" and item_freight is not None:
                item["freight"] = str(item_freight)
            if item_insurance is not None:
                item["insurance"] = str(item_insurance)
        items.append(item)
    return {"regime": "general", "items": items}


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


# --- one declaration -----------------------------------------------------------------------------

def _detail_context(uow: UnitOfWork, actor: Actor, declaration: dict, **extra: Any) -> dict:
    explanation = None
    if actor.is_(Role.CUSTOMS, Role.ADMIN):
        why = service.lane_explanation(uow, actor, declaration["id"])
        explanation = {**why, "sentences": selectivity.explain(selectivity.parse_decision(why["explanation"]))}
    paid = sum((Decimal(p["amount"]) for p in declaration["payments"] if p["kind"] != "refund"), Decimal(0))
    due = max(Decimal(declaration["total_due"]) - paid, Decimal(0))
    nothing_due = Decimal(declaration["total_due"]) == 0
    stages = [(label, declaration["stages"].get(key)) for key, label in STAGES
              if (key != "exited_at" or declaration["type"] in ("export", "reexport"))
              and (key != "paid_at" or not nothing_due)]
    if declaration["stages"].get("cancelled_at"):
        stages.append(("Cancelled", declaration["stages"]["cancelled_at"]))
    context = {"d": declaration, "explanation": explanation, "outstanding": due, "stages": stages,
               "is_declarant": actor.is_(Role.TRADER, Role.BROKER),
               "is_customs": actor.is_(Role.CUSTOMS), "document_types": list(model.DOCUMENT_TYPES),
               "content_types": sorted(model.DOCUMENT_CONTENT_TYPES), "action": None, "problems": [],
               "form": {}, "created": 0, "repeat": 0, "printouts": documents.available(declaration),
               "printout_titles": documents.TITLES}
    context.update(extra)
    return context


@router.get("/declarations/{declaration_id}")
def declaration_detail(request: Request, declaration_id: str, uow: Uow, actor: PageActor,
                       created: int = 0, repeat: int = 0, done: str = "") -> Any:
    declaration = service.get_declaration(uow, actor, declaration_id)
    return render(request, "customs/declaration.html", actor,
                  **_detail_context(uow, actor, declaration, created=created, repeat=repeat, done=done))


@router.get("/declarations/{declaration_id}/versions")
def declaration_versions(request: Request, declaration_id: str, uow: Uow, actor: PageActor) -> Any:
    declaration = service.get_declaration(uow, actor, declaration_id)
    return render(request, "customs/versions.html", actor, d=declaration,
                  versions=service.history(uow, actor, declaration_id))


@router.get("/declarations/{declaration_id}/print/{kind}")
def declaration_printout(declaration_id: str, kind: str, uow: Uow, actor: PageActor) -> Any:
    """The declaration, tax payment notice or release note as a page to print (A4)."""
    printout = documents.prepare(uow, actor, declaration_id, kind)
    pdf_url = f"/api/v1/declarations/{printout.declaration['id']}/printouts/{kind}?format=pdf"
    return HTMLResponse(documents.html(printout, pdf_url=pdf_url,
                                       back_url=f"/declarations/{printout.declaration['id']}"))


def _act(request: Request, uow: UnitOfWork, actor: Actor, declaration_id: str, action: str, form: dict,
         run: Any) -> Any:
    """Run one action; back to the declaration when it succeeds, the page with the problems
    next to the action's form when it does not."""
    try:
        run()
    except DomainError as exc:
        declaration = service.get_declaration(uow, actor, declaration_id)
        return render(request, "customs/declaration.html", actor, status_code=exc.status,
                      **_detail_context(uow, actor, declaration, action=action, problems=exc.problems,
                                        form=form))
    return RedirectResponse(f"/declarations/{declaration_id}?done={action}", status_code=303)


@router.post("/declarations/{declaration_id}/pay")
async def declaration_pay(request: Request, declaration_id: str, uow: Uow, actor: PageActor) -> Any:
    form = {k: str(v).strip() for k, v in (await request.form()).items() if isinstance(v, str)}
    amount = _decimal(form.get("amount", ""))

    def run() -> None:
        if amount is None:
            raise ValidationFailed("The amount is a number like 1234.56.", "not_a_number", "amount")
        service.record_payment(uow, actor, declaration_id, form.get("kind") or "payment",
                               form.get("reference", ""), amount)

    return _act(request, uow, actor, declaration_id, "pay", form, run)


@router.post("/declarations/{declaration_id}/cancel")
async def declaration_cancel(request: Request, declaration_id: str, uow: Uow, actor: PageActor) -> Any:
    form = {k: str(v).strip() for k, v in (await request.form()).items() if isinstance(v, str)}
    return _act(request, uow, actor, declaration_id, "cancel", form,
                lambda: service.cancel_declaration(uow, actor, declaration_id, form.get("reason", "")))


@router.post("/declarations/{declaration_id}/documents")
async def declaration_document(request: Request, declaration_id: str, uow: Uow, actor: PageActor) -> Any:
    data = await request.form()
    upload = data.get("file")
    form = {"type": str(data.get("type", ""))}
    raw: dict[str, Any] = {"type": form["type"] or None}
    if isinstance(upload, UploadFile) and upload.filename:
        content = await upload.read()
        raw.update(filename=upload.filename, content_type=(upload.content_type or "").split(";")[0] or None,
                   content_base64=base64.b64encode(content).decode())

    def run() -> None:
        if "filename" not in raw:
            raise ValidationFailed("Choose the file to attach.", "required", "file")
        service.add_document(uow, actor, declaration_id, raw)

    return _act(request, uow, actor, declaration_id, "document", form, run)


@router.post("/declarations/{declaration_id}/control")
async def declaration_control(request: Request, declaration_id: str, uow: Uow, actor: PageActor) -> Any:
    form = {k: str(v).strip() for k, v in (await request.form()).items() if isinstance(v, str)}

    def run() -> None:
        if form.get("conform") not in ("yes", "no"):
            raise ValidationFailed("Say whether the goods conform.", "required", "conform")
        service.record_control_result(uow, actor, declaration_id, form["conform"] == "yes",
                                      form.get("findings", ""))

    return _act(request, uow, actor, declaration_id, "control", form, run)


@router.post("/declarations/{declaration_id}/release-sealed")
def declaration_release_sealed(request: Request, declaration_id: str, uow: Uow, actor: PageActor) -> Any:
    return _act(request, uow, actor, declaration_id, "release_sealed", {},
                lambda: service.release_sealed(uow, actor, declaration_id))


@router.post("/declarations/{declaration_id}/exit")
def declaration_exit(request: Request, declaration_id: str, uow: Uow, actor: PageActor) -> Any:
    return _act(request, uow, actor, declaration_id, "exit", {},
                lambda: service.record_exit(uow, actor, declaration_id))


# --- agency tasks --------------------------------------------------------------------------------

@router.get("/agency-tasks")
def task_list(request: Request, uow: Uow, actor: PageActor, status: str = "open") -> Any:
    return render(request, "customs/agency_tasks.html", actor,
                  **_task_context(uow, actor, status, None, [], {}))


def _task_context(uow: UnitOfWork, actor: Actor, status: str, task_id: str | None, problems: list[Problem],
                  form: dict) -> dict:
    statuses = ["open", *(s.value for s in model.TaskStatus), "all"]
    status = status if status in statuses else "open"
    tasks = service.task_queue(uow, actor, None if status == "all" else status)
    return {"tasks": tasks, "status": status, "statuses": statuses, "failed_task": task_id,
            "problems": problems, "form": form,
            "may_decide": actor.is_(Role.QUARANTINE, Role.LICENSING)}


@router.post("/agency-tasks/{task_id}/decision")
async def task_decide(request: Request, task_id: str, uow: Uow, actor: PageActor) -> Any:
    form = {k: str(v).strip() for k, v in (await request.form()).items() if isinstance(v, str)}
    status = form.get("status") or "open"
    try:
        service.decide_task(uow, actor, task_id, form.get("decision", ""), form.get("reason", ""))
    except DomainError as exc:
        return render(request, "customs/agency_tasks.html", actor, status_code=exc.status,
                      **_task_context(uow, actor, status, task_id, exc.problems, form))
    return RedirectResponse(f"/agency-tasks?status={status}", status_code=303)


# --- lane rules ----------------------------------------------------------------------------------

PROFILE_TEXT_FIELDS = ("tariff_prefixes", "origins", "credit_tiers", "transport_modes")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _profile_values(profile: dict | None, office: str) -> dict:
    if profile is None:
        return {"id": "", "office": office, "name": "", "lane": "yellow", "probability": "0.1", "active": True,
                **dict.fromkeys(PROFILE_TEXT_FIELDS, ""), "first_declaration": False,
                "band_prefix": "", "band_unit": "", "band_minimum": "", "band_maximum": ""}
    definition = profile["profile"]
    conditions = definition["conditions"]
    band = conditions.get("value_band") or {}
    return {"id": profile["id"], "office": profile["office"], "name": definition["name"],
            "lane": definition["lane"], "probability": str(definition["probability"]),
            "active": definition["active"],
            **{name: ", ".join(conditions.get(name) or []) for name in PROFILE_TEXT_FIELDS},
            "first_declaration": conditions.get("first_declaration", False),
            "band_prefix": band.get("tariff_prefix") or "", "band_unit": band.get("unit") or "",
            "band_minimum": band.get("minimum") or "", "band_maximum": band.get("maximum") or ""}


def _settings_values(settings: selectivity.OfficeSettings) -> dict:
    return {"office": settings.office_code,
            **{f"rate_{lane}": str(settings.expected_rates.get(lane, "")) for lane in ("red", "yellow", "blue")},
            "minimum_random_rate": str(settings.minimum_random_rate),
            **{f"modifier_{tier}": str(settings.tier_modifiers.get(tier, "")) for tier in TIERS}}


def _profile_field(path: str) -> str:
    """'conditions.tariff_prefixes[0]' -> 'tariff_prefixes'; 'conditions.value_band.minimum' -> 'band_minimum'."""
    path = path.removeprefix("conditions.")
    if path.startswith("value_band"):
        rest = path.removeprefix("value_band").removeprefix(".")
        return "band_" + ({"tariff_prefix": "prefix"}.get(rest, rest) or "prefix")
    return path.split("[")[0].split(".")[0]


def _settings_field(path: str) -> str:
    """'expected_rates.red' -> 'rate_red'; 'tier_modifiers.general' -> 'modifier_general'."""
    head, _, tail = path.partition(".")
    if head == "expected_rates":
        return f"rate_{tail}" if tail else "expected_rates"
    if head == "tier_modifiers":
        return f"modifier_{tail}" if tail else "tier_modifiers"
    return head


def _errors(problems: list[Problem], to_field: Any) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in problems:
        field = to_field(problem.path)
        errors[field] = f"{errors[field]} {problem.message}" if field in errors else problem.message
    return errors


def _lane_context(uow: UnitOfWork, actor: Actor, office: str, *, profile_values: dict | None = None,
                  profile_problems: list[Problem] | None = None, settings_values: dict | None = None,
                  settings_problems: list[Problem] | None = None, edit: str = "", saved: str = "") -> dict:
    offices = _customs_offices(uow)
    codes = [o["code"] for o in offices]
    office = office if office in codes or office == service.ALL_OFFICES else (codes[-1] if codes else "")
    profiles = service.list_lane_profiles(uow, actor)
    editing = next((p for p in profiles if p["id"] == edit), None)
    return {
        "offices": offices, "office": office, "profiles": profiles, "saved": saved,
        "profile": profile_values or _profile_values(editing, office),
        "profile_problems": profile_problems or [],
        "profile_errors": _errors(profile_problems or [], _profile_field),
        "settings": settings_values or _settings_values(service.lane_settings_for(uow, office)),
        "settings_problems": settings_problems or [],
        "settings_errors": _errors(settings_problems or [], _settings_field),
        "lanes": [lane.value for lane in selectivity.SELECTING_LANES], "tiers": TIERS,
        "transport_modes": sorted(model.TRANSPORT_MODES), "all_offices": service.ALL_OFFICES,
    }


@router.get("/lane-rules")
def lane_rules(request: Request, uow: Uow, actor: PageActor, office: str = "", edit: str = "",
               saved: str = "") -> Any:
    return render(request, "customs/lane_rules.html", actor, **_lane_context(uow, actor, office, edit=edit,
                                                                             saved=saved))


@router.post("/lane-rules/profiles")
async def lane_profile_save(request: Request, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in
              ("id", "office", "name", "lane", "probability", *PROFILE_TEXT_FIELDS, "band_prefix", "band_unit",
               "band_minimum", "band_maximum")}
    values["active"] = form.get("active") == "on"
    values["first_declaration"] = form.get("first_declaration") == "on"
    conditions: dict[str, Any] = {name: _split(values[name]) for name in PROFILE_TEXT_FIELDS}
    conditions["first_declaration"] = values["first_declaration"]
    if any(values[k] for k in ("band_prefix", "band_unit", "band_minimum", "band_maximum")):
        conditions["value_band"] = {"tariff_prefix": values["band_prefix"], "unit": values["band_unit"] or None,
                                    "minimum": values["band_minimum"] or None,
                                    "maximum": values["band_maximum"] or None}
    definition = {"name": values["name"], "lane": values["lane"], "probability": values["probability"] or None,
                  "active": values["active"], "conditions": conditions}
    if definition["probability"] is None:
        definition.pop("probability")
    try:
        saved = service.save_lane_profile(uow, actor, values["office"], definition, values["id"] or None)
    except DomainError as exc:
        return render(request, "customs/lane_rules.html", actor, status_code=exc.status,
                      **_lane_context(uow, actor, values["office"], profile_values=values,
                                      profile_problems=exc.problems))
    return RedirectResponse(f"/lane-rules?office={saved['office']}&saved=profile", status_code=303)


@router.post("/lane-rules/settings")
async def lane_settings_save(request: Request, uow: Uow, actor: PageActor) -> Any:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in
              ("office", "rate_red", "rate_yellow", "rate_blue", "minimum_random_rate",
               *(f"modifier_{tier}" for tier in TIERS))}
    rates = {lane: values[f"rate_{lane}"] for lane in ("red", "yellow", "blue") if values[f"rate_{lane}"]}
    definition: dict[str, Any] = {
        "tier_modifiers": {tier: values[f"modifier_{tier}"] for tier in TIERS if values[f"modifier_{tier}"]},
    }
    if rates:
        definition["expected_rates"] = rates
    if values["minimum_random_rate"]:
        definition["minimum_random_rate"] = values["minimum_random_rate"]
    try:
        service.save_lane_settings(uow, actor, values["office"], definition)
    except DomainError as exc:
        return render(request, "customs/lane_rules.html", actor, status_code=exc.status,
                      **_lane_context(uow, actor, values["office"], settings_values=values,
                                      settings_problems=exc.problems))
    return RedirectResponse(f"/lane-rules?office={values['office']}&saved=settings", status_code=303)
