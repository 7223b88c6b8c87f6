"""Printable documents of a declaration: the declaration itself, the tax payment notice and the
release note, each as HTML for the browser's print dialog (A4) and as a PDF.

Both forms are made from one `Printout`: the declaration as `service.get_declaration` shows it
(so tenancy is exactly that of reading the declaration), the parties and office by name, and
every figure already formatted, so the HTML and the PDF can never disagree about an amount.

Fonts: the PDF prints what the HTML shows, Chinese names and descriptions as declared included,
with fonts vendored in tradewindow/web/static/fonts (the machines are offline and a fresh one must
make the same PDF, so no host font is used; their licences lie beside them). Latin text is set in
Liberation Sans 2.1.5 (SIL OFL 1.1), regular and bold, whose widths are Helvetica's: the layout
and the alignment of figures are those of the core-font PDF before. Every character it lacks (CJK
ideographs, full-width punctuation, the ideographic space) falls back to Droid Sans Fallback
(Apache-2.0), which has a single weight: Chinese in a bold line prints regular. Of that font a
PDF embeds its GB 2312 subset (made by scripts/make_pdf_fonts.py: the 6,763 hanzi of GB 2312,
CJK and full-width punctuation), or, when the printout has a character only the full font has,
the full font (all 20,902 CJK Unified Ideographs and 6,582 of Extension A): fpdf2 parses each font
anew for every PDF, and the full one costs four times the subset's CPU. fpdf2 embeds only the
glyphs used. A character no vendored font has prints as '?', and an item description with one as
the English description of its tariff line; none of Chinese, Latin or common punctuation does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from tradewindow.customs import service
from tradewindow.platform.auth import Actor
from tradewindow.platform.calendar import WorkingCalendar
from tradewindow.platform.calendar_store import cached_calendar
from tradewindow.platform.db import UnitOfWork, utcnow
from tradewindow.platform.errors import Conflict, not_found
from tradewindow.platform.settings import get_settings
from tradewindow.platform.web import templates
from tradewindow.registry import service as registry
from tradewindow.tariff import service as tariff_service

DECLARATION, TAX_NOTICE, RELEASE_NOTE = "declaration", "tax-notice", "release-note"
KINDS = (DECLARATION, TAX_NOTICE, RELEASE_NOTE)
TITLES = {DECLARATION: "Goods declaration", TAX_NOTICE: "Tax payment notice", RELEASE_NOTE: "Release note"}

# Customs Law of the PRC, art. 60: duties and taxes are paid within 15 days of the day customs
# issues the tax payment notice; the notice is issued on assessment, which is the acceptance day.
# A last day falling on a rest day or public holiday moves to the next working day (GACC tax
# collection rules), by the zone's working-day calendar.
PAYMENT_PERIOD_DAYS = 15
# Customs Law of the PRC, art. 60: late payment bears a surcharge of 0.05 % of the unpaid amount
# per day (万分之五), counted from the day after the due date.
LATE_SURCHARGE_PER_DAY = "0.05 %"

DECLARATION_TITLES = {
    "import": "Import goods declaration", "export": "Export goods declaration",
    "bonded_entry": "Bonded entry declaration", "bonded_release": "Declaration of release from bonded stock",
    "reexport": "Re-export declaration", "transit": "Transit declaration",
}
TAX_KINDS = (("duty", "Customs duty"), ("consumption_tax", "Import consumption tax"), ("vat", "Import VAT"))
# Customs releases goods only to the holder of record of their transport document (DESIGN.md
# §4.5: for a railway bill of lading, the holder in the titles register).
RELEASE_TEXT = ("The goods described below, declared under declaration {number}, are released to the holder of "
                "record of transport document {document}{consignment}.")


# --- what a printout holds ------------------------------------------------------------------------

@dataclass(frozen=True)
class Party:
    role: str
    uscc: str
    name_en: str
    name_zh: str


@dataclass(frozen=True)
class Printout:
    """One document ready to print: every figure formatted once, for the HTML and the PDF alike."""

    kind: str
    title: str
    declaration: dict
    office: str                      # "8012 Xiyong Customs"
    office_zh: str
    parties: tuple[Party, ...]
    items: tuple[dict, ...]          # per item: filed and assessed figures, formatted
    totals: dict[str, str]           # the assessment's totals and the invoice total
    header: tuple[tuple[str, str], ...]   # the declaration's particulars, parties apart
    printed_at: str
    time_zone: str
    tax: dict | None = None
    release: dict | None = None
    english: dict[int, str] = field(default_factory=dict)   # line number -> its tariff line's description

    @property
    def number(self) -> str:
        return self.declaration["number"]

    @property
    def filename(self) -> str:
        return f"{self.number}-{self.kind}"


def available(declaration: Mapping) -> list[str]:
    """The printouts a declaration has now: the declaration always; the tax notice when taxes are
    or were due; the release note once released."""
    kinds = [DECLARATION]
    if _taxes_due_or_paid(declaration):
        kinds.append(TAX_NOTICE)
    if declaration.get("released_at") is not None:
        kinds.append(RELEASE_NOTE)
    return kinds


def _taxes_due_or_paid(declaration: Mapping) -> bool:
    return Decimal(declaration["total_due"]) > 0 or any(p["kind"] != "refund" for p in declaration["payments"])


def prepare(uow: UnitOfWork, actor: Actor, id_or_number: str, kind: str) -> Printout:
    """The printout of a declaration the actor may read. 404 for an unknown kind or a declaration
    out of sight; 409 `not_released` or `nothing_due` when the document does not exist yet."""
    if kind not in KINDS:
        raise not_found("printout", kind)
    zone = ZoneInfo(get_settings().time_zone)
    with uow.read() as conn:      # one snapshot: the declaration, its parties' names, the calendar
        view = service.get_declaration(uow, actor, id_or_number)
        if kind == RELEASE_NOTE and view["released_at"] is None:
            raise Conflict(f"Declaration {view['number']} is not released; the release note is issued on release.",
                           "not_released")
        if kind == TAX_NOTICE and not _taxes_due_or_paid(view):
            raise Conflict(f"No duty or tax is due on declaration {view['number']}, so there is no tax payment "
                           "notice.", "nothing_due")
        office = registry.agency_by_code(uow, view["customs_office"]) or {}
        parties = _parties(uow, view)
        english = _english_descriptions(uow, view)
        calendar = cached_calendar(conn) if kind == TAX_NOTICE else None
    office_name = f"{view['customs_office']} {office.get('name_en', '')}".strip()
    items = tuple(_item(item, assessed, view["filing"]["currency"])
                  for item, assessed in zip(view["filing"]["items"], view["assessment"]["items"], strict=True))
    totals = {key: money(view["assessment"]["totals"][key])
              for key in ("customs_value_cny", "duty", "consumption_tax", "vat", "total")}
    totals["invoice_total"] = money(view["filing"]["invoice_total"])
    return Printout(
        kind=kind, title=DECLARATION_TITLES[view["type"]] if kind == DECLARATION else TITLES[kind],
        declaration=view, office=office_name,
        office_zh=office.get("name_zh", ""), parties=parties, items=items, totals=totals,
        header=_header(view, office_name, zone), printed_at=local_time(utcnow(), zone), time_zone=zone.key,
        tax=_tax(view, calendar, zone) if calendar is not None else None,
        release=_release(view, items, zone) if kind == RELEASE_NOTE else None, english=english)


def _parties(uow: UnitOfWork, view: Mapping) -> tuple[Party, ...]:
    # The declaration is visible to the actor, so its parties' names are too (a broker whose
    # authorisation has since ended still sees the trader on what it lodged).
    parties = []
    for role, enterprise_id in (("Trader", view["trader_id"]), ("Declarant", view["declarant_id"])):
        if role == "Declarant" and enterprise_id == view["trader_id"]:
            continue
        found = registry.enterprise_by_uscc(uow, enterprise_id) or {}
        parties.append(Party(role, found.get("uscc", ""), found.get("name_en", ""), found.get("name_zh", "")))
    return tuple(parties)


def _english_descriptions(uow: UnitOfWork, view: Mapping) -> dict[int, str]:
    """For the PDF, in case a filed description has a character no embedded font has: the English
    description of each item's tariff line."""
    lookup = tariff_service.tariff_lookup(uow)
    english = {}
    for item in view["filing"]["items"]:
        if (line := lookup.line(item["tariff_code"])) is not None:
            english[item["line_number"]] = line.line.description_en
    return english


