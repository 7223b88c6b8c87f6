"""Customs business actions: lodge, amend, cancel, correct a declaration; decide agency tasks;
record control results, payments and exit; release. Each runs in one transaction with its audit
records and outbox events (which become notifications and webhooks).

Who may do what:
- traders lodge for themselves; brokers for the traders that authorised them;
- a trader sees its declarations, a broker those it lodged and those of its principals, officers
  (customs, quarantine, licensing, the zone) all of them;
- customs officers record inspection and document-check results, exits and lane rules; agency
  officers decide the tasks of their agency's kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tradewindow.customs import model, selectivity
from tradewindow.customs.model import Filing, Lane, Progress, Status, TaskStatus
from tradewindow.customs.tables import (
    agency_tasks,
    control_results,
    declaration_counters,
    declaration_documents,
    declaration_items,
    declaration_versions,
    declarations,
    lane_decisions,
    lane_profiles,
    lane_settings,
    payments,
)
from tradewindow.logistics import service as logistics
from tradewindow.platform import caches
from tradewindow.platform.audit import audit_record, audit_writes
from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.platform.calendar import add_working_hours
from tradewindow.platform.calendar_store import cached_calendar
from tradewindow.platform.db import UnitOfWork, business_day, insert_together, utcnow
from tradewindow.platform.errors import Conflict, Forbidden, Problem, ValidationFailed, not_found, require
from tradewindow.platform.ids import new_id
from tradewindow.platform.jobs import periodic
from tradewindow.platform.money import fen, from_minor_units, to_minor_units
from tradewindow.platform.outbox import Event, append_events, event_record, event_writes, subscribe
from tradewindow.platform.settings import get_settings
from tradewindow.registry import service as registry
from tradewindow.tariff import service as tariff_service
from tradewindow.titles import service as titles

DECLARANTS = (Role.TRADER, Role.BROKER)
# The status a declaration has between its acceptance and the first status decision, decided
# within the lodging itself: it is never stored, but the "accepted" and "lane_assigned" events
# carry it.
ACCEPTED = "accepted"
# Lane profiles stored for this office code apply at every office.
ALL_OFFICES = "*"
OFFICERS = (Role.CUSTOMS, Role.QUARANTINE, Role.LICENSING, Role.ZONE, Role.ADMIN)


# Codes known to be customs offices, per engine: agencies are added, never changed or removed, so
# a code once found stays a customs office (a code not found is asked again next time).
_customs_offices: set[tuple[int, str]] = set()
caches.register(_customs_offices.clear)


class Lookups:
    """model.Lookups on the open transaction, for one declarant's trader."""

    def __init__(self, uow: UnitOfWork, trader_id: str | None) -> None:
        self.uow = uow
        self.trader_id = trader_id
        self._tariff = tariff_service.tariff_lookup(uow)

    def tariff(self) -> tariff_service.DatabaseTariff:
        return self._tariff

    def is_customs_office(self, code: str) -> bool:
        key = (id(self.uow.engine), code)
        if key in _customs_offices:
            return True
        agency = registry.agency_by_code(self.uow, code)
        found = agency is not None and agency["kind"] == "customs"
        if found:
            _customs_offices.add(key)
        return found

    def licence_valid(self, licence_number: str, on: date) -> bool:
        if self.trader_id is None:
            return False
        return any(registry.valid_licence(self.uow, self.trader_id, kind, licence_number, on)
                   for kind in ("automatic_import_licence", "import_licence"))


# --- lodging -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lodged:
    declaration: dict
    created: bool


def lodge_declaration(uow: UnitOfWork, actor: Actor, raw: object) -> Lodged:
    """Check, accept, route and assess a filing in one transaction. A filing that fails any check
    is refused with every problem and nothing is stored (the reference stays free). The same
    client reference again returns the first declaration, also when two repeats race."""
    require(actor.is_(*DECLARANTS) and actor.enterprise_id is not None, "role_not_allowed",
            "Declarations are lodged by traders and customs brokers.")
    reference = raw.get("client_reference") if isinstance(raw, Mapping) else None
    try:
        with uow.transaction():
            # The repeat check shares the lodging's transaction: one connection and one commit.
            if isinstance(reference, str) and (done := _by_reference(uow, actor, reference.strip())):
                return Lodged(done, created=False)
            return Lodged(_lodge(uow, actor, raw), created=True)
    except Conflict:
        # A concurrent repeat won the race on (declarant, client reference): answer with its result.
        if isinstance(reference, str) and (done := _by_reference(uow, actor, reference.strip())):
            return Lodged(done, created=False)
        raise


def _by_reference(uow: UnitOfWork, actor: Actor, reference: str) -> dict | None:
    with uow.read() as conn:
        declaration_id = conn.execute(_BY_REFERENCE, {"declarant": actor.enterprise_id,
                                                      "reference": reference}).scalar()
        return _view(uow, declaration_id) if declaration_id else None


# Built once: every lodgement asks.
_BY_REFERENCE = select(declarations.c.id).where(declarations.c.declarant_id == bindparam("declarant"),
                                                declarations.c.client_reference == bindparam("reference"))


def _lodge(uow: UnitOfWork, actor: Actor, raw: object) -> dict:
    """Everything a new declaration needs is decided first (checks, assessment, lane, agency
    tasks, status) and then written in one statement per table, the audit records and events
    included; the answer is composed from what was written instead of read back."""
    now = utcnow().astimezone(UTC)
    day = business_day(now)
    trader = _trader_for(uow, actor, raw)
    lookups = Lookups(uow, trader["id"] if trader else None)
    filing, problems = model.check_filing(raw, lookups, day)
    if trader is None or filing is None:
        problems.raise_if_any()
    assert filing is not None and trader is not None
    assessment = model.assess(filing, lookups, day)
    declaration_id = new_id()
    decision = _draw_lane(uow, declaration_id, filing, lookups, trader, actor.enterprise_id, now, day)
    lane = Lane(decision["lane"])
    tasks = _task_rows(uow, declaration_id, filing, lookups, day, now)
    number = _next_number(uow, filing, day)
    cleared = lane in (Lane.GREEN, Lane.BLUE)
    row = {
        "id": declaration_id, "number": number, "declarant_id": actor.enterprise_id,
        "client_reference": filing.client_reference, "trader_id": trader["id"], "lodged_by": actor.user_id,
        "type": filing.type.value, "customs_office": filing.customs_office,
        "transport_mode": filing.transport_mode, "transport_document": filing.transport_document,
        "consignment_reference": filing.consignment_reference, "currency": filing.currency,
        "credit_tier": trader["credit_tier"], "filing_mode": filing.mode,
        "complete_due_day": None, "completed_at": None, "overdue_notified_at": None,
        "invoice_total_minor": to_minor_units(filing.invoice_total, filing.currency),
        "status": ACCEPTED, "version": 1, "acceptance_day": day,
        "lane": lane.value, "lane_cleared": cleared, "lane_refused": False,
        **_totals_fen(assessment), "paid": assessment.total_due == 0,
        "lodged_at": now, "accepted_at": now, "lane_cleared_at": now if cleared else None,
        "tasks_done_at": None, "paid_at": None, "released_at": None, "exited_at": None,
        "cancelled_at": None, "cancel_reason": None,
    }
    # Where it stands at once (what _advance would find right after acceptance).
    progress = Progress(lane=lane, lane_cleared=cleared, lane_refused=False,
                        task_statuses=tuple(TaskStatus(t["status"]) for t in tasks),
                        total_due=from_minor_units(row["total_due_fen"]), paid=row["total_due_fen"] == 0,
                        title_ok=_title_ok(uow, row))
    moved, status = _moved_on(row, progress, now)
    audits = [audit_record(actor, "customs.declaration_accepted", "declaration", declaration_id, None,
                           {"number": number, "lane": lane.value, "total_due": assessment.totals["total"]})]
    if "released_at" in moved:
        audits.append(audit_record(actor, "customs.declaration_released", "declaration", declaration_id,
                                   {"status": ACCEPTED}, {"status": Status.RELEASED.value}))
    events = [_event(row, "accepted", number=number), _event(row, "lane_assigned", number=number, lane=lane.value)]
    final = {**row, **moved}
    events.extend(_status_events(final, status))

    version = _version_row(actor, declaration_id, 1, filing, assessment, None)
    insert_together(uow.conn, [
        (declarations, [final]), (declaration_versions, [version]),
        (declaration_items, _item_rows(declaration_id, filing, assessment)), (lane_decisions, [decision]),
        (agency_tasks, tasks), audit_writes(audits), event_writes(events)])
    documents = _store_documents(uow, actor, declaration_id, filing.documents)
    return _compose_view(final, version["filing"], version["assessment"], tasks, documents, [], [], now)


