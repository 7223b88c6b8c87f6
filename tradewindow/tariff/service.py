"""Tariff business actions: load and export schedules, look lines up, quote duties and taxes.

Reading the tariff is open to every authenticated role; changing it is for customs and the
administrator. A schedule import replaces the whole schedule in one transaction: either every row
is good and the new schedule stands, or nothing changes and every problem is reported."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.engine import Connection

from tradewindow.platform import caches
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork, business_today, utcnow
from tradewindow.platform.errors import ValidationFailed, not_found, require
from tradewindow.platform.ids import new_id
from tradewindow.tariff import model
from tradewindow.tariff.model import (
    Agreement,
    AgreementMember,
    ExchangeRate,
    LineMeasures,
    Measure,
    MeasureKind,
    Requirement,
    TariffLine,
)
from tradewindow.tariff.nomenclature import parse_hs_csv
from tradewindow.tariff.tables import (
    exchange_rates,
    hs_nomenclature,
    schedule_imports,
    tariff_lines,
    tariff_measures,
    trade_agreements,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
TARIFF_KEEPERS = (Role.CUSTOMS, Role.ADMIN)


# --- the tariff as the quote engine sees it ------------------------------------------------------

class _Snapshot:
    """What one version of the tariff holds, shared by every request of this process: lines,
    agreements and exchange rates change only by an import (which records itself in
    schedule_imports in the same transaction), so a request checks the version with one small
    query and reuses the parsed lines instead of reading and parsing them again."""

    def __init__(self, version: tuple) -> None:
        self.version = version
        self.lines: dict[str, LineMeasures | None] = {}
        self.rates: dict[tuple[str, date], Decimal | None] = {}
        self.agreements: dict[str, Agreement] | None = None
        self.rates_in_force: dict[tuple[str, date], model.RatesInForce] = {}


_snapshots: dict[int, _Snapshot] = {}     # by engine
caches.register(_snapshots.clear)


# Built once: every lodgement asks.
_VERSION = select(func.count(), func.max(schedule_imports.c.id)).select_from(schedule_imports)


def _snapshot(conn: Connection) -> _Snapshot:
    version = tuple(conn.execute(_VERSION).one())
    key = id(conn.engine)
    current = _snapshots.get(key)
    if current is None or current.version != version:
        current = _snapshots[key] = _Snapshot(version)
    return current


class DatabaseTariff:
    """The `model.TariffLookup` the quote engine reads, backed by the tables and by the process's
    snapshot of the current tariff version."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._snapshot = _snapshot(conn)

    @property
    def version(self) -> tuple:
        """The tariff version read: what a cache of quotes made from this lookup is valid for."""
        return self._snapshot.version

    def line(self, code: str) -> LineMeasures | None:
        lines = self._snapshot.lines
        if code not in lines:
            lines[code] = _load_lines(self.conn, [code]).get(code)
        return lines[code]

    def exchange_rate(self, currency: str, day: date) -> Decimal | None:
        if currency == "CNY":
            return Decimal(1)
        rates = self._snapshot.rates
        if (currency, day) not in rates:
            rate = self.conn.execute(
                select(exchange_rates.c.rate).where(
                    exchange_rates.c.currency == currency, exchange_rates.c.valid_from <= day,
                    or_(exchange_rates.c.valid_to.is_(None), exchange_rates.c.valid_to >= day))
                .order_by(exchange_rates.c.valid_from.desc()).limit(1)).scalar()
            rates[(currency, day)] = Decimal(rate) if rate is not None else None
        return rates[(currency, day)]

    def agreements(self) -> Mapping[str, Agreement]:
        if self._snapshot.agreements is None:
            self._snapshot.agreements = {r["code"]: _agreement(r) for r in
                                         self.conn.execute(select(trade_agreements)).mappings()}
        return self._snapshot.agreements


def _load_lines(conn: Connection, codes: list[str]) -> dict[str, LineMeasures]:
    line_rows = conn.execute(select(tariff_lines).where(tariff_lines.c.code.in_(codes))).mappings().all()
    measure_rows = conn.execute(select(tariff_measures).where(tariff_measures.c.code.in_(codes))
                                .order_by(tariff_measures.c.valid_from, tariff_measures.c.id)).mappings().all()
    measures: dict[str, list[Measure]] = {}
    for row in measure_rows:
        measures.setdefault(row["code"], []).append(_measure(row))
    return {r["code"]: LineMeasures(_line(r), tuple(measures.get(r["code"], []))) for r in line_rows}


def _line(row: Mapping) -> TariffLine:
    return TariffLine(code=row["code"], hs6=row["hs6"], description_en=row["description_en"],
                      unit=row["unit"], valid_from=row["valid_from"], valid_to=row["valid_to"],
                      description_zh=row["description_zh"], source=row["source"], note=row["note"])


