"""Customs declarations, pure (DESIGN.md §4.1): what a filing must contain, how it is checked
(every problem at once), how freight and insurance are spread over items, which agency tasks a
filing raises, how far a declaration is on its way to release, and the notification codes.

The database look-ups a check needs (tariff lines, exchange rates, licences, customs offices)
come in through the `Lookups` protocol, so the rules stay testable without a database."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from tradewindow.customs.selectivity import Lane
from tradewindow.platform.errors import Problems
from tradewindow.platform.fields import FieldReader
from tradewindow.platform.money import apportion, fen
from tradewindow.tariff import model as tariff

ZERO = Decimal(0)


class DeclarationType(StrEnum):
    IMPORT = "import"
    EXPORT = "export"
    BONDED_ENTRY = "bonded_entry"        # into a bonded zone: admitted with no tax
    BONDED_RELEASE = "bonded_release"    # from bonded stock to the domestic market: taxed
    REEXPORT = "reexport"
    TRANSIT = "transit"


# Goods entering the domestic market pay duty and taxes; the others are suspended or exempt.
TAXED_TYPES = frozenset({DeclarationType.IMPORT, DeclarationType.BONDED_RELEASE})
INBOUND_TYPES = frozenset({DeclarationType.IMPORT, DeclarationType.BONDED_ENTRY,
                           DeclarationType.BONDED_RELEASE, DeclarationType.TRANSIT})
OUTBOUND_TYPES = frozenset({DeclarationType.EXPORT, DeclarationType.REEXPORT})

TRANSPORT_MODES = frozenset({"rail", "sea", "river", "road", "air", "post"})


class Status(StrEnum):
    INSPECTION = "inspection"            # red lane: physical inspection pending
    DOCUMENT_CHECK = "document_check"    # yellow lane: document check pending
    AGENCY_HOLD = "agency_hold"          # agency tasks pending
    DOCUMENTS_REQUESTED = "documents_requested"
    REFUSED = "refused"                  # an agency refused, or inspection found non-conformity
    TAXES_DUE = "taxes_due"
    TITLE_HOLD = "title_hold"            # the trader is not the holder of record of the bill of lading
    RELEASED = "released"
    EXITED = "exited"                    # export: goods have left the territory
    CANCELLED = "cancelled"


OPEN_STATUSES = frozenset(set(Status) - {Status.RELEASED, Status.EXITED, Status.CANCELLED})


class TaskKind(StrEnum):
    QUARANTINE_INSPECTION = "quarantine_inspection"
    LICENCE_WRITE_OFF = "licence_write_off"
    CCC_CHECK = "ccc_check"


class TaskStatus(StrEnum):
    PENDING = "pending"
    DOCUMENTS_REQUESTED = "documents_requested"
    APPROVED = "approved"
    REFUSED = "refused"


@dataclass(frozen=True)
class TaskRule:
    kind: TaskKind
    agency_kind: str
    deadline_working_hours: int
    title: str


# Which agency acts on which tariff requirement, and how long it has.
TASK_RULES: dict[str, TaskRule] = {
    "quarantine": TaskRule(TaskKind.QUARANTINE_INSPECTION, "quarantine", 16,
                           "Quarantine inspection of goods subject to entry inspection"),
    "import_licence": TaskRule(TaskKind.LICENCE_WRITE_OFF, "licensing", 8,
                               "Write the declared quantity off the import licence"),
    "ccc": TaskRule(TaskKind.CCC_CHECK, "licensing", 8, "Check the China Compulsory Certification"),
}

DOCUMENT_TYPES: dict[str, int] = {          # type -> largest size in bytes
    "invoice": 5 * 1024 * 1024,
    "packing_list": 5 * 1024 * 1024,
    "certificate": 5 * 1024 * 1024,
    "licence": 5 * 1024 * 1024,
    "photo": 8 * 1024 * 1024,
    "other": 5 * 1024 * 1024,
}
DOCUMENT_CONTENT_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "text/plain",
                                    "text/csv", "application/xml"})
MAX_ITEMS = 999

DECLARATION_FIELDS = frozenset({
    "client_reference", "type", "trader_uscc", "customs_office", "transport_mode",
    "transport_document", "country_of_dispatch", "country_of_origin", "country_of_destination",
    "incoterm", "currency", "invoice_total", "freight", "insurance", "items", "documents",
    "consignment_reference", "filing_mode",
})
ITEM_FIELDS = frozenset({
    "tariff_code", "description", "origin", "origin_certificate", "quantity", "unit",
    "net_mass_kg", "gross_mass_kg", "value", "licence_numbers",
})
CERTIFICATE_FIELDS = frozenset({"agreement", "number"})
DOCUMENT_FIELDS = frozenset({"type", "filename", "content_type", "content_base64"})


class Lookups(Protocol):
    """What checking a filing needs from the database."""

    def tariff(self) -> tariff.TariffLookup: ...

    def is_customs_office(self, code: str) -> bool: ...

    def licence_valid(self, licence_number: str, on: date) -> bool: ...


@dataclass(frozen=True)
class Document:
    type: str
    filename: str
    content_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class Item:
    line_number: int
    tariff_code: str
    description: str
    origin: str | None
    certificate: tariff.OriginCertificate | None
    quantity: Decimal
    unit: str
    net_mass_kg: Decimal | None      # may wait for the complete filing of a two-step declaration
    gross_mass_kg: Decimal | None
    value: Decimal
    licence_numbers: tuple[str, ...]


@dataclass(frozen=True)
class Filing:
    """A declaration as filed, checked and normalised."""

    client_reference: str
    type: DeclarationType
    customs_office: str
    transport_mode: str
    transport_document: str
    country_of_dispatch: str | None
    country_of_origin: str | None
    country_of_destination: str | None
    incoterm: tariff.Incoterm
    currency: str
    invoice_total: Decimal
    freight: Decimal
    insurance: Decimal | None
    items: tuple[Item, ...]
    documents: tuple[Document, ...] = ()
    trader_uscc: str | None = None
    consignment_reference: str | None = None
    mode: str = "complete"

    @property
    def taxed(self) -> bool:
        return self.type in TAXED_TYPES

    def as_json(self) -> dict:
        """The filing as stored with each version (documents by hash, not content)."""
        return {
            "client_reference": self.client_reference, "type": self.type.value,
            "trader_uscc": self.trader_uscc, "customs_office": self.customs_office,
            "transport_mode": self.transport_mode, "transport_document": self.transport_document,
            "country_of_dispatch": self.country_of_dispatch, "country_of_origin": self.country_of_origin,
            "country_of_destination": self.country_of_destination, "incoterm": self.incoterm.value,
            "currency": self.currency, "invoice_total": str(self.invoice_total),
            "freight": str(self.freight), "insurance": None if self.insurance is None else str(self.insurance),
            "consignment_reference": self.consignment_reference, "filing_mode": self.mode,
            "items": [{
                "line_number": i.line_number, "tariff_code": i.tariff_code, "description": i.description,
                "origin": i.origin,
                "origin_certificate": ({"agreement": i.certificate.agreement, "number": i.certificate.number}
                                       if i.certificate else None),
                "quantity": str(i.quantity), "unit": i.unit, "net_mass_kg": _text(i.net_mass_kg),
                "gross_mass_kg": _text(i.gross_mass_kg), "value": str(i.value),
                "licence_numbers": list(i.licence_numbers)} for i in self.items],
            "documents": [{"type": d.type, "filename": d.filename, "content_type": d.content_type,
                           "sha256": d.sha256, "size": len(d.content)} for d in self.documents],
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# Two-step declaration (GACC 2019): a summary filing of the core particulars lets the goods be
# released; the complete filing follows within this many days of release, or it is flagged late.
COMPLETE_FILING_DAYS = 14
FILING_MODES = frozenset({"complete", "summary"})


# --- checking a filing ---------------------------------------------------------------------------

def check_filing(raw: object, lookups: Lookups, acceptance_day: date) -> tuple[Filing | None, Problems]:
    """Every problem of a filing as received (JSON decoded), or the normalised filing. The tariff
    lines, exchange rate and licences are those in force on the acceptance day."""
    problems = Problems()
    if not isinstance(raw, Mapping):
        problems.add("", "not_an_object", "A declaration is a JSON object.")
        return None, problems
    fields = FieldReader(raw, "", problems)
    fields.refuse_unknown(DECLARATION_FIELDS)
    reference = fields.text("client_reference", required=True, max_length=64)
    filing_mode = fields.choice("filing_mode", FILING_MODES) or "complete"
    kind_text = fields.choice("type", {t.value for t in DeclarationType}, required=True)
    kind = DeclarationType(kind_text) if kind_text else None
    office = fields.text("customs_office", required=True, max_length=20)
    if office is not None and not lookups.is_customs_office(office):
        fields.add("customs_office", "unknown_customs_office", f"No customs office {office}.")
    mode = fields.choice("transport_mode", TRANSPORT_MODES, required=True)
    transport_document = fields.text("transport_document", required=True, max_length=64)
    countries = {name: _country(fields, name) for name in
                 ("country_of_dispatch", "country_of_origin", "country_of_destination")}
    if kind in INBOUND_TYPES and countries["country_of_dispatch"] is None and not fields.given("country_of_dispatch"):
        fields.add("country_of_dispatch", "required", "An inbound declaration names the country of dispatch.")
    if kind in OUTBOUND_TYPES and countries["country_of_destination"] is None \
            and not fields.given("country_of_destination"):
        fields.add("country_of_destination", "required", "An outbound declaration names the country of destination.")
    incoterm = _incoterm(fields)
    currency = fields.text("currency", required=True, max_length=3)
    if currency is not None and not tariff.is_currency(currency):
        fields.add("currency", "unknown_currency", f"{currency} is not an ISO 4217 currency code.")
        currency = None
    elif currency is not None and kind in TAXED_TYPES and \
            lookups.tariff().exchange_rate(currency, acceptance_day) is None:
        fields.add("currency", "no_exchange_rate", f"No exchange rate for {currency} on {acceptance_day}.")
    invoice_total = fields.amount("invoice_total", required=True, positive=True)
    freight = fields.amount("freight") or ZERO
    insurance = fields.amount("insurance")
    if incoterm is tariff.Incoterm.CIF and (freight or insurance):
        fields.add("freight", "not_applicable", "A CIF price already includes freight and insurance.")
    items, all_items_good = _items(fields, lookups, acceptance_day, kind, filing_mode)
    documents = _documents(fields)
    # The total is compared only when every item passed: with an item refused, its value is not
    # known to be right, and a mismatch reported then would often be false.
    if all_items_good and items and invoice_total is not None \
            and sum((i.value for i in items), ZERO) != invoice_total:
        fields.add("invoice_total", "invoice_total_mismatch",
                   f"invoice_total {invoice_total} differs from the sum of the item values "
                   f"{sum((i.value for i in items), ZERO)}.")
    trader_uscc = fields.text("trader_uscc", max_length=18)
    consignment = fields.text("consignment_reference", max_length=64)
    if problems:
        return None, problems
    assert reference and kind and office and mode and transport_document and currency and invoice_total
    return Filing(reference, kind, office, mode, transport_document, countries["country_of_dispatch"],
                  countries["country_of_origin"], countries["country_of_destination"],
                  incoterm or tariff.Incoterm.CIF, currency, invoice_total, freight, insurance,
                  tuple(items), tuple(documents), trader_uscc, consignment, filing_mode), problems


def _country(fields: FieldReader, name: str) -> str | None:
    code = fields.text(name, max_length=2)
    if code is not None and not tariff.is_country(code):
        fields.add(name, "unknown_country", f"{code} is not an ISO 3166 alpha-2 country code.")
        return None
    return code


def _incoterm(fields: FieldReader) -> tariff.Incoterm | None:
    text = fields.choice("incoterm", {t.value for t in tariff.Incoterm})
    return tariff.Incoterm(text) if text else None


def _items(fields: FieldReader, lookups: Lookups, day: date, kind: DeclarationType | None,
           mode: str = "complete") -> tuple[list[Item], bool]:
    """The items that passed their checks, and whether all of them did."""
    raw_items = fields.items("items", required=True, max_items=MAX_ITEMS) or []
    items = []
    for index, raw in enumerate(raw_items):
        item = _item(raw, f"items[{index}]", index + 1, fields.problems, lookups, day, kind, mode)
        if item is not None:
            items.append(item)
    return items, len(items) == len(raw_items)


def _item(raw: object, path: str, line_number: int, problems: Problems, lookups: Lookups, day: date,
          kind: DeclarationType | None, mode: str = "complete") -> Item | None:
    if not isinstance(raw, Mapping):
        problems.add(path, "not_an_object", "Each item is an object.")
        return None
    fields = FieldReader(raw, path, problems)
    before = len(problems.items)
    fields.refuse_unknown(ITEM_FIELDS)
    line = _line(fields, lookups, day)
    description = fields.text("description", required=True, max_length=500)
    origin = _country(fields, "origin")
    certificate = _certificate(fields, origin, lookups)
    quantity = fields.amount("quantity", required=True, positive=True)
    unit = fields.text("unit", required=True, max_length=10)
    if line is not None and unit is not None and tariff.UNIT_ALIASES.get(unit.lower(), unit.upper()) != line.line.unit:
        fields.add("unit", "unit_mismatch",
                   f"Line {line.code} is declared in {line.line.unit} ({tariff.UNITS.get(line.line.unit, '')}).")
    # A summary filing may leave the masses to the complete filing.
    net = fields.amount("net_mass_kg", required=mode == "complete", positive=True)
    gross = fields.amount("gross_mass_kg", required=mode == "complete", positive=True)
    if net is not None and gross is not None and net > gross:
        fields.add("net_mass_kg", "net_mass_exceeds_gross_mass", "The net mass cannot exceed the gross mass.")
    value = fields.amount("value", required=True, positive=True)
    licences = _licence_numbers(fields)
    if line is not None and kind in TAXED_TYPES:
        _check_licences(fields, line, licences, lookups, day)
    if len(problems.items) > before:
        return None
    assert line and description and quantity and unit and value
    return Item(line_number, line.code, description, origin, certificate, quantity, line.line.unit,
                net, gross, value, tuple(licences))


def _line(fields: FieldReader, lookups: Lookups, day: date) -> tariff.LineMeasures | None:
    text = fields.text("tariff_code", required=True)
    if text is None:
        return None
    code = tariff.normalise_tariff_code(text)
    if not (code.isdigit() and len(code) == 8):
        fields.add("tariff_code", "invalid_tariff_code", "A tariff code has 8 digits.")
        return None
    line = lookups.tariff().line(code)
    if line is None:
        fields.add("tariff_code", "unknown_tariff_code", f"No tariff line {code} exists.")
        return None
    if not line.line.in_force(day):
        fields.add("tariff_code", "tariff_line_not_in_force", f"Tariff line {code} is not in force on {day}.")
        return None
    return line


def _certificate(fields: FieldReader, origin: str | None, lookups: Lookups) -> tariff.OriginCertificate | None:
    raw = fields.obj("origin_certificate")
    if raw is None:
        return None
    inner = FieldReader(raw, fields.path("origin_certificate"), fields.problems)
    inner.refuse_unknown(CERTIFICATE_FIELDS)
    agreement = inner.text("agreement", required=True, max_length=20)
    number = inner.text("number", required=True, max_length=64)
    if agreement is not None and agreement not in lookups.tariff().agreements():
        inner.add("agreement", "unknown_agreement", f"No trade agreement {agreement}.")
        return None
    if origin is None and agreement is not None:
        fields.add("origin", "required", "A certificate of origin needs the item's origin.")
    if agreement is None or number is None:
        return None
    return tariff.OriginCertificate(agreement, number)


def _licence_numbers(fields: FieldReader) -> list[str]:
    raw = fields.items("licence_numbers", max_items=10)
    numbers = []
    for index, value in enumerate(raw or []):
        if not isinstance(value, str) or not value.strip():
            fields.add(f"licence_numbers[{index}]", "not_a_string", "A licence number is a string.")
        else:
            numbers.append(value.strip())
    return numbers


def _check_licences(fields: FieldReader, line: tariff.LineMeasures, numbers: list[str], lookups: Lookups,
                    day: date) -> None:
    required = tariff.Requirement.IMPORT_LICENCE in line.in_force(day).requirements
    if required and not numbers:
        fields.add("licence_numbers", "licence_required",
                   f"Line {line.code} needs an import licence; give its number.")
    for index, number in enumerate(numbers):
        if not lookups.licence_valid(number, day):
            fields.add(f"licence_numbers[{index}]", "licence_invalid",
                       f"Licence {number} is not a licence of the trader in force on {day}.")


def _documents(fields: FieldReader) -> list[Document]:
    documents = []
    for index, raw in enumerate(fields.items("documents", max_items=20) or []):
        path = f"documents[{index}]"
        if not isinstance(raw, Mapping):
            fields.problems.add(path, "not_an_object", "Each document is an object.")
            continue
        doc = FieldReader(raw, path, fields.problems)
        doc.refuse_unknown(DOCUMENT_FIELDS)
        kind = doc.choice("type", set(DOCUMENT_TYPES), required=True)
        filename = doc.text("filename", required=True, max_length=200)
        content_type = doc.choice("content_type", DOCUMENT_CONTENT_TYPES, required=True)
        content = _decode(doc)
        if content is not None and kind is not None and len(content) > DOCUMENT_TYPES[kind]:
            doc.add("content_base64", "document_too_large",
                    f"A {kind} may be at most {DOCUMENT_TYPES[kind] // (1024 * 1024)} MiB.")
            continue
        if kind and filename and content_type and content is not None:
            documents.append(Document(kind, filename, content_type, content))
    return documents


def check_document(raw: object) -> Document:
    """One document attached after lodging (e.g. one an agency requested)."""
    problems = Problems()
    documents = _documents(FieldReader({"documents": [raw]}, "", problems))
    problems.raise_if_any()
    if not documents:
        problems.add("", "not_an_object", "A document is an object.")
        problems.raise_if_any()
    return documents[0]


def _decode(doc: FieldReader) -> bytes | None:
    text = doc.text("content_base64", required=True)
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        doc.add("content_base64", "invalid_base64", "content_base64 is not valid base64.")
        return None


# --- assessment ----------------------------------------------------------------------------------

def quote_request(filing: Filing, lookups: Lookups, acceptance_day: date) -> tariff.QuoteRequest:
    """The tariff engine's request for a filing: freight and insurance (when given) spread over
    the items by value, each item valued under the filing's incoterm, at the exchange rate of the
    acceptance day."""
    weights = [i.value for i in filing.items]
    freights = apportion(filing.freight, weights, filing.currency)
    insurances = (apportion(filing.insurance, weights, filing.currency) if filing.insurance is not None
                  else [None] * len(weights))
    rate = lookups.tariff().exchange_rate(filing.currency, acceptance_day)
    assert rate is not None, "checked by check_filing"
    items = []
    for item, freight, insurance in zip(filing.items, freights, insurances, strict=True):
        if filing.incoterm is tariff.Incoterm.CIF:
            valuation = tariff.Valuation(filing.currency, rate, customs_value=item.value)
        else:
            valuation = tariff.Valuation(filing.currency, rate, price=item.value, incoterm=filing.incoterm,
                                         freight=freight if filing.incoterm is tariff.Incoterm.FOB else ZERO,
                                         insurance=insurance)
        items.append(tariff.QuoteItem(valuation, item.quantity, item.origin, item.certificate,
                                      lookups.tariff().line(item.tariff_code), None))
    return tariff.QuoteRequest(tariff.Regime.GENERAL, acceptance_day, tuple(items))


@dataclass(frozen=True)
class Assessment:
    items: tuple[dict, ...]
    totals: dict[str, str]

    @property
    def total_due(self) -> Decimal:
        return Decimal(self.totals["total"])

    def as_dict(self) -> dict:
        return {"items": list(self.items), "totals": self.totals}


def assess(filing: Filing, lookups: Lookups, acceptance_day: date) -> Assessment:
    """Duty, consumption tax and VAT per item at the acceptance day's rates. Goods that do not
    enter the domestic market (bonded entry, export, re-export, transit) are assessed at zero."""
    if not filing.taxed:
        zero = {"customs_value_cny": "0.00", "duty": "0.00", "consumption_tax": "0.00", "vat": "0.00",
                "total": "0.00"}
        return Assessment(tuple({"line_number": i.line_number, "tariff_code": i.tariff_code, **zero,
                                 "explanation": [f"{filing.type.value}: no duty or tax is due"]}
                                for i in filing.items), zero)
    result = tariff.quote(quote_request(filing, lookups, acceptance_day), lookups.tariff().agreements()).as_dict()
    items = tuple({"line_number": item.line_number, **quoted}
                  for item, quoted in zip(filing.items, result["items"], strict=True))
    return Assessment(items, result["totals"])


def difference(before: Assessment, after: Assessment) -> dict[str, str]:
    """What a correction changes: positive to pay, negative to refund."""
    return {key: str(fen(Decimal(after.totals[key]) - Decimal(before.totals[key])))
            for key in ("duty", "consumption_tax", "vat", "total")}


# --- agency tasks --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskNeed:
    kind: TaskKind
    agency_kind: str
    title: str
    deadline_working_hours: int
    line_numbers: tuple[int, ...]


def agency_tasks_needed(filing: Filing, lookups: Lookups, day: date) -> list[TaskNeed]:
    """One task per requirement kind raised by the filing's lines, listing the items concerned.
    Only goods entering China are inspected for quarantine and checked for licences here."""
    if filing.type not in INBOUND_TYPES:
        return []
    by_requirement: dict[str, list[int]] = {}
    for item in filing.items:
        line = lookups.tariff().line(item.tariff_code)
        for requirement in line.in_force(day).requirements if line else ():
            # Licences and CCC concern goods entering the domestic market; goods kept in a bonded
            # zone meet them on release. Quarantine applies at the border, bonded or not.
            if requirement.value in TASK_RULES and (requirement.value == "quarantine" or filing.taxed):
                by_requirement.setdefault(requirement.value, []).append(item.line_number)
    return [TaskNeed(TASK_RULES[r].kind, TASK_RULES[r].agency_kind, TASK_RULES[r].title,
                     TASK_RULES[r].deadline_working_hours, tuple(lines))
            for r, lines in sorted(by_requirement.items())]


# --- where a declaration stands ------------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    """The facts that decide a declaration's status."""

    lane: Lane
    lane_cleared: bool
    lane_refused: bool = False
    task_statuses: tuple[TaskStatus, ...] = ()
    total_due: Decimal = ZERO
    paid: bool = False
    cancelled: bool = False
    released: bool = False
    exited: bool = False
    # Goods under a transferable bill of lading are released only to the holder of record.
    title_ok: bool = True