def _item(item: Mapping, assessed: Mapping, currency: str) -> dict:
    return {
        "line_number": item["line_number"], "tariff_code": item["tariff_code"], "description": item["description"],
        "origin": item.get("origin") or "", "quantity": quantity(item["quantity"]), "unit": item["unit"],
        "net_mass_kg": quantity(item["net_mass_kg"]), "gross_mass_kg": quantity(item.get("gross_mass_kg") or "0"),
        "value": money(item["value"]), "currency": currency,
        **{key: money(assessed[key]) for key in ("customs_value_cny", "duty", "consumption_tax", "vat", "total")},
    }


def _header(view: Mapping, office: str, zone: ZoneInfo) -> tuple[tuple[str, str], ...]:
    filing = view["filing"]
    countries = ", ".join(f"{label} {filing[key]}" for key, label in (
        ("country_of_dispatch", "dispatch"), ("country_of_origin", "origin"),
        ("country_of_destination", "destination")) if filing.get(key))
    invoice = f"{filing['incoterm']} {filing['currency']} {money(filing['invoice_total'])}"
    if Decimal(filing.get("freight") or 0):
        invoice += f", freight {money(filing['freight'])}"
    if filing.get("insurance") is not None:
        invoice += f", insurance {money(filing['insurance'])}"
    rows = [
        ("Declaration number", view["number"]), ("Client reference", view["client_reference"]),
        ("Type", view["type"].replace("_", " ")), ("Customs office", office),
        ("Acceptance day", view["acceptance_day"].isoformat()),
        ("Accepted at", local_time(view["accepted_at"], zone)),
        ("Status", view["status"].replace("_", " ")), ("Lane", view["lane"]), ("Version", str(view["version"])),
        ("Transport", f"{view['transport_mode']}, document {view['transport_document']}"),
    ]
    if view.get("consignment_reference"):
        rows.append(("Consignment", view["consignment_reference"]))
    if countries:
        rows.append(("Countries", countries))
    rows.append(("Invoice", invoice))
    return tuple(rows)