def _measure(row: Mapping) -> Measure:
    return Measure(code=row["code"], kind=MeasureKind(row["kind"]), valid_from=row["valid_from"],
                   valid_to=row["valid_to"], ad_valorem=Decimal(row["ad_valorem"]),
                   specific=Decimal(row["specific"]), agreement=row["agreement"], origin=row["origin"],
                   requirement=Requirement(row["requirement"]) if row["requirement"] else None,
                   source=row["source"], note=row["note"])


def _agreement(row: Mapping) -> Agreement:
    members = []
    for token in row["members"].split():
        country, _, since = token.partition("@")
        members.append(AgreementMember(country, date.fromisoformat(since) if since else None))
    return Agreement(code=row["code"], name=row["name"], members=tuple(members),
                     valid_from=row["valid_from"], valid_to=row["valid_to"], source=row["source"])


def _members_text(agreement: Agreement) -> str:
    return " ".join(m.country + (f"@{m.valid_from.isoformat()}" if m.valid_from else "")
                    for m in agreement.members)


# --- quotes --------------------------------------------------------------------------------------

def quote(uow: UnitOfWork, actor: Actor, raw: object, today: date | None = None) -> dict:
    """Duty, consumption tax and VAT for the items of a request (DESIGN.md §4.2). Every problem
    of the request is reported at once (422); nothing is stored."""
    with uow.read() as conn:
        lookup = DatabaseTariff(conn)
        request = model.parse_quote_request(raw, lookup, today or business_today())
        return model.quote(request, lookup.agreements()).as_dict()


def quote_request(uow: UnitOfWork, request: model.QuoteRequest) -> model.Quote:
    """For other contexts (declarations, e-commerce) that build the request themselves."""
    with uow.read() as conn:
        return model.quote(request, DatabaseTariff(conn).agreements())


def tariff_lookup(uow: UnitOfWork) -> DatabaseTariff:
    """A lookup on the unit of work's open connection (call inside `uow.read()`/`transaction()`)."""
    return DatabaseTariff(uow.conn)


# --- browsing ------------------------------------------------------------------------------------

def search_lines(uow: UnitOfWork, actor: Actor, q: str = "", on_date: date | None = None,
                 limit: int = 50) -> dict:
    """National lines whose code starts with `q` (digits, dots ignored) or whose description
    holds every word of it, with the rates in force on the date."""
    on_date = on_date or business_today()
    with uow.read() as conn:
        # Validity is filtered here, before the limit, so lines not in force never crowd out
        # lines that are.
        query = (select(tariff_lines.c.code).order_by(tariff_lines.c.code).limit(limit)
                 .where(tariff_lines.c.valid_from <= on_date,
                        or_(tariff_lines.c.valid_to.is_(None), tariff_lines.c.valid_to >= on_date)))
        text = q.strip()
        digits = text.replace(".", "").replace(" ", "")
        if digits.isdigit():
            query = query.where(tariff_lines.c.code.startswith(digits, autoescape=True))
        elif text:
            for word in text.split():
                # autoescape: a typed "%" or "_" is a character to find, not a wildcard
                query = query.where(or_(tariff_lines.c.description_en.icontains(word, autoescape=True),
                                        tariff_lines.c.description_zh.contains(word, autoescape=True)))
        codes = list(conn.execute(query).scalars())
        lines = _load_lines(conn, codes)
        return {"date": on_date, "lines": [_line_view(lines[c], on_date) for c in codes]}


def get_line(uow: UnitOfWork, actor: Actor, code: str, on_date: date | None = None) -> dict:
    """One line with the rates in force on the date and its whole measure history."""
    on_date = on_date or business_today()
    with uow.read() as conn:
        line = _load_lines(conn, [model.normalise_tariff_code(code)]).get(model.normalise_tariff_code(code))
        if line is None:
            raise not_found("tariff line", code)
        view = _line_view(line, on_date)
        view["in_force"] = line.line.in_force(on_date)
        view["measures"] = [_measure_view(m) for m in line.measures]
        view["source"] = line.line.source
        view["note"] = line.line.note
        return view


def _line_view(line: LineMeasures, on_date: date) -> dict:
    rates = line.in_force(on_date)
    return {"code": line.code, "hs6": line.line.hs6, "description": line.line.description_en,
            "description_zh": line.line.description_zh, "unit": line.line.unit,
            "rates": rates.as_api_rates(),
            "additional_duties": [{"kind": m.kind.value, "origin": m.origin, "ad_valorem": str(m.ad_valorem),
                                   "specific": str(m.specific)} for m in rates.additional],
            "requirements": [r.value for r in rates.requirements]}