def _trader_for(uow: UnitOfWork, actor: Actor, raw: object) -> dict | None:
    """The trader the goods belong to: the caller's own enterprise, or, for a broker, the trader
    named in `trader_uscc`, who must have authorised it. Refuses a withdrawn trader."""
    named = raw.get("trader_uscc") if isinstance(raw, Mapping) else None
    if actor.is_(Role.BROKER):
        if not isinstance(named, str) or not named.strip():
            raise ValidationFailed("A broker names the trader it lodges for.", "required", "trader_uscc")
        trader = registry.enterprise_by_uscc(uow, named.strip())
        if trader is None:
            raise ValidationFailed(f"No enterprise with credit code {named}.", "unknown_trader", "trader_uscc")
        if not registry.broker_may_act_for(uow, actor.enterprise_id, trader["id"], business_day(utcnow())):
            raise Forbidden([Problem("trader_uscc", "broker_not_authorised",
                                     "This trader has not authorised you to lodge for it.")])
    else:
        trader = registry.get_enterprise(uow, actor, actor.enterprise_id)
        if isinstance(named, str) and named.strip() and registry.enterprise_by_uscc(uow, named.strip()) != trader:
            raise ValidationFailed("A trader lodges only for itself.", "not_your_enterprise", "trader_uscc")
    if trader["status"] != "active":
        raise ValidationFailed("The trader is withdrawn from the register.", "trader_inactive", "trader_uscc")
    return trader


def _next_number(uow: UnitOfWork, filing: Filing, day: date) -> str:
    """Numbers run per office and year. On PostgreSQL the counter is taken in its own short
    transaction, as a sequence would be: holding the counter's row lock for the whole lodgement
    would make every lodgement at an office wait for the one before it. The price is a gap in the
    numbers when a lodgement fails after its checks (rare: the filing is checked first). On SQLite
    writers are serialised anyway, so the counter stays inside the lodgement."""
    office_year = {"office": filing.customs_office, "year": day.year}
    if uow.dialect == "postgresql":
        # One statement in autocommit is its own transaction: no BEGIN and COMMIT round trips.
        with uow.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
            sequence = own.execute(_TAKE_NUMBER["postgresql"], office_year).scalar_one()
    else:
        sequence = uow.conn.execute(_TAKE_NUMBER["sqlite"], office_year).scalar_one()
    return str(model.NumberParts(filing.customs_office, day.year, sequence, filing.type))


def _take_number_statement(dialect_insert: Any) -> Any:
    """The office's next sequence number of the year (the first is 1). Built once: building it
    anew per lodgement cost more Python than executing it."""
    statement = dialect_insert(declaration_counters).values(
        office=bindparam("office"), year=bindparam("year"), last_sequence=1)
    return statement.on_conflict_do_update(
        index_elements=["office", "year"],
        set_={"last_sequence": declaration_counters.c.last_sequence + 1},
    ).returning(declaration_counters.c.last_sequence)


_TAKE_NUMBER = {"postgresql": _take_number_statement(pg_insert), "sqlite": _take_number_statement(sqlite_insert)}


def _totals_fen(assessment: model.Assessment) -> dict[str, int]:
    totals = assessment.totals
    return {"customs_value_fen": _fen(totals["customs_value_cny"]), "duty_fen": _fen(totals["duty"]),
            "consumption_tax_fen": _fen(totals["consumption_tax"]), "vat_fen": _fen(totals["vat"]),
            "total_due_fen": _fen(totals["total"])}


def _fen(text: str) -> int:
    return to_minor_units(Decimal(text))


def _version_row(actor: Actor, declaration_id: str, version: int, filing: Filing, assessment: model.Assessment,
                 reason: str | None) -> dict:
    return dict(declaration_id=declaration_id, version=version, filing=filing.as_json(),
                assessment=assessment.as_dict(), reason=reason, created_at=utcnow(), created_by=actor.username)


def _store_items(uow: UnitOfWork, declaration_id: str, filing: Filing, assessment: model.Assessment) -> None:
    """The version's items, replacing the previous version's."""
    uow.conn.execute(declaration_items.delete().where(declaration_items.c.declaration_id == declaration_id))
    uow.conn.execute(insert(declaration_items), _item_rows(declaration_id, filing, assessment))


def _item_rows(declaration_id: str, filing: Filing, assessment: model.Assessment) -> list[dict]:
    return [{
        "declaration_id": declaration_id, "line_number": item.line_number, "tariff_code": item.tariff_code,
        "description": item.description, "origin": item.origin, "quantity": str(item.quantity),
        "unit": item.unit, "net_mass_kg": str(item.net_mass_kg),
        "value_minor": to_minor_units(item.value, filing.currency),
        "customs_value_fen": _fen(assessed["customs_value_cny"]), "duty_fen": _fen(assessed["duty"]),
        "consumption_tax_fen": _fen(assessed["consumption_tax"]), "vat_fen": _fen(assessed["vat"]),
    } for item, assessed in zip(filing.items, assessment.items, strict=True)]


def _store_documents(uow: UnitOfWork, actor: Actor, declaration_id: str,
                     documents: tuple[model.Document, ...]) -> list[dict]:
    """Stores the documents; gives back their rows without the content (as the view shows them)."""
    shown = []
    for document in documents:
        row = dict(id=new_id(), declaration_id=declaration_id, type=document.type, filename=document.filename,
                   content_type=document.content_type, size=len(document.content), sha256=document.sha256,
                   content=document.content, added_at=utcnow().astimezone(UTC), added_by=actor.username)
        uow.conn.execute(insert(declaration_documents).values(row))
        shown.append({key: row[key] for key in DOCUMENT_COLUMNS})
    return shown


# The document columns a declaration's view shows (not the content).
DOCUMENT_COLUMNS = ("id", "type", "filename", "content_type", "size", "sha256", "added_at")


def _draw_lane(uow: UnitOfWork, declaration_id: str, filing: Filing, lookups: Lookups, trader: dict,
               declarant_id: str, now: datetime, day: date) -> dict:
    """Selectivity: the office's rule profiles and settings decide the lane. The seed and every
    input are recorded (the lane_decisions row returned, stored by the caller once the
    declaration is), so the decision can be explained and replayed."""
    facts = _lane_facts(uow, filing, lookups, trader, declarant_id, day)
    profiles = _active_profiles(uow, filing.customs_office)
    settings = _office_settings(uow, filing.customs_office)
    tally = _tally(uow, filing.customs_office, day, exclude=declaration_id)
    seed = selectivity.new_seed()
    decision = selectivity.select_lane(facts, profiles, settings, tally, seed)
    return dict(
        declaration_id=declaration_id, lane=decision.lane.value, seed=seed,
        explanation=selectivity.render_decision(decision),
        # Profiles that do not match these facts cannot change the draw: only the matching ones
        # are kept for the replay.
        inputs={"facts": selectivity.render_facts(facts),
                "profiles": [selectivity.render_profile(p) for p in profiles if selectivity.profile_matches(p, facts)],
                "settings": selectivity.render_office_settings(settings),
                "tally": selectivity.render_tally(tally)},
        decided_at=now)


