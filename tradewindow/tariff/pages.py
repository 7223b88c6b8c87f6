"""Tariff pages: the tariff browser (lines and the rates in force on a date), one line with its
whole measure history, and the duty and tax calculator.

The calculator builds the same JSON request as `POST /api/v1/tax/quote` from the form and hands
it to `service.quote`: the page, the API and the CLI quote with one engine and report the same
problems, which the page shows next to the field they name."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData

from tradewindow.platform.auth import ALL_ROLES, Actor
from tradewindow.platform.db import UnitOfWork, business_today
from tradewindow.platform.errors import NotFound, Problem, ValidationFailed
from tradewindow.platform.web import add_nav, get_uow, page_actor, render, templates
from tradewindow.tariff import service

router = APIRouter(include_in_schema=False)
Uow = Annotated[UnitOfWork, Depends(get_uow)]
PageActor = Annotated[Actor, Depends(page_actor)]

add_nav("Tariff", "/tariff", ALL_ROLES, order=20)
add_nav("Tax calculator", "/tax/quote", ALL_ROLES, order=21)

INCOTERMS = ("CIF", "FOB", "CFR")
# The fields of one item row of the calculator, in the order of the quote request.
ITEM_FIELDS = ("tariff_code", "origin", "certificate_agreement", "certificate_number", "currency",
               "customs_value", "price", "incoterm", "freight", "insurance", "quantity", "unit",
               "exchange_rate")
# Where the service's problem paths point inside an item row.
ITEM_PATHS = {"origin_certificate.agreement": "certificate_agreement",
              "origin_certificate.number": "certificate_number",
              "origin_certificate": "certificate_agreement"}


# --- formatting (Jinja filters) ------------------------------------------------------------------

def rate_percent(rate: str | Decimal | None) -> str:
    """'0.15' -> '15 %', None -> '—'. Rates stay decimal strings until they are shown."""
    if rate is None or rate == "":
        return "—"
    return f"{format((Decimal(rate) * 100).normalize(), 'f')} %"


def rate_text(ad_valorem: str | None, specific: str | None, unit: str = "") -> str:
    """An ad valorem, specific or compound rate as a person reads it: '15 %', '3 CNY/KGM',
    '10 % + 0.5 CNY/LTR'; '—' when there is none."""
    if ad_valorem is None and not specific:
        return "—"
    parts = []
    has_specific = specific is not None and Decimal(specific) != 0
    if ad_valorem is not None and (Decimal(ad_valorem) != 0 or not has_specific):
        parts.append(rate_percent(ad_valorem))
    if has_specific:
        parts.append(f"{format(Decimal(specific).normalize(), 'f')} CNY/{unit or 'unit'}")
    return " + ".join(parts)


def money(amount: str | Decimal | None) -> str:
    """'53846.25' -> '53,846.25'."""
    return "" if amount is None else format(Decimal(amount), ",.2f")


def source_flag(source: str | None) -> str:
    """'uncertain' or 'illustrative' when the source says so: the page marks such figures."""
    text = (source or "").upper()
    if "UNCERTAIN" in text:
        return "uncertain"
    if "ILLUSTRATIVE" in text:
        return "illustrative"
    return ""


templates.env.filters.update(rate_percent=rate_percent, rate_text=rate_text, money=money,
                             source_flag=source_flag)


def _day(text: str, problems: list[Problem], name: str = "date") -> date:
    """A YYYY-MM-DD query parameter; today in the zone when empty or wrong (and a problem said)."""
    if text.strip():
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            problems.append(Problem(name, "invalid_date", "The date must be written YYYY-MM-DD."))
    return business_today()


def _partial(request: Request) -> bool:
    # htmx asks for the fragment; a history restore (back button) needs the whole page.
    return bool(request.headers.get("hx-request")) and not request.headers.get("hx-history-restore-request")


# --- the tariff browser --------------------------------------------------------------------------

@router.get("/tariff")
def tariff_browser(request: Request, uow: Uow, actor: PageActor, q: str = "", date: str = "") -> Any:
    problems: list[Problem] = []
    on_date = _day(date, problems)
    result = service.search_lines(uow, actor, q[:100], on_date, limit=200)
    template = "tariff/_line_rows.html" if _partial(request) else "tariff/browser.html"
    return render(request, template, actor, q=q, on_date=on_date, lines=result["lines"],
                  problems=problems)


@router.get("/tariff/lines/{code}")
def tariff_line(request: Request, code: str, uow: Uow, actor: PageActor, date: str = "") -> Any:
    problems: list[Problem] = []
    on_date = _day(date, problems)
    line = service.get_line(uow, actor, code, on_date)
    try:
        hs = service.hs_entry(uow, line["hs6"])
    except NotFound:
        hs = None       # the HS nomenclature is not loaded (or lacks this subheading)
    return render(request, "tariff/line.html", actor, line=line, on_date=on_date, hs=hs,
                  problems=problems)


# --- the calculator ------------------------------------------------------------------------------

def _blank_item() -> dict[str, str]:
    return {name: "" for name in ITEM_FIELDS} | {"currency": "USD", "incoterm": "CIF", "quantity": "1"}


def _calculator_context(uow: UnitOfWork, values: dict, problems: list[Problem],
                        result: dict | None) -> dict:
    errors: dict[str, str] = {}
    general: list[Problem] = []
    for problem in problems:
        field = _field_of(problem.path, len(values["items"]))
        if field is None:
            general.append(problem)
        else:
            errors.setdefault(field, problem.message)
    return {"values": values, "errors": errors, "problems": problems, "general_problems": general,
            "result": result, "incoterms": INCOTERMS, "agreements": service.list_agreements(uow),
            "currencies": ["CNY", *(r["currency"] for r in service.exchange_rate_table(uow))]}


def _field_of(path: str, item_count: int) -> str | None:
    """'items[0].customs_value' -> 'items[0].customs_value' (a field of the form), 'items[1]' ->
    'items[1]' (the row itself), 'date' -> 'date'; None for what no field shows."""
    if path in ("regime", "date"):
        return path
    if not path.startswith("items["):
        return None
    index_text, _, rest = path[len("items["):].partition("]")
    if not index_text.isdigit() or int(index_text) >= item_count:
        return None
    rest = rest.removeprefix(".")
    if not rest:
        return f"items[{index_text}]"
    name = ITEM_PATHS.get(rest, rest)
    return f"items[{index_text}].{name}" if name in ITEM_FIELDS else f"items[{index_text}]"


def _form_values(form: FormData) -> dict:
    """The form as entered. Item fields come as parallel lists (one input of each name per
    row); rows with neither a tariff code nor an amount are dropped as unused."""
    columns = {name: [str(v) for v in form.getlist(name)] for name in ITEM_FIELDS}
    rows = max((len(v) for v in columns.values()), default=0)
    items = []
    for index in range(rows):
        row = {name: (columns[name][index].strip() if index < len(columns[name]) else "")
               for name in ITEM_FIELDS}
        if row["tariff_code"] or row["customs_value"] or row["price"]:
            items.append(row)
    return {"regime": str(form.get("regime", "general")), "date": str(form.get("date", "")).strip(),
            "items": items or [_blank_item()], "submitted_items": len(items)}


def _quote_request(values: dict) -> dict:
    """The JSON request of POST /api/v1/tax/quote that the form says."""
    raw: dict[str, Any] = {"regime": values["regime"], "items": []}
    if values["date"]:
        raw["date"] = values["date"]
    for row in values["items"][:values["submitted_items"]]:
        item: dict[str, Any] = {"origin": row["origin"] or None, "currency": row["currency"] or None,
                                "quantity": row["quantity"] or None}
        for name in ("tariff_code", "customs_value", "price", "unit", "exchange_rate", "insurance"):
            if row[name]:
                item[name] = row[name]
        if row["price"]:
            # an incoterm and freight only mean something with a price
            item["incoterm"] = row["incoterm"] or None
            if row["freight"]:
                item["freight"] = row["freight"]
        elif row["freight"]:
            item["freight"] = row["freight"]
        if row["certificate_agreement"] or row["certificate_number"]:
            item["origin_certificate"] = {"agreement": row["certificate_agreement"] or None,
                                          "number": row["certificate_number"] or None}
        raw["items"].append(item)
    return raw


@router.get("/tax/quote")
def calculator(request: Request, uow: Uow, actor: PageActor) -> Any:
    values = {"regime": "general", "date": business_today().isoformat(),
              "items": [_blank_item()], "submitted_items": 0}
    return render(request, "tariff/calculator.html", actor,
                  **_calculator_context(uow, values, [], None))


@router.get("/tax/quote/item")
def calculator_item_row(request: Request, uow: Uow, actor: PageActor) -> Any:
    """One more, empty item row (the "add item" button appends it)."""
    return render(request, "tariff/_quote_item.html", actor, row=_blank_item(), index=None,
                  errors={}, incoterms=INCOTERMS, agreements=service.list_agreements(uow))


@router.post("/tax/quote")
async def calculator_quote(request: Request, uow: Uow, actor: PageActor) -> Any:
    values = _form_values(await request.form())
    problems: list[Problem] = []
    result = None
    if values["submitted_items"] == 0:
        problems.append(Problem("items", "empty", "Enter at least one item: a tariff code and a value."))
    else:
        try:
            result = service.quote(uow, actor, _quote_request(values))
        except ValidationFailed as exc:
            problems = exc.problems
    context = _calculator_context(uow, values, problems, result)
    if _partial(request):
        # htmx swaps only 2xx answers by default; the problems are in the fragment itself.
        return render(request, "tariff/_calculator.html", actor, **context)
    status = 422 if problems else 200
    return render(request, "tariff/calculator.html", actor, status_code=status, **context)