def _tax(view: Mapping, calendar: WorkingCalendar, zone: ZoneInfo) -> dict:
    totals = view["assessment"]["totals"]
    paid = sum((Decimal(p["amount"]) for p in view["payments"] if p["kind"] != "refund"), Decimal(0))
    refunded = sum((Decimal(p["amount"]) for p in view["payments"] if p["kind"] == "refund"), Decimal(0))
    total = Decimal(totals["total"])
    outstanding = max(total - paid, Decimal(0))
    return {
        "lines": [(label, money(totals[key])) for key, label in TAX_KINDS],
        "total": money(total), "words": amount_in_words(total), "reference": view["number"],
        "issued_on": view["acceptance_day"].isoformat(),
        "due_on": payment_due_date(view["acceptance_day"], calendar).isoformat(),
        "payments": [{"kind": p["kind"], "reference": p["reference"], "amount": money(p["amount"]),
                      "recorded_on": local_time(p["recorded_at"], zone)[:10]} for p in view["payments"]],
        "paid": money(paid), "refunded": money(refunded), "outstanding": money(outstanding),
        "settled": outstanding == 0, "cancelled": view["stages"].get("cancelled_at") is not None,
        "surcharge": LATE_SURCHARGE_PER_DAY,
    }


def _release(view: Mapping, items: tuple[dict, ...], zone: ZoneInfo) -> dict:
    filed = view["filing"]["items"]
    consignment = f" (consignment {view['consignment_reference']})" if view.get("consignment_reference") else ""
    exited = view["stages"].get("exited_at")
    return {
        "released_at": local_time(view["released_at"], zone),
        "exited_at": local_time(exited, zone) if exited else None,
        "text": RELEASE_TEXT.format(number=view["number"], document=view["transport_document"],
                                    consignment=consignment),
        "item_count": len(items),
        "net_mass_kg": quantity(sum((Decimal(i["net_mass_kg"]) for i in filed), Decimal(0))),
        "gross_mass_kg": quantity(sum((Decimal(i.get("gross_mass_kg") or 0) for i in filed), Decimal(0))),
    }