def _lane_facts(uow: UnitOfWork, filing: Filing, lookups: Lookups, trader: dict, declarant_id: str,
                day: date) -> selectivity.DeclarationFacts:
    """The facts of the declaration being lodged (not yet stored)."""
    rate = lookups.tariff().exchange_rate(filing.currency, day) or Decimal(0)
    return selectivity.DeclarationFacts(
        office_code=filing.customs_office, trader_id=trader["id"], declarant_id=declarant_id,
        credit_tier=trader["credit_tier"], transport_mode=filing.transport_mode,
        is_first_declaration=not _has_declared(uow, trader["id"]),
        items=tuple(selectivity.ItemFacts(i.tariff_code, i.origin, i.quantity, fen(i.value * rate), i.unit)
                    for i in filing.items))


# Traders known to have a declaration stored, per engine: declarations are never deleted, so a
# trader seen with one keeps it (a trader not seen is asked again next time).
_declared: set[tuple[int, str]] = set()
caches.register(_declared.clear)


def _has_declared(uow: UnitOfWork, trader_id: str) -> bool:
    key = (id(uow.engine), trader_id)
    if key in _declared:
        return True
    found = uow.conn.execute(select(declarations.c.id).where(declarations.c.trader_id == trader_id)
                             .limit(1)).first() is not None
    if found:
        _declared.add(key)
    return found


# An office's rule profiles, parsed, per process for at most RULES_SECONDS: lane rules change a
# few times a day, lodgements many times a second. A change saved in this process applies at
# once; one saved by another server process within RULES_SECONDS.
RULES_SECONDS = 5.0
_rules: dict[tuple[int, str], tuple[float, list[selectivity.RuleProfile]]] = {}
caches.register(_rules.clear)


def _active_profiles(uow: UnitOfWork, office: str) -> list[selectivity.RuleProfile]:
    key = (id(uow.engine), office)
    hit = _rules.get(key)
    if hit is not None and monotonic() - hit[0] < RULES_SECONDS:
        return hit[1]
    rows = uow.conn.execute(select(lane_profiles.c.definition).where(
        lane_profiles.c.active.is_(True), lane_profiles.c.office.in_([office, ALL_OFFICES]))
        .order_by(lane_profiles.c.id)).scalars()
    profiles = [selectivity.parse_profile(r) for r in rows]
    _rules[key] = (monotonic(), profiles)
    return profiles


def lane_settings_for(uow: UnitOfWork, office: str) -> selectivity.OfficeSettings:
    with uow.read() as conn:
        definition = conn.execute(select(lane_settings.c.definition).where(lane_settings.c.office == office)).scalar()
        return selectivity.parse_office_settings(definition) if definition else selectivity.OfficeSettings(office)


# An office's lane settings as lodging uses them, per process for at most RULES_SECONDS, like the
# rule profiles (a change saved in this process applies at once).
_settings: dict[tuple[int, str], tuple[float, selectivity.OfficeSettings]] = {}
caches.register(_settings.clear)


def _office_settings(uow: UnitOfWork, office: str) -> selectivity.OfficeSettings:
    key = (id(uow.engine), office)
    hit = _settings.get(key)
    if hit is not None and monotonic() - hit[0] < RULES_SECONDS:
        return hit[1]
    settings = lane_settings_for(uow, office)
    _settings[key] = (monotonic(), settings)
    return settings


# The office's lane counts this month, per process, recounted at most every TALLY_SECONDS: the
# top-up only needs to know roughly how far each lane is below its expected rate, and counting a
# month of declarations on every lodgement would cost more than the rest of the lodgement.
TALLY_SECONDS = 5.0
_tallies: dict[tuple[int, str, date], tuple[float, selectivity.OfficeTally]] = {}
caches.register(_tallies.clear)


def _tally(uow: UnitOfWork, office: str, day: date, exclude: str) -> selectivity.OfficeTally:
    """The office's lane counts this calendar month (what the top-up compares with the expected
    rates), as last counted: it may lag by a few seconds, which only makes the top-up approximate."""
    key = (id(uow.engine), office, day.replace(day=1))
    hit = _tallies.get(key)
    if hit is not None and monotonic() - hit[0] < TALLY_SECONDS:
        return hit[1]
    rows = uow.conn.execute(select(declarations.c.lane, func.count()).where(
        declarations.c.customs_office == office, declarations.c.acceptance_day >= day.replace(day=1),
        declarations.c.id != exclude).group_by(declarations.c.lane)).all()
    by_lane = {lane: count for lane, count in rows}
    tally = selectivity.OfficeTally(decided=sum(by_lane.values()), by_lane=by_lane)
    _tallies[key] = (monotonic(), tally)
    return tally


def _raise_tasks(uow: UnitOfWork, declaration_id: str, filing: Filing, lookups: Lookups, day: date,
                 now: datetime, keep: set[str] | None = None) -> None:
    """The agency tasks the filing's lines require, each due within its working hours."""
    tasks = _task_rows(uow, declaration_id, filing, lookups, day, now, keep)
    if tasks:
        uow.conn.execute(insert(agency_tasks), tasks)


def _task_rows(uow: UnitOfWork, declaration_id: str, filing: Filing, lookups: Lookups, day: date,
               now: datetime, keep: set[str] | None = None) -> list[dict]:
    """The rows of the agency tasks to raise (kinds in `keep` exist already), in kind order."""
    needs = [n for n in model.agency_tasks_needed(filing, lookups, day) if keep is None or n.kind.value not in keep]
    if not needs:
        return []
    calendar = cached_calendar(uow.conn)
    zone = ZoneInfo(get_settings().time_zone)
    return [dict(id=new_id(), declaration_id=declaration_id, kind=need.kind.value, agency_kind=need.agency_kind,
                 title=need.title, line_numbers=list(need.line_numbers), status=TaskStatus.PENDING.value,
                 due_at=add_working_hours(calendar, now, need.deadline_working_hours, zone).astimezone(UTC),
                 raised_at=now, decided_at=None, decided_by=None, reason=None)
            for need in needs]


# --- moving a declaration on ---------------------------------------------------------------------

def _progress(uow: UnitOfWork, row: Mapping) -> Progress:
    statuses = tuple(TaskStatus(s) for s in uow.conn.execute(
        select(agency_tasks.c.status).where(agency_tasks.c.declaration_id == row["id"])).scalars())
    return Progress(lane=Lane(row["lane"]), lane_cleared=row["lane_cleared"], lane_refused=row["lane_refused"],
                    task_statuses=statuses, total_due=from_minor_units(row["total_due_fen"]),
                    paid=_paid(uow, row), cancelled=row["cancelled_at"] is not None,
                    released=row["released_at"] is not None, exited=row["exited_at"] is not None,
                    title_ok=_title_ok(uow, row))


def _title_ok(uow: UnitOfWork, row: Mapping) -> bool:
    """When the transport document is a bill of lading kept as a transferable record, the goods
    go only to the party entitled to them under it: its holder (unpledged), or the party that
    surrendered it against delivery."""
    if row["type"] not in {t.value for t in model.INBOUND_TYPES}:
        return True
    holder = titles.holder_of(uow, row["transport_document"])
    return holder is None or holder.entitled_to_goods == row["trader_id"]