def _measure_view(measure: Measure) -> dict:
    return {"kind": measure.kind.value, "agreement": measure.agreement, "origin": measure.origin,
            "requirement": measure.requirement.value if measure.requirement else None,
            "ad_valorem": str(measure.ad_valorem), "specific": str(measure.specific),
            "valid_from": measure.valid_from, "valid_to": measure.valid_to, "source": measure.source,
            "note": measure.note}


def hs_entry(uow: UnitOfWork, code: str) -> dict:
    """An HS chapter, heading or subheading with its children and ancestors."""
    with uow.read() as conn:
        row = conn.execute(select(hs_nomenclature).where(hs_nomenclature.c.code == code)).mappings().first()
        if row is None:
            raise not_found("HS code", code)
        children = conn.execute(select(hs_nomenclature).where(hs_nomenclature.c.parent == code)
                                .order_by(hs_nomenclature.c.code)).mappings().all()
        ancestors = []
        parent = row["parent"]
        while parent:
            up = conn.execute(select(hs_nomenclature).where(hs_nomenclature.c.code == parent)).mappings().first()
            if up is None:
                break
            ancestors.insert(0, {"code": up["code"], "description": up["description"]})
            parent = up["parent"]
        return {"code": row["code"], "level": row["level"], "section": row["section"],
                "description": row["description"], "ancestors": ancestors,
                "children": [{"code": c["code"], "description": c["description"]} for c in children]}


def list_agreements(uow: UnitOfWork) -> list[dict]:
    """The trade agreements loaded, by code: what a certificate of origin may name."""
    with uow.read() as conn:
        agreements = DatabaseTariff(conn).agreements()
        return [{"code": a.code, "name": a.name, "members": [m.country for m in a.members],
                 "valid_from": a.valid_from, "valid_to": a.valid_to} for _, a in sorted(agreements.items())]


def exchange_rate_table(uow: UnitOfWork, on_date: date | None = None) -> list[dict]:
    on_date = on_date or business_today()
    with uow.read() as conn:
        rows = conn.execute(select(exchange_rates).where(
            exchange_rates.c.valid_from <= on_date,
            or_(exchange_rates.c.valid_to.is_(None), exchange_rates.c.valid_to >= on_date))
            .order_by(exchange_rates.c.currency)).mappings()
        return [{"currency": r["currency"], "rate": r["rate"], "valid_from": r["valid_from"],
                 "valid_to": r["valid_to"]} for r in rows]


# --- loading and exporting -----------------------------------------------------------------------

def import_schedule(uow: UnitOfWork, actor: Actor, schedule_csv: str) -> dict:
    """Replace the whole schedule (lines and measures) by the CSV's. Conventional rates must name
    agreements already loaded."""
    require(actor.is_(*TARIFF_KEEPERS), "role_not_allowed", "Only customs maintains the tariff.")
    with uow.transaction() as conn:
        agreements = DatabaseTariff(conn).agreements()
        lines, problems = model.read_schedule_csv(schedule_csv, agreements)
        if problems:
            raise ValidationFailed(problems)
        conn.execute(delete(tariff_measures))
        conn.execute(delete(tariff_lines))
        line_rows, measure_rows = [], []
        for line in lines.values():
            line_rows.append({"id": new_id(), "code": line.code, "hs6": line.line.hs6, "unit": line.line.unit,
                              "description_en": line.line.description_en,
                              "description_zh": line.line.description_zh, "valid_from": line.line.valid_from,
                              "valid_to": line.line.valid_to, "source": line.line.source,
                              "note": line.line.note})
            measure_rows.extend({
                "id": new_id(), "code": m.code, "kind": m.kind.value, "agreement": m.agreement,
                "origin": m.origin, "requirement": m.requirement.value if m.requirement else None,
                "ad_valorem": str(m.ad_valorem), "specific": str(m.specific), "valid_from": m.valid_from,
                "valid_to": m.valid_to, "source": m.source, "note": m.note} for m in line.measures)
        if line_rows:
            conn.execute(insert(tariff_lines), line_rows)
        if measure_rows:
            conn.execute(insert(tariff_measures), measure_rows)
        return _record_import(uow, actor, "schedule", len(line_rows) + len(measure_rows),
                              {"lines": len(line_rows), "measures": len(measure_rows)})