def status_of(progress: Progress) -> Status:
    """The one status a declaration shows: what still holds it, in the order an officer would
    look (lane work, agencies, taxes)."""
    if progress.cancelled:
        return Status.CANCELLED
    if progress.exited:
        return Status.EXITED
    if progress.released:
        return Status.RELEASED
    if progress.lane_refused or TaskStatus.REFUSED in progress.task_statuses:
        return Status.REFUSED
    if not progress.lane_cleared:
        return Status.INSPECTION if progress.lane is Lane.RED else Status.DOCUMENT_CHECK
    if TaskStatus.DOCUMENTS_REQUESTED in progress.task_statuses:
        return Status.DOCUMENTS_REQUESTED
    if TaskStatus.PENDING in progress.task_statuses:
        return Status.AGENCY_HOLD
    if progress.total_due > 0 and not progress.paid:
        return Status.TAXES_DUE
    if not progress.title_ok:
        return Status.TITLE_HOLD
    return Status.RELEASED


def ready_for_release(progress: Progress) -> bool:
    return not progress.released and not progress.cancelled and status_of(progress) is Status.RELEASED


# --- notification codes --------------------------------------------------------------------------

NOTIFICATION_MESSAGES: dict[str, str] = {
    "accepted": "Declaration {number} accepted.",
    "lane_assigned": "Declaration {number}: {lane} lane.",
    "inspection": "Declaration {number} is selected for physical inspection.",
    "document_check": "Declaration {number} is selected for a document check.",
    "documents_requested": "Declaration {number}: documents requested ({reason}).",
    "agency_hold": "Declaration {number} waits for agency decisions.",
    "agency_decided": "Declaration {number}: {agency} {decision}.",
    "taxes_due": "Declaration {number}: {amount} CNY of duties and taxes are due.",
    "paid": "Declaration {number}: payment {reference} recorded.",
    "released": "Declaration {number} released.",
    "refused": "Declaration {number} is refused: {reason}.",
    "amended": "Declaration {number} amended (version {version}).",
    "cancelled": "Declaration {number} cancelled.",
    "corrected": "Declaration {number} corrected after release: {amount} CNY to {direction}.",
    "exited": "Declaration {number}: the goods have exited.",
    "title_hold": "Declaration {number}: the goods wait until the trader holds the bill of lading {document}.",
    "completed": "Declaration {number}: complete filing received; difference {amount} CNY.",
    "complete_filing_overdue": "Declaration {number}: the complete filing was due on {due}.",
}