# --- pure helpers ---------------------------------------------------------------------------------

def payment_due_date(acceptance_day: date, calendar: WorkingCalendar) -> date:
    """The last day to pay: PAYMENT_PERIOD_DAYS after the notice, moved on past rest days and
    public holidays to the next working day."""
    due = acceptance_day + timedelta(days=PAYMENT_PERIOD_DAYS)
    while not calendar.is_working_day(due):
        due += timedelta(days=1)
    return due


def money(amount: str | Decimal) -> str:
    """'53846.2' -> '53,846.20'."""
    return format(Decimal(amount).quantize(Decimal("0.01")), ",.2f")


def quantity(amount: str | Decimal) -> str:
    """'20000.000' -> '20,000'; '1.5' -> '1.5'."""
    return format(Decimal(amount).normalize(), ",f")


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    if moment.tzinfo is None:          # stored in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        words.append(f"{_ONES[hundreds]} hundred")
    if rest:
        if hundreds:
            words.append("and")
        words.append(_ONES[rest] if rest < 20 else _TENS[rest // 10] + (f"-{_ONES[rest % 10]}" if rest % 10 else ""))
    return " ".join(words)


def number_in_words(n: int) -> str:
    if n == 0:
        return "zero"
    words = []
    for scale, name in _SCALES:
        if n >= scale:
            words.append(f"{number_in_words(n // scale)} {name}")
            n %= scale
    if n:
        if words and n < 100:
            words.append("and")
        words.append(_below_thousand(n))
    return " ".join(words)


def amount_in_words(amount: Decimal) -> str:
    """The amount in English words, as written on a payment order: 'One hundred yuan only',
    'Fifty-six thousand and twelve yuan and five fen'."""
    yuan, fen = divmod(int(amount.quantize(Decimal("0.01")) * 100), 100)
    text = f"{number_in_words(yuan)} yuan " + (f"and {number_in_words(fen)} fen" if fen else "only")
    return text[0].upper() + text[1:]


# --- HTML ------------------------------------------------------------------------------------------

def html(printout: Printout, pdf_url: str = "", back_url: str = "") -> str:
    """The printout as a standalone HTML page with A4 print CSS."""
    template = templates.env.get_template(f"customs/print/{printout.kind.replace('-', '_')}.html")
    return template.render(p=printout, d=printout.declaration, pdf_url=pdf_url, back_url=back_url)


# --- PDF -------------------------------------------------------------------------------------------

FONT_DIR = Path(__file__).resolve().parent.parent / "web" / "static" / "fonts"
SANS = "liberationsans"
LATIN_FONTS = ((SANS, "", "LiberationSans-Regular.ttf"), (SANS, "B", "LiberationSans-Bold.ttf"))
# (family, file), smallest first. fpdf2 parses every font a PDF uses, for every PDF: the full font
# costs some 200 ms of CPU, its GB 2312 subset (scripts/make_pdf_fonts.py) some 45 ms, so a
# printout embeds the subset unless its text has a character only the full font has.
CJK_FONTS = (("droidsansfallbackgb", "DroidSansFallback-GB2312.ttf"),
             ("droidsansfallback", "DroidSansFallbackFull.ttf"))


@cache
def font_characters(filename: str) -> frozenset[int]:
    """The characters a vendored font has (read once per process)."""
    return frozenset(TTFont(FONT_DIR / filename, lazy=True).getBestCmap())


def pdf_fonts(characters: set[str]) -> tuple[tuple[str, str, str], ...]:
    """(family, style, file) of the fonts a PDF of these characters embeds: Liberation Sans, and
    the smallest CJK font that has every character Liberation Sans lacks and Droid has, if any."""
    needed = {ord(char) for char in characters} - font_characters(LATIN_FONTS[0][2])
    printable = needed & font_characters(CJK_FONTS[-1][1])
    if not printable:
        return LATIN_FONTS
    family, filename = next(font for font in CJK_FONTS if printable <= font_characters(font[1]))
    return (*LATIN_FONTS, (family, "", filename))


def _characters(value: Any) -> set[str]:
    """Every character of every text in a printout, its declaration view included."""
    if isinstance(value, str):
        return set(value)
    if isinstance(value, Mapping):
        parts: Any = value.values()
    elif isinstance(value, list | tuple):
        parts = value
    elif is_dataclass(value):
        parts = (getattr(value, part.name) for part in fields(value))
    else:
        return set()
    found: set[str] = set()
    for part in parts:
        found |= _characters(part)
    return found


class _Document(FPDF):
    def __init__(self, printout: Printout, landscape: bool) -> None:
        super().__init__(orientation="L" if landscape else "P", unit="mm", format="A4")
        self.printout = printout
        fonts = pdf_fonts(_characters(printout))
        for family, style, filename in fonts:
            self.add_font(family, style, FONT_DIR / filename)
        # A character Liberation Sans lacks is set in the CJK font, in bold text too (Droid Sans
        # Fallback has no bold face): exact_match=False.
        self.set_fallback_fonts([family for family, _, _ in fonts if family != SANS], exact_match=False)
        self._covered = frozenset().union(*(font_characters(filename) for _, _, filename in fonts))
        self.set_margins(14, 14, 14)
        self.set_auto_page_break(True, margin=16)
        self.set_title(f"{printout.title} {printout.number}")
        self.set_author("Trade Window")
        self.set_creator("Trade Window")
        self.set_subject(f"{printout.title} of declaration {printout.number}")

    def printable(self, text: str, fallback: str | None = None) -> str:
        """The text when the embedded fonts have every character of it; else the fallback (the
        tariff line's English description of an item), else the text with '?' for what no font has."""
        missing = {char for char in text if char != "\n" and ord(char) not in self._covered}
        if not missing:
            return text
        if fallback is not None and fallback != text:
            return self.printable(fallback)
        return "".join("?" if char in missing else char for char in text)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(SANS, "", 7)
        self.set_text_color(110, 110, 110)
        self.cell(0, 4, self.printable(
            f"{self.printout.title} {self.printout.number} · printed {self.printout.printed_at} "
            f"({self.printout.time_zone}) from Trade Window · page {self.page_no()}/{{nb}}"), align="C")
        self.set_text_color(0, 0, 0)

    # building blocks

    def heading(self, title: str, subtitle: str = "") -> None:
        self.set_font(SANS, "B", 15)
        self.cell(0, 8, self.printable(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(SANS, "", 9)
        if subtitle:
            self.cell(0, 5, self.printable(subtitle), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)

    def section(self, title: str) -> None:
        self.ln(3)
        self.set_font(SANS, "B", 10.5)
        self.cell(0, 6, self.printable(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(SANS, "", 8.5)

    def facts(self, rows: tuple[tuple[str, str], ...] | list[tuple[str, str]], columns: int = 2) -> None:
        """Label/value pairs, `columns` pairs per row."""
        self.set_font(SANS, "", 8.5)
        width = self.epw / columns
        widths = [width * 0.4, width * 0.6] * columns
        with self.table(col_widths=widths, first_row_as_headings=False, borders_layout="HORIZONTAL_LINES",
                        line_height=4.6, text_align="LEFT", padding=(0.8, 1.2)) as table:
            for start in range(0, len(rows), columns):
                row = table.row()
                chunk = list(rows[start:start + columns])
                chunk += [("", "")] * (columns - len(chunk))
                for label, value in chunk:
                    row.cell(self.printable(label), style=FontFace(emphasis="B", color=(80, 90, 100)))
                    row.cell(self.printable(value))

    def grid(self, headings: list[str], rows: list[list[str]], widths: list[float], aligns: list[str],
             footer: list[str] | None = None, size: float = 7.5) -> None:
        self.set_font(SANS, "", size)
        with self.table(col_widths=widths, text_align=tuple(aligns), line_height=size * 0.5,
                        headings_style=FontFace(emphasis="B", fill_color=(232, 238, 245)),
                        padding=(0.8, 1), repeat_headings=1) as table:
            table.row([self.printable(h) for h in headings])
            for cells in rows:
                table.row([self.printable(c) for c in cells])
            if footer is not None:
                row = table.row()
                for text in footer:
                    row.cell(self.printable(text), style=FontFace(emphasis="B"))

    def paragraph(self, text: str, size: float = 9, bold: bool = False) -> None:
        self.set_font(SANS, "B" if bold else "", size)
        self.multi_cell(0, size * 0.5, self.printable(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(SANS, "", 8.5)


def pdf(printout: Printout) -> bytes:
    """The printout as PDF bytes (A4: landscape for the declaration's wide item table)."""
    document = _Document(printout, landscape=printout.kind == DECLARATION)
    document.add_page()
    {DECLARATION: _declaration_pdf, TAX_NOTICE: _tax_notice_pdf, RELEASE_NOTE: _release_note_pdf}[printout.kind](
        document, printout)
    return bytes(document.output())


def _subtitle(p: Printout) -> str:
    return f"{p.office} {p.office_zh} · Trade Window single window" if p.office_zh else \
        f"{p.office} · Trade Window single window"


def _name(party: Party) -> str:
    """The enterprise's English and Chinese names, as the HTML gives them."""
    return " ".join(name for name in (party.name_en, party.name_zh) if name) or party.uscc


def _description(pdf: _Document, p: Printout, item: Mapping) -> str:
    return pdf.printable(item["description"], p.english.get(item["line_number"]))


def _declaration_pdf(pdf: _Document, p: Printout) -> None:
    pdf.heading(f"{p.title} {p.number}", _subtitle(p))
    pdf.facts(p.header + tuple((party.role, f"{_name(party)} ({party.uscc})")
                               for party in p.parties), columns=3)
    pdf.section("Items and assessment (duties and taxes in CNY, each line rounded half-up to the fen)")
    currency = p.declaration["filing"]["currency"]
    headings = ["#", "Tariff code", "Description", "Origin", "Quantity", "Net kg", f"Value {currency}",
                "Customs value CNY", "Duty", "Consumption tax", "VAT", "Total"]
    rows = [[str(i["line_number"]), i["tariff_code"], _description(pdf, p, i), i["origin"],
             f"{i['quantity']} {i['unit']}", i["net_mass_kg"], i["value"], i["customs_value_cny"], i["duty"],
             i["consumption_tax"], i["vat"], i["total"]] for i in p.items]
    footer = ["", "", "Totals", "", "", "", p.totals["invoice_total"],
              p.totals["customs_value_cny"], p.totals["duty"], p.totals["consumption_tax"], p.totals["vat"],
              p.totals["total"]]
    pdf.grid(headings, rows, [7, 18, 58, 12, 22, 17, 23, 25, 21, 24, 21, 22],
             ["R", "L", "L", "C", "R", "R", "R", "R", "R", "R", "R", "R"], footer)
    pdf.ln(3)
    pdf.paragraph(f"Duties and taxes due: CNY {p.totals['total']}. Status: {p.declaration['status'].replace('_', ' ')}"
                  f", {p.declaration['lane']} lane.", bold=True)


def _tax_notice_pdf(pdf: _Document, p: Printout) -> None:
    assert p.tax is not None
    tax = p.tax
    pdf.heading(f"{p.title} {p.number}", _subtitle(p))
    payer = p.parties[0]
    pdf.facts([("Payer", _name(payer)), ("Payer credit code", payer.uscc),
               ("Declaration number", p.number), ("Customs office", p.office),
               ("Issued on", tax["issued_on"]), ("Pay by", tax["due_on"]),
               ("Bank transfer reference", tax["reference"]), ("Currency", "CNY")])
    pdf.section("Amounts due")
    pdf.grid(["Tax kind", "Amount CNY"], [[label, amount] for label, amount in tax["lines"]], [120, 62], ["L", "R"],
             ["Total due", tax["total"]], size=9.5)
    pdf.ln(2)
    pdf.paragraph(f"In words: {tax['words']}.")
    pdf.section("By item")
    pdf.grid(["#", "Tariff code", "Customs value CNY", "Duty", "Consumption tax", "VAT", "Total"],
             [[str(i["line_number"]), i["tariff_code"], i["customs_value_cny"], i["duty"], i["consumption_tax"],
               i["vat"], i["total"]] for i in p.items],
             [10, 24, 34, 26, 30, 26, 32], ["R", "L", "R", "R", "R", "R", "R"])
    pdf.section("Payments")
    if tax["payments"]:
        pdf.grid(["Kind", "Reference", "Recorded on", "Amount CNY"],
                 [[t["kind"], t["reference"], t["recorded_on"], t["amount"]] for t in tax["payments"]],
                 [30, 80, 35, 37], ["L", "L", "L", "R"])
        pdf.ln(1)
    pdf.paragraph(_payment_status(tax), bold=True)
    pdf.ln(2)
    pdf.paragraph(f"Pay by bank transfer to the customs treasury account quoting the reference {tax['reference']}, "
                  f"no later than {tax['due_on']}. Payment after that day bears a late-payment surcharge of "
                  f"{tax['surcharge']} of the unpaid amount per day.", size=8.5)


def _payment_status(tax: Mapping[str, Any]) -> str:
    if tax["cancelled"]:
        return "The declaration is cancelled: nothing is to be paid."
    if tax["settled"]:
        return f"Settled: CNY {tax['paid']} paid or guaranteed; nothing outstanding."
    return f"Outstanding: CNY {tax['outstanding']}."


def _release_note_pdf(pdf: _Document, p: Printout) -> None:
    assert p.release is not None
    release = p.release
    pdf.heading(f"{p.title} {p.number}", _subtitle(p))
    trader = p.parties[0]
    rows = [("Declaration number", p.number), ("Customs office", p.office),
            ("Released at", f"{release['released_at']} ({p.time_zone})"),
            ("Trader", f"{_name(trader)} ({trader.uscc})"),
            ("Transport", f"{p.declaration['transport_mode']}, document {p.declaration['transport_document']}"),
            ("Type", p.declaration["type"].replace("_", " "))]
    if release["exited_at"]:
        rows.append(("Exited at", f"{release['exited_at']} ({p.time_zone})"))
    pdf.facts(rows)
    pdf.ln(3)
    pdf.paragraph(release["text"], size=9.5, bold=True)
    pdf.section("Goods")
    pdf.grid(["#", "Tariff code", "Description", "Origin", "Quantity", "Net kg", "Gross kg"],
             [[str(i["line_number"]), i["tariff_code"], _description(pdf, p, i), i["origin"],
               f"{i['quantity']} {i['unit']}", i["net_mass_kg"], i["gross_mass_kg"]] for i in p.items],
             [9, 22, 66, 14, 27, 22, 22], ["R", "L", "L", "C", "R", "R", "R"],
             ["", "", f"{release['item_count']} item(s)", "", "", release["net_mass_kg"], release["gross_mass_kg"]])