def import_agreements(uow: UnitOfWork, actor: Actor, agreements_csv: str) -> dict:
    """Replace the trade agreements. Refused if a conventional rate in the schedule would lose
    its agreement."""
    require(actor.is_(*TARIFF_KEEPERS), "role_not_allowed", "Only customs maintains the tariff.")
    agreements, problems = model.read_agreements_csv(agreements_csv)
    if problems:
        raise ValidationFailed(problems)
    with uow.transaction() as conn:
        used = set(conn.execute(select(tariff_measures.c.agreement).where(
            tariff_measures.c.agreement.is_not(None)).distinct()).scalars())
        if missing := sorted(used - set(agreements)):
            raise ValidationFailed(f"The schedule has conventional rates under {', '.join(missing)}, "
                                   "which this file leaves out.", "agreement_in_use", "agreements")
        conn.execute(delete(trade_agreements))
        rows = [{"code": a.code, "name": a.name, "members": _members_text(a), "valid_from": a.valid_from,
                 "valid_to": a.valid_to, "source": a.source} for a in agreements.values()]
        if rows:
            conn.execute(insert(trade_agreements), rows)
        return _record_import(uow, actor, "agreements", len(rows), {"agreements": len(rows)})


def import_exchange_rates(uow: UnitOfWork, actor: Actor, rates_csv: str) -> dict:
    """Replace the exchange-rate table."""
    require(actor.is_(*TARIFF_KEEPERS), "role_not_allowed", "Only customs maintains the tariff.")
    rates, problems = model.read_exchange_rates_csv(rates_csv)
    if problems:
        raise ValidationFailed(problems)
    with uow.transaction() as conn:
        conn.execute(delete(exchange_rates))
        rows = [{"currency": r.currency, "rate": str(r.rate), "valid_from": r.valid_from,
                 "valid_to": r.valid_to, "source": r.source} for r in rates]
        if rows:
            conn.execute(insert(exchange_rates), rows)
        return _record_import(uow, actor, "exchange_rates", len(rows), {"exchange_rates": len(rows)})


def import_hs(uow: UnitOfWork, actor: Actor, hs_csv: str, edition: str = "HS2022") -> dict:
    """Load (replace) the HS nomenclature from the public HS data package's CSV."""
    require(actor.is_(*TARIFF_KEEPERS), "role_not_allowed", "Only customs maintains the tariff.")
    entries, problems = parse_hs_csv(hs_csv)
    if problems:
        raise ValidationFailed(problems)
    with uow.transaction() as conn:
        conn.execute(delete(hs_nomenclature))
        rows = [{"code": e.code, "level": e.level, "parent": e.parent, "section": e.section,
                 "description": e.description, "edition": edition} for e in entries]
        for start in range(0, len(rows), 2000):
            conn.execute(insert(hs_nomenclature), rows[start:start + 2000])
        return _record_import(uow, actor, "hs", len(rows), {"entries": len(rows), "edition": edition})


def _record_import(uow: UnitOfWork, actor: Actor, kind: str, count: int, summary: dict) -> dict:
    import_id = new_id()
    uow.conn.execute(insert(schedule_imports).values(id=import_id, kind=kind, rows=count,
                                                     imported_by=actor.username, imported_at=utcnow()))
    uow.audit(actor, f"tariff.{kind}_imported", "tariff_import", import_id, None, summary)
    uow.emit(f"tariff.{kind}_imported", "tariff_import", import_id, summary)
    return {"id": import_id, "kind": kind, **summary}


def export_schedule(uow: UnitOfWork) -> str:
    with uow.read() as conn:
        codes = list(conn.execute(select(tariff_lines.c.code).order_by(tariff_lines.c.code)).scalars())
        lines = _load_lines(conn, codes)
        return model.write_schedule_csv(lines[c] for c in codes)


def export_agreements(uow: UnitOfWork) -> str:
    with uow.read() as conn:
        agreements = DatabaseTariff(conn).agreements()
        return model.write_agreements_csv(agreements[c] for c in sorted(agreements))


def export_exchange_rates(uow: UnitOfWork) -> str:
    with uow.read() as conn:
        rows = conn.execute(select(exchange_rates).order_by(exchange_rates.c.currency,
                                                            exchange_rates.c.valid_from)).mappings()
        return model.write_exchange_rates_csv(
            ExchangeRate(r["currency"], Decimal(r["rate"]), r["valid_from"], r["valid_to"], r["source"])
            for r in rows)


def load_demo_schedule(uow: UnitOfWork, actor: Actor) -> dict:
    """The demo schedule shipped in tariff/data (agreements first: the schedule refers to them)."""
    with uow.transaction():
        import_agreements(uow, actor, (DATA_DIR / "agreements.csv").read_text(encoding="utf-8"))
        import_exchange_rates(uow, actor, (DATA_DIR / "exchange_rates.csv").read_text(encoding="utf-8"))
        return import_schedule(uow, actor, (DATA_DIR / "demo_schedule.csv").read_text(encoding="utf-8"))


def schedule_summary(uow: UnitOfWork) -> dict:
    with uow.read() as conn:
        def count(table) -> int:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()
        return {"lines": count(tariff_lines), "measures": count(tariff_measures),
                "agreements": count(trade_agreements), "exchange_rates": count(exchange_rates),
                "hs_entries": count(hs_nomenclature)}