def notification_message(code: str, **values: object) -> str:
    return NOTIFICATION_MESSAGES[code].format(**values)


@dataclass(frozen=True)
class NumberParts:
    office: str
    year: int
    sequence: int
    type: DeclarationType

    def __str__(self) -> str:
        letter = {"import": "I", "export": "E", "bonded_entry": "B", "bonded_release": "R",
                  "reexport": "X", "transit": "T"}[self.type.value]
        return f"{self.office}{self.year}{letter}{self.sequence:08d}"




# --- filings as CSV ------------------------------------------------------------------------------
# One row per item; the declaration's own fields repeat on each of its rows, and rows with the
# same client_reference make one filing. Licence numbers are separated by ";". This is what a
# clerk exports from a spreadsheet; JSON (the API's body) is the other accepted file.

CSV_HEADER_FIELDS = ("client_reference", "type", "trader_uscc", "customs_office", "transport_mode",
                     "transport_document", "country_of_dispatch", "country_of_origin", "country_of_destination",
                     "incoterm", "currency", "invoice_total", "freight", "insurance", "filing_mode")
CSV_ITEM_FIELDS = ("tariff_code", "description", "origin", "quantity", "unit", "net_mass_kg", "gross_mass_kg",
                   "value", "licence_numbers")


def filings_from_csv(text: str) -> tuple[list[dict], Problems]:
    """The filings in a CSV file, as the API's JSON bodies; every problem of the file's shape
    (missing columns, a declaration field that differs between rows of one filing). The filings
    themselves are checked when lodged."""
    import csv
    import io

    problems = Problems()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = set(reader.fieldnames or [])
    for missing in ("client_reference", "tariff_code"):
        if missing not in columns:
            problems.add("header", "missing_column", f"The file needs a {missing} column.")
    for unknown in sorted(columns - set(CSV_HEADER_FIELDS) - set(CSV_ITEM_FIELDS)):
        problems.add(f"header.{unknown}", "unknown_field", f"{unknown!r} is not a column of a filing.")
    if problems:
        return [], problems
    filings: dict[str, dict] = {}
    for number, row in enumerate(reader, start=2):
        reference = (row.get("client_reference") or "").strip()
        if not reference:
            problems.add(f"rows[{number}].client_reference", "required",
                         "Each row names its filing's client_reference.")
            continue
        header = {k: row[k].strip() for k in CSV_HEADER_FIELDS if k in row and (row[k] or "").strip()}
        filing = filings.setdefault(reference, {**header, "items": []})
        for key, value in header.items():
            if filing.get(key) != value:
                problems.add(f"rows[{number}].{key}", "inconsistent_rows",
                             f"{key} differs from the first row of filing {reference}.")
        item = {k: row[k].strip() for k in CSV_ITEM_FIELDS if k in row and (row[k] or "").strip()}
        if "licence_numbers" in item:
            item["licence_numbers"] = [n.strip() for n in item["licence_numbers"].split(";") if n.strip()]
        filing["items"].append(item)
    return list(filings.values()), problems