def _paid(uow: UnitOfWork, row: Mapping) -> bool:
    """Payments and guarantees cover what is due (refunds count against them)."""
    if row["total_due_fen"] == 0:
        return True
    rows = uow.conn.execute(select(payments.c.kind, func.sum(payments.c.amount_fen)).where(
        payments.c.declaration_id == row["id"]).group_by(payments.c.kind)).all()
    covered = sum(amount for kind, amount in rows if kind != "refund") - \
        sum(amount for kind, amount in rows if kind == "refund")
    return covered >= row["total_due_fen"]


def _advance(uow: UnitOfWork, actor: Actor, declaration_id: str) -> None:
    """Recompute the status after any change; release when nothing holds the goods any more
    (automatic for a green lane without tasks or taxes). Notifies each change of status."""
    row = _row(uow, declaration_id, for_update=True)
    progress = _progress(uow, row)
    values, status = _moved_on(row, progress, utcnow())
    if "released_at" in values:
        uow.audit(actor, "customs.declaration_released", "declaration", declaration_id,
                  {"status": row["status"]}, {"status": Status.RELEASED.value})
    uow.conn.execute(update(declarations).where(declarations.c.id == declaration_id).values(**values))
    if status.value != row["status"]:
        append_events(uow.conn, _status_events({**row, **values}, status))


def _moved_on(row: Mapping, progress: Progress, now: datetime) -> tuple[dict[str, Any], Status]:
    """The declaration's new status and stage times given where it stands (`released_at` among
    them when it is released now)."""
    values: dict[str, Any] = {"paid": progress.paid}
    if progress.paid and row["paid_at"] is None and row["total_due_fen"] > 0:
        values["paid_at"] = now
    if not any(s in (TaskStatus.PENDING, TaskStatus.DOCUMENTS_REQUESTED) for s in progress.task_statuses) \
            and row["tasks_done_at"] is None:
        values["tasks_done_at"] = now
    status = model.status_of(progress)
    if model.ready_for_release(progress):
        values["released_at"] = now
        if row["filing_mode"] == "summary" and row["completed_at"] is None:
            values["complete_due_day"] = business_day(now) + timedelta(days=model.COMPLETE_FILING_DAYS)
    values["status"] = status.value
    return values, status


def _status_events(row: Mapping, status: Status) -> list[dict]:
    """The notification event of a new status, if it has one."""
    number = row["number"]
    if status is Status.TAXES_DUE:
        return [_event(row, "taxes_due", number=number, amount=str(from_minor_units(row["total_due_fen"])))]
    if status is Status.TITLE_HOLD:
        return [_event(row, "title_hold", number=number, document=row["transport_document"])]
    if status in (Status.INSPECTION, Status.DOCUMENT_CHECK, Status.AGENCY_HOLD, Status.RELEASED,
                  Status.EXITED, Status.CANCELLED):
        return [_event(row, status.value, number=number)]
    return []


def _notify(uow: UnitOfWork, row: Mapping, code: str, **values: object) -> None:
    append_events(uow.conn, [_event(row, code, **values)])


def _event(row: Mapping, code: str, **values: object) -> dict:
    """The outbox event that becomes the notification `code` about the declaration."""
    message = model.notification_message(code, **values)
    return event_record(f"customs.declaration.{code}", "declaration", row["id"], {
        "number": row["number"], "status": row.get("status"),
        "notification": {"code": f"declaration.{code}", "message": message, "subject_type": "declaration",
                         "subject_id": row["id"],
                         "audiences": sorted({row["trader_id"], row["declarant_id"]})},
    }, owner_enterprise_id=row["trader_id"])


def _row(uow: UnitOfWork, declaration_id: str, for_update: bool = False) -> dict:
    query = select(declarations).where(declarations.c.id == declaration_id)
    query = uow.locking(query, for_update)
    row = uow.conn.execute(query).mappings().first()
    if row is None:
        raise not_found("declaration", declaration_id)
    return dict(row)


# --- reading -------------------------------------------------------------------------------------

def _visibility(uow: UnitOfWork, actor: Actor) -> Any:
    """The SQL condition for the declarations the actor may see (None: all)."""
    if actor.is_(*OFFICERS):
        return None
    if not actor.is_(*DECLARANTS) or actor.enterprise_id is None:
        raise Forbidden("Your role does not see declarations.", "role_not_allowed")
    ids = registry.visible_enterprise_ids(uow, actor) or [actor.enterprise_id]
    return or_(declarations.c.trader_id.in_(ids), declarations.c.declarant_id == actor.enterprise_id)


def _visible_row(uow: UnitOfWork, actor: Actor, id_or_number: str) -> dict:
    condition = _visibility(uow, actor)
    query = select(declarations).where(or_(declarations.c.id == id_or_number,
                                           declarations.c.number == id_or_number))
    if condition is not None:
        query = query.where(condition)
    row = uow.conn.execute(query).mappings().first()
    if row is None:
        raise not_found("declaration", id_or_number)
    return dict(row)


def get_declaration(uow: UnitOfWork, actor: Actor, id_or_number: str) -> dict:
    """One declaration; for officers also `seal_record`, the seal history of the consignment it
    names (None when Trade Window follows no such consignment of its trader), and
    `sealed_release_possible`."""
    with uow.read():
        row = _visible_row(uow, actor, id_or_number)
        view = _view(uow, row["id"])
        if actor.is_(*OFFICERS):
            record = _linked_seal_record(uow, row)
            view.update(seal_record=record, sealed_release_possible=sealed_release_possible(view, record))
        return view


def list_declarations(uow: UnitOfWork, actor: Actor, status: str | None = None, lane: str | None = None,
                      type: str | None = None, q: str | None = None, limit: int = 50, offset: int = 0) -> dict:
    with uow.read() as conn:
        conditions = [c for c in (_visibility(uow, actor),) if c is not None]
        if status:
            conditions.append(declarations.c.status == status)
        if lane:
            conditions.append(declarations.c.lane == lane)
        if type:
            conditions.append(declarations.c.type == type)
        if q:
            conditions.append(or_(declarations.c.number.startswith(q.strip()),
                                  declarations.c.client_reference == q.strip(),
                                  declarations.c.transport_document == q.strip()))
        where = and_(*conditions) if conditions else True
        total = conn.execute(select(func.count()).select_from(declarations).where(where)).scalar_one()
        rows = conn.execute(select(declarations).where(where).order_by(declarations.c.id.desc())
                            .limit(limit).offset(offset)).mappings().all()
        return {"items": [_summary(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def _summary(row: Mapping) -> dict:
    return {"id": row["id"], "number": row["number"], "client_reference": row["client_reference"],
            "type": row["type"], "status": row["status"], "lane": row["lane"],
            "customs_office": row["customs_office"], "transport_mode": row["transport_mode"],
            "trader_id": row["trader_id"], "declarant_id": row["declarant_id"],
            "total_due": str(from_minor_units(row["total_due_fen"])), "accepted_at": row["accepted_at"],
            "released_at": row["released_at"], "version": row["version"], "filing_mode": row["filing_mode"],
            "complete_due_day": row["complete_due_day"], "completed_at": row["completed_at"],
            "complete_filing_overdue": _complete_overdue(row, business_day(utcnow()))}


def _complete_overdue(row: Mapping, today: date) -> bool:
    return (row["filing_mode"] == "summary" and row["completed_at"] is None
            and row["complete_due_day"] is not None and today > row["complete_due_day"])


def _view(uow: UnitOfWork, declaration_id: str) -> dict:
    row = _row(uow, declaration_id)
    version = uow.conn.execute(select(declaration_versions).where(
        declaration_versions.c.declaration_id == declaration_id,
        declaration_versions.c.version == row["version"])).mappings().one()
    tasks = uow.conn.execute(select(agency_tasks).where(agency_tasks.c.declaration_id == declaration_id)
                             .order_by(agency_tasks.c.raised_at, agency_tasks.c.kind)).mappings().all()
    documents = uow.conn.execute(select(
        declaration_documents.c.id, declaration_documents.c.type, declaration_documents.c.filename,
        declaration_documents.c.content_type, declaration_documents.c.size, declaration_documents.c.sha256,
        declaration_documents.c.added_at).where(declaration_documents.c.declaration_id == declaration_id)
        .order_by(declaration_documents.c.added_at)).mappings().all()
    paid = uow.conn.execute(select(payments).where(payments.c.declaration_id == declaration_id)
                            .order_by(payments.c.recorded_at)).mappings().all()
    controls = uow.conn.execute(select(control_results).where(
        control_results.c.declaration_id == declaration_id).order_by(control_results.c.recorded_at)).mappings().all()
    return _compose_view(row, version["filing"], version["assessment"], tasks, documents, paid, controls, utcnow())


def _compose_view(row: Mapping, filing: dict, assessment: dict, tasks: list, documents: list, paid: list,
                  controls: list, now: datetime) -> dict:
    """A declaration as the API shows it, from its row, its current version's filing and
    assessment, and its tasks, documents, payments and control results (each in stored order)."""
    return {
        **_summary(row),
        "trader_uscc": filing.get("trader_uscc"),
        "transport_document": row["transport_document"],
        "consignment_reference": row["consignment_reference"],
        "acceptance_day": row["acceptance_day"],
        "filing": filing,
        "assessment": assessment,
        "agency_tasks": [{"id": t["id"], "kind": t["kind"], "agency_kind": t["agency_kind"], "title": t["title"],
                          "line_numbers": t["line_numbers"], "status": t["status"], "due_at": t["due_at"],
                          "overdue": t["status"] in ("pending", "documents_requested") and t["due_at"] < now,
                          "decided_at": t["decided_at"], "reason": t["reason"]} for t in tasks],
        "documents": [dict(d) for d in documents],
        "payments": [{"kind": p["kind"], "reference": p["reference"],
                      "amount": str(from_minor_units(p["amount_fen"])), "recorded_at": p["recorded_at"]}
                     for p in paid],
        "controls": [{"kind": c["kind"], "conform": c["conform"], "findings": c["findings"],
                      "recorded_at": c["recorded_at"], "recorded_by": c["recorded_by"]} for c in controls],
        "paid": row["paid"],
        "stages": {k: row[k] for k in ("lodged_at", "accepted_at", "lane_cleared_at", "tasks_done_at",
                                       "paid_at", "released_at", "exited_at", "cancelled_at")},
    }


def clearance_records(uow: UnitOfWork, actor: Actor, since: date, until: date) -> list[dict]:
    """Stage times of the declarations accepted in the period that the actor may see, for the
    clearance-time statistics."""
    with uow.read() as conn:
        conditions = [declarations.c.acceptance_day >= since, declarations.c.acceptance_day <= until,
                      declarations.c.cancelled_at.is_(None)]
        if (visible := _visibility(uow, actor)) is not None:
            conditions.append(visible)
        columns = [declarations.c[name] for name in (
            "id", "number", "type", "lane", "transport_mode", "credit_tier", "customs_office", "status",
            "lodged_at", "accepted_at", "lane_cleared_at", "tasks_done_at", "paid_at", "released_at",
            "exited_at")]
        return [dict(r) for r in conn.execute(select(*columns).where(*conditions)).mappings()]


def history(uow: UnitOfWork, actor: Actor, id_or_number: str) -> list[dict]:
    """Every version of the filing, with its assessment and the reason it was made."""
    with uow.read() as conn:
        row = _visible_row(uow, actor, id_or_number)
        rows = conn.execute(select(declaration_versions).where(
            declaration_versions.c.declaration_id == row["id"]).order_by(declaration_versions.c.version)).mappings()
        return [dict(r) for r in rows]


def lane_explanation(uow: UnitOfWork, actor: Actor, id_or_number: str) -> dict:
    """Why this lane: the draws, profile by profile, and the seed to replay them. Customs only."""
    require(actor.is_(Role.CUSTOMS, Role.ADMIN), "role_not_allowed", "Lane decisions are for customs eyes.")
    with uow.read() as conn:
        row = _visible_row(uow, actor, id_or_number)
        decision = conn.execute(select(lane_decisions).where(
            lane_decisions.c.declaration_id == row["id"])).mappings().one()
        return {"lane": decision["lane"], "seed": decision["seed"], "explanation": decision["explanation"],
                "inputs": decision["inputs"], "decided_at": decision["decided_at"]}


def document_content(uow: UnitOfWork, actor: Actor, declaration_id: str, document_id: str) -> dict:
    with uow.read() as conn:
        row = _visible_row(uow, actor, declaration_id)
        document = conn.execute(select(declaration_documents).where(
            declaration_documents.c.id == document_id,
            declaration_documents.c.declaration_id == row["id"])).mappings().first()
        if document is None:
            raise not_found("document", document_id)
        return dict(document)


# --- changes by the declarant --------------------------------------------------------------------

@dataclass(frozen=True)
class NewVersion:
    filing: Filing
    lookups: Lookups
    assessment: model.Assessment
    version: int
    difference: dict[str, str]     # from the version before: + to pay, − to refund


def _new_version(uow: UnitOfWork, actor: Actor, row: Mapping, raw: object, reason: str,
                 **changes: Any) -> NewVersion:
    """Every later filing of a declaration (amendment, correction, complete filing, a customs
    officer's corrected values): checked in full, assessed at the acceptance day's rates, stored
    as the next version with its items and documents, the totals brought up to date."""
    before = uow.conn.execute(select(declaration_versions.c.assessment).where(
        declaration_versions.c.declaration_id == row["id"],
        declaration_versions.c.version == row["version"])).scalar_one()
    filing, lookups = _check_again(uow, row, raw)
    assessment = model.assess(filing, lookups, row["acceptance_day"])
    version = row["version"] + 1
    uow.conn.execute(insert(declaration_versions),
                     _version_row(actor, row["id"], version, filing, assessment, reason))
    _store_items(uow, row["id"], filing, assessment)
    _store_documents(uow, actor, row["id"], filing.documents)
    uow.conn.execute(update(declarations).where(declarations.c.id == row["id"]).values(
        version=version, transport_mode=filing.transport_mode, transport_document=filing.transport_document,
        invoice_total_minor=to_minor_units(filing.invoice_total, filing.currency),
        **_totals_fen(assessment), **changes))
    difference = model.difference(model.Assessment(tuple(before["items"]), before["totals"]), assessment)
    return NewVersion(filing, lookups, assessment, version, difference)


def amend_declaration(uow: UnitOfWork, actor: Actor, id_or_number: str, raw: object, reason: str) -> dict:
    """Before release: a new version of the filing, checked and assessed again at the acceptance
    day's rates; new requirements raise new agency tasks. The history keeps every version."""
    _require_reason(reason)
    with uow.transaction() as conn:
        row = _own_open_row(uow, actor, id_or_number)
        new = _new_version(uow, actor, row, raw, reason)
        filing, lookups, version, assessment = new.filing, new.lookups, new.version, new.assessment
        existing = set(conn.execute(select(agency_tasks.c.kind).where(
            agency_tasks.c.declaration_id == row["id"])).scalars())
        _raise_tasks(uow, row["id"], filing, lookups, row["acceptance_day"], utcnow(), keep=existing)
        uow.audit(actor, "customs.declaration_amended", "declaration", row["id"],
                  {"version": row["version"], "total_due": str(from_minor_units(row["total_due_fen"]))},
                  {"version": version, "total_due": assessment.totals["total"], "reason": reason})
        _notify(uow, row, "amended", number=row["number"], version=version)
        _advance(uow, actor, row["id"])
        return _view(uow, row["id"])


def correct_declaration(uow: UnitOfWork, actor: Actor, id_or_number: str, raw: object, reason: str) -> dict:
    """After release: a corrected filing re-assessed at the acceptance day's rates; the answer
    shows the difference to pay (positive) or to refund (negative)."""
    _require_reason(reason)
    with uow.transaction():
        row = _own_row(uow, actor, id_or_number, for_update=True)
        if row["released_at"] is None or row["cancelled_at"] is not None:
            raise Conflict("Only a released declaration is corrected; amend it before release.", "not_released")
        new = _new_version(uow, actor, row, raw, f"post-release correction: {reason}")
        version, diff = new.version, new.difference
        uow.audit(actor, "customs.declaration_corrected", "declaration", row["id"],
                  {"version": row["version"]}, {"version": version, "difference": diff, "reason": reason})
        amount = Decimal(diff["total"])
        _notify(uow, row, "corrected", number=row["number"], amount=str(abs(amount)),
                direction="pay" if amount >= 0 else "be refunded")
        return {**_view(uow, row["id"]), "difference": diff}


def complete_declaration(uow: UnitOfWork, actor: Actor, id_or_number: str, raw: object) -> dict:
    """Step two of a two-step declaration: the complete filing, checked in full and assessed at
    the acceptance day's rates; the answer shows the difference from the summary's assessment
    (positive to pay, negative to refund)."""
    with uow.transaction():
        row = _own_row(uow, actor, id_or_number, for_update=True)
        if row["filing_mode"] != "summary":
            raise Conflict("Only a summary filing is completed; this one was complete.", "not_a_summary")
        if row["completed_at"] is not None:
            raise Conflict("The complete filing was made already; file a correction.", "already_completed")
        if row["cancelled_at"] is not None:
            raise Conflict("The declaration is cancelled.", "declaration_cancelled")
        complete = {**raw, "filing_mode": "complete"} if isinstance(raw, Mapping) else raw
        now = utcnow()
        new = _new_version(uow, actor, row, complete, "complete filing", completed_at=now)
        version, diff = new.version, new.difference
        uow.audit(actor, "customs.declaration_completed", "declaration", row["id"], {"version": row["version"]},
                  {"version": version, "difference": diff,
                   "late": _complete_overdue(row, business_day(now))})
        _notify(uow, row, "completed", number=row["number"], amount=diff["total"])
        if row["released_at"] is None:
            _advance(uow, actor, row["id"])
        return {**_view(uow, row["id"]), "difference": diff}


def flag_overdue_complete_filings(uow: UnitOfWork) -> int:
    """Notify, once each, the summary filings whose complete filing is late. Run periodically
    by the worker."""
    with uow.transaction() as conn:
        today = business_day(utcnow())
        rows = conn.execute(select(declarations).where(
            declarations.c.filing_mode == "summary", declarations.c.completed_at.is_(None),
            declarations.c.complete_due_day < today, declarations.c.overdue_notified_at.is_(None),
            declarations.c.cancelled_at.is_(None)).limit(500)).mappings().all()
        for row in rows:
            conn.execute(update(declarations).where(declarations.c.id == row["id"]).values(
                overdue_notified_at=utcnow()))
            _notify(uow, row, "complete_filing_overdue", number=row["number"], due=row["complete_due_day"])
        return len(rows)


periodic("customs.flag_overdue_complete_filings", seconds=600)(flag_overdue_complete_filings)


def cancel_declaration(uow: UnitOfWork, actor: Actor, id_or_number: str, reason: str) -> dict:
    _require_reason(reason)
    with uow.transaction() as conn:
        row = _own_open_row(uow, actor, id_or_number)
        conn.execute(update(declarations).where(declarations.c.id == row["id"]).values(
            cancelled_at=utcnow(), cancel_reason=reason, status=Status.CANCELLED.value))
        uow.audit(actor, "customs.declaration_cancelled", "declaration", row["id"],
                  {"status": row["status"]}, {"status": Status.CANCELLED.value, "reason": reason})
        _notify(uow, row, "cancelled", number=row["number"])
        return _view(uow, row["id"])


def record_payment(uow: UnitOfWork, actor: Actor, id_or_number: str, kind: str, reference: str,
                   amount: Decimal) -> dict:
    """A bank transfer (payment), a guarantee, or a supplement after a correction. The amount of a
    payment must be what is still due: partial payments would leave goods in limbo."""
    if kind not in ("payment", "guarantee", "supplement"):
        raise ValidationFailed("kind is payment, guarantee or supplement.", "invalid_choice", "kind")
    if not reference.strip():
        raise ValidationFailed("Give the bank transfer or guarantee reference.", "required", "reference")
    with uow.transaction() as conn:
        row = _own_row(uow, actor, id_or_number, for_update=True)
        if row["cancelled_at"] is not None:
            raise Conflict("The declaration is cancelled.", "declaration_cancelled")
        paid = conn.execute(select(func.coalesce(func.sum(payments.c.amount_fen), 0)).where(
            payments.c.declaration_id == row["id"], payments.c.kind != "refund")).scalar_one()
        outstanding = row["total_due_fen"] - paid
        if outstanding <= 0:
            raise Conflict("Nothing is due on this declaration.", "nothing_due")
        if to_minor_units(amount.quantize(Decimal("0.01"))) != outstanding:
            raise ValidationFailed(f"The amount due is {from_minor_units(outstanding)} CNY.", "amount_mismatch",
                                   "amount")
        conn.execute(insert(payments).values(id=new_id(), declaration_id=row["id"], kind=kind,
                                             reference=reference.strip(), amount_fen=outstanding,
                                             recorded_at=utcnow(), recorded_by=actor.username))
        uow.audit(actor, f"customs.{kind}_recorded", "declaration", row["id"], None,
                  {"reference": reference, "amount": str(from_minor_units(outstanding))})
        _notify(uow, row, "paid", number=row["number"], reference=reference)
        _advance(uow, actor, row["id"])
        return _view(uow, row["id"])


def add_document(uow: UnitOfWork, actor: Actor, id_or_number: str, raw: object) -> dict:
    """Attach a document (typically one an agency requested); tasks waiting for documents go back
    to their agency's queue."""
    with uow.transaction() as conn:
        row = _own_open_row(uow, actor, id_or_number)
        document = model.check_document(raw)
        _store_documents(uow, actor, row["id"], (document,))
        conn.execute(update(agency_tasks).where(
            agency_tasks.c.declaration_id == row["id"],
            agency_tasks.c.status == TaskStatus.DOCUMENTS_REQUESTED.value).values(status=TaskStatus.PENDING.value))
        uow.audit(actor, "customs.document_added", "declaration", row["id"], None,
                  {"type": document.type, "sha256": document.sha256})
        _advance(uow, actor, row["id"])
        return _view(uow, row["id"])


def _require_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise ValidationFailed("Give the reason.", "required", "reason")


def _own_row(uow: UnitOfWork, actor: Actor, id_or_number: str, for_update: bool = False) -> dict:
    require(actor.is_(*DECLARANTS), "role_not_allowed", "Only the declarant changes a declaration.")
    row = _visible_row(uow, actor, id_or_number)
    return _row(uow, row["id"], for_update=for_update)


def _own_open_row(uow: UnitOfWork, actor: Actor, id_or_number: str) -> dict:
    row = _own_row(uow, actor, id_or_number, for_update=True)
    if row["cancelled_at"] is not None:
        raise Conflict("The declaration is cancelled.", "declaration_cancelled")
    if row["released_at"] is not None:
        raise Conflict("The declaration is released; file a post-release correction instead.", "already_released")
    return row


def _check_again(uow: UnitOfWork, row: Mapping, raw: object) -> tuple[Filing, Lookups]:
    lookups = Lookups(uow, row["trader_id"])
    filing, problems = model.check_filing(raw, lookups, row["acceptance_day"])
    problems.raise_if_any()
    assert filing is not None
    if filing.client_reference != row["client_reference"]:
        raise ValidationFailed("The client reference of a declaration cannot change.", "reference_changed",
                               "client_reference")
    if filing.type.value != row["type"] or filing.customs_office != row["customs_office"]:
        raise ValidationFailed("The type and office of a declaration cannot change; cancel and lodge anew.",
                               "type_changed", "type")
    return filing, lookups


# --- officers ------------------------------------------------------------------------------------

def task_queue(uow: UnitOfWork, actor: Actor, status: str | None = "open") -> list[dict]:
    """The tasks of the officer's agency kind, oldest deadline first; overdue ones flagged."""
    kinds = {Role.QUARANTINE: "quarantine", Role.LICENSING: "licensing"}
    require(actor.role in kinds or actor.is_(Role.ADMIN, Role.CUSTOMS), "role_not_allowed",
            "Agency queues are for agency officers.")
    with uow.read() as conn:
        query = (select(agency_tasks, declarations.c.number, declarations.c.trader_id)
                 .join(declarations, declarations.c.id == agency_tasks.c.declaration_id)
                 .order_by(agency_tasks.c.due_at))
        if actor.role in kinds:
            query = query.where(agency_tasks.c.agency_kind == kinds[actor.role])
        if status == "open":
            query = query.where(agency_tasks.c.status.in_([TaskStatus.PENDING.value,
                                                           TaskStatus.DOCUMENTS_REQUESTED.value]))
        elif status:
            query = query.where(agency_tasks.c.status == status)
        now = utcnow()
        return [{**dict(t), "overdue": t["status"] in ("pending", "documents_requested") and t["due_at"] < now}
                for t in conn.execute(query.limit(500)).mappings()]


def decide_task(uow: UnitOfWork, actor: Actor, task_id: str, decision: str, reason: str = "") -> dict:
    """An agency officer approves, refuses or requests documents (the last two with a reason)."""
    kinds = {Role.QUARANTINE: "quarantine", Role.LICENSING: "licensing"}
    require(actor.role in kinds, "role_not_allowed", "Only the agency's officers decide its tasks.")
    statuses = {"approve": TaskStatus.APPROVED, "refuse": TaskStatus.REFUSED,
                "request_documents": TaskStatus.DOCUMENTS_REQUESTED}
    if decision not in statuses:
        raise ValidationFailed(f"decision is one of: {', '.join(statuses)}.", "invalid_choice", "decision")
    if decision != "approve" and not reason.strip():
        raise ValidationFailed("Give the reason.", "required", "reason")
    with uow.transaction() as conn:
        task = conn.execute(select(agency_tasks).where(agency_tasks.c.id == task_id)).mappings().first()
        if task is None or task["agency_kind"] != kinds[actor.role]:
            raise not_found("task", task_id)
        if task["status"] not in (TaskStatus.PENDING.value,):
            raise Conflict(f"The task is {task['status']}; it is decided when pending.", "task_not_pending")
        row = _row(uow, task["declaration_id"], for_update=True)
        if row["cancelled_at"] is not None:
            raise Conflict("The declaration is cancelled.", "declaration_cancelled")
        status = statuses[decision]
        conn.execute(update(agency_tasks).where(agency_tasks.c.id == task_id).values(
            status=status.value, decided_at=utcnow(), decided_by=actor.username, reason=reason or None))
        uow.audit(actor, f"customs.task_{status.value}", "agency_task", task_id,
                  {"status": task["status"]}, {"status": status.value, "reason": reason})
        if status is TaskStatus.DOCUMENTS_REQUESTED:
            _notify(uow, row, "documents_requested", number=row["number"], reason=reason)
        elif status is TaskStatus.REFUSED:
            _notify(uow, row, "refused", number=row["number"], reason=reason)
        else:
            _notify(uow, row, "agency_decided", number=row["number"], agency=task["agency_kind"],
                    decision="approved")
        _advance(uow, actor, row["id"])
        return {**dict(conn.execute(select(agency_tasks).where(agency_tasks.c.id == task_id)).mappings().one()),
                "declaration": _summary(_row(uow, row["id"]))}


def record_control_result(uow: UnitOfWork, actor: Actor, id_or_number: str, conform: bool, findings: str,
                          corrected: object | None = None) -> dict:
    """A customs officer records the result of the physical inspection (red) or document check
    (yellow). Not conform refuses the goods unless a corrected filing is given, which re-assesses
    and clears the lane."""
    require(actor.is_(Role.CUSTOMS), "role_not_allowed", "Only customs officers record control results.")
    if not findings.strip():
        raise ValidationFailed("Write down the findings.", "required", "findings")
    with uow.transaction():
        row = _control_pending_row(uow, actor, id_or_number)
        return _record_control(uow, actor, row, conform, findings, corrected)


def _control_pending_row(uow: UnitOfWork, actor: Actor, id_or_number: str) -> dict:
    row = _row(uow, _visible_row(uow, actor, id_or_number)["id"], for_update=True)
    if row["lane_cleared"] or row["lane"] not in (Lane.RED.value, Lane.YELLOW.value):
        raise Conflict("There is no inspection or document check pending.", "no_control_pending")
    return row


def _record_control(uow: UnitOfWork, actor: Actor, row: dict, conform: bool, findings: str,
                    corrected: object | None = None, sealed: dict | None = None) -> dict:
    conn = uow.conn
    kind = "inspection" if row["lane"] == Lane.RED.value else "document_check"
    conn.execute(insert(control_results).values(
        id=new_id(), declaration_id=row["id"], kind=kind, conform=conform, findings=findings,
        recorded_at=utcnow(), recorded_by=actor.username))
    values: dict[str, Any] = {}
    if conform or corrected is not None:
        values.update(lane_cleared=True, lane_cleared_at=utcnow())
    else:
        values.update(lane_refused=True)
    if corrected is not None:
        _new_version(uow, actor, row, corrected, f"{kind}: {findings}")
    conn.execute(update(declarations).where(declarations.c.id == row["id"]).values(**values))
    after: dict[str, Any] = {"conform": conform, "findings": findings, "corrected": corrected is not None}
    if sealed is not None:
        after["released_sealed"] = sealed
    uow.audit(actor, f"customs.{kind}_recorded", "declaration", row["id"], None, after)
    if not conform and corrected is None:
        _notify(uow, row, "refused", number=row["number"], reason=findings)
    _advance(uow, actor, row["id"])
    return _view(uow, row["id"])


# --- the seal record of the consignment (customs of exit) ----------------------------------------

SEALED_RELEASE_TYPES = frozenset({model.DeclarationType.EXPORT.value, model.DeclarationType.TRANSIT.value,
                                  model.DeclarationType.REEXPORT.value})


def _linked_seal_record(uow: UnitOfWork, row: Mapping) -> dict | None:
    """The seal record of the consignment the declaration names (its consignment reference, else
    its transport document), among the declaration's trader's consignments only."""
    for reference in (row["consignment_reference"], row["transport_document"]):
        if reference and (found := logistics.seal_record(uow, reference, trader_id=row["trader_id"])):
            return found
    return None


def seal_record(uow: UnitOfWork, actor: Actor, id_or_number: str) -> dict | None:
    """The seal history of the consignment a declaration names, for customs officers; None when
    the declaration names no consignment Trade Window follows."""
    require(actor.is_(*OFFICERS), "role_not_allowed", "The seal record is shown to officers.")
    with uow.read():
        return _linked_seal_record(uow, _visible_row(uow, actor, id_or_number))


def sealed_release_possible(declaration: Mapping, record: Mapping | None) -> bool:
    """Whether the page offers "release sealed, unopened": an export, transit or re-export on the
    red lane with its inspection pending, and an unbroken seal record."""
    return (declaration["type"] in SEALED_RELEASE_TYPES and declaration["lane"] == Lane.RED.value
            and declaration["status"] == Status.INSPECTION.value and record is not None
            and bool(record["unbroken"]))


def release_sealed(uow: UnitOfWork, actor: Actor, id_or_number: str) -> dict:
    """The customs office of exit releases a sealed container without opening it: for an export,
    transit or re-export declaration selected for physical inspection (red lane) whose
    consignment's seal record is unbroken (every container under the seal it left with, intact,
    no seal alert), the inspection is recorded as conform, "released under unbroken seal record".
    Refused with `seal_record_broken` otherwise, `no_seal_record` when no consignment is linked."""
    require(actor.is_(Role.CUSTOMS), "role_not_allowed", "Only customs officers release under seal.")
    with uow.transaction():
        row = _control_pending_row(uow, actor, id_or_number)
        if row["lane_refused"] or row["cancelled_at"] is not None:
            raise Conflict("The goods are refused or the declaration cancelled.", "no_control_pending")
        if row["type"] not in SEALED_RELEASE_TYPES:
            raise Conflict("Only export, transit and re-export goods are released under seal.",
                           "not_sealed_release_type")
        if row["lane"] != Lane.RED.value:
            raise Conflict("Release under seal replaces a physical inspection: this is a document check.",
                           "no_inspection_pending")
        record = _linked_seal_record(uow, row)
        if record is None:
            named = row["consignment_reference"] or row["transport_document"]
            raise Conflict(f"No consignment is followed under {named}: there is no seal record to rely on.",
                           "no_seal_record")
        if not record["unbroken"]:
            reasons = [f"{c['number']}: {r}" for c in record["containers"] for r in c["reasons"]]
            if not record["containers"]:
                reasons.append("no sealed container")
            raise Conflict(f"The seal record of {record['consignment']['transport_document']} is not unbroken ("
                           + "; ".join(dict.fromkeys(reasons)) + "): inspect the goods.", "seal_record_broken")
        seals_text = ", ".join(f"{c['number']} seal {c['seal']['number']}" for c in record["containers"])
        findings = (f"released under unbroken seal record {record['consignment']['transport_document']} "
                    f"({seals_text})")
        summary = {"consignment_id": record["consignment"]["id"],
                   "transport_document": record["consignment"]["transport_document"],
                   "seals": {c["number"]: c["seal"]["number"] for c in record["containers"]}}
        return _record_control(uow, actor, row, True, findings, sealed=summary)


def record_exit(uow: UnitOfWork, actor: Actor, id_or_number: str) -> dict:
    """The customs office of exit confirms that exported goods have left."""
    require(actor.is_(Role.CUSTOMS), "role_not_allowed", "Only customs records exits.")
    with uow.transaction() as conn:
        row = _row(uow, _visible_row(uow, actor, id_or_number)["id"], for_update=True)
        if row["type"] not in (model.DeclarationType.EXPORT.value, model.DeclarationType.REEXPORT.value):
            raise Conflict("Only export and re-export declarations exit.", "not_an_export")
        if row["released_at"] is None or row["exited_at"] is not None:
            raise Conflict("Exit is recorded once, after release.", "not_released")
        conn.execute(update(declarations).where(declarations.c.id == row["id"]).values(exited_at=utcnow()))
        uow.audit(actor, "customs.declaration_exited", "declaration", row["id"], None, None)
        _advance(uow, actor, row["id"])
        return _view(uow, row["id"])


# --- lane rules (customs keeps them as data) -----------------------------------------------------

def list_lane_profiles(uow: UnitOfWork, actor: Actor, office: str | None = None) -> list[dict]:
    require(actor.is_(Role.CUSTOMS, Role.ADMIN), "role_not_allowed", "Lane rules are for customs eyes.")
    with uow.read() as conn:
        query = select(lane_profiles).order_by(lane_profiles.c.office, lane_profiles.c.id)
        if office:
            query = query.where(lane_profiles.c.office == office)
        return [{"id": r["id"], "office": r["office"], "active": r["active"], "profile": r["definition"],
                 "updated_at": r["updated_at"], "updated_by": r["updated_by"]} for r in conn.execute(query).mappings()]


def save_lane_profile(uow: UnitOfWork, actor: Actor, office: str, definition: dict,
                      profile_id: str | None = None) -> dict:
    """Create or change a rule profile; every problem of the definition at once."""
    require(actor.is_(Role.CUSTOMS), "role_not_allowed", "Only customs keeps lane rules.")
    with uow.transaction() as conn:
        if office != ALL_OFFICES and not Lookups(uow, None).is_customs_office(office):
            raise ValidationFailed(f"No customs office {office}.", "unknown_customs_office", "office")
        from tradewindow.platform.codelists import codes

        if profile_id is not None and conn.execute(select(lane_profiles.c.id).where(
                lane_profiles.c.id == profile_id)).first() is None:
            raise not_found("lane profile", profile_id)
        profile_id = profile_id or new_id()
        profile = selectivity.parse_profile({**definition, "id": profile_id},
                                            transport_modes=codes(conn, "transport_mode"))
        stored = selectivity.render_profile(profile)
        before = conn.execute(select(lane_profiles.c.definition).where(lane_profiles.c.id == profile_id)).scalar()
        if before is None:
            conn.execute(insert(lane_profiles).values(id=profile_id, office=office, definition=stored,
                                                      active=profile.active, updated_at=utcnow(),
                                                      updated_by=actor.username))
        else:
            conn.execute(update(lane_profiles).where(lane_profiles.c.id == profile_id).values(
                office=office, definition=stored, active=profile.active, updated_at=utcnow(),
                updated_by=actor.username))
        uow.audit(actor, "customs.lane_profile_saved", "lane_profile", profile_id, before, stored)
        _rules.clear()
        return {"id": profile_id, "office": office, "active": profile.active, "profile": stored}


def save_lane_settings(uow: UnitOfWork, actor: Actor, office: str, definition: dict) -> dict:
    require(actor.is_(Role.CUSTOMS), "role_not_allowed", "Only customs keeps lane settings.")
    with uow.transaction() as conn:
        if not Lookups(uow, None).is_customs_office(office):
            raise ValidationFailed(f"No customs office {office}.", "unknown_customs_office", "office")
        settings = selectivity.parse_office_settings({**definition, "office_code": office})
        stored = selectivity.render_office_settings(settings)
        before = conn.execute(select(lane_settings.c.definition).where(lane_settings.c.office == office)).scalar()
        if before is None:
            conn.execute(insert(lane_settings).values(office=office, definition=stored, updated_at=utcnow(),
                                                      updated_by=actor.username))
        else:
            conn.execute(update(lane_settings).where(lane_settings.c.office == office).values(
                definition=stored, updated_at=utcnow(), updated_by=actor.username))
        uow.audit(actor, "customs.lane_settings_saved", "lane_settings", office, before, stored)
        _settings.clear()
        return stored


# --- goods under a bill of lading ----------------------------------------------------------------

def recheck_title_holds(uow: UnitOfWork, bol_number: str) -> int:
    """A bill of lading changed hands: declarations waiting for their trader to hold it move on
    (released when nothing else holds them)."""
    with uow.transaction() as conn:
        ids = list(conn.execute(select(declarations.c.id).where(
            declarations.c.status == Status.TITLE_HOLD.value,
            declarations.c.transport_document == bol_number)).scalars())
        for declaration_id in ids:
            _advance(uow, SYSTEM, declaration_id)
        return len(ids)


def _on_title_event(uow: UnitOfWork, event: Event) -> None:
    if event.aggregate_type == "bill_of_lading" and (number := event.payload.get("number")):
        recheck_title_holds(uow, number)


subscribe("titles.", _on_title_event)
