"""Cross-border e-commerce business actions: receive an order, a payment or a waybill (one at a
time or by the batch), decide a parcel when its three documents are in, cancel a parcel, and read
the results.

How a parcel is decided exactly once, and a buyer's year never goes over its limit:
- a document is stored in its own transaction; then, in a second transaction, `decide_order`
  looks whether all three are in. Whichever of the three arrives last sees the other two
  (its check runs after its own commit), so no parcel is left undecided; a crash between the two
  transactions is healed by the periodic sweep (`decide_pending`);
- every decision runs under the lock of its buyer's year row (`cbec_buyer_years`, FOR UPDATE on
  PostgreSQL; SQLite's BEGIN IMMEDIATE serialises every writer anyway), and checks under that lock
  that the parcel is not decided yet. Two workers completing parcels of one buyer therefore take
  turns, each seeing the total the other left: no double-spend;
- a batch stores all its documents first, then decides the parcels that became complete in the
  rule's order (per buyer by ordered_at, ties by order number), locking buyers in sorted order so
  two batches never deadlock.

Who may do what: platforms send orders, payment companies payments, logistics companies waybills;
the administrator may send any (the command-line import). A party sees the parcels it sent a
document of; customs, the zone and the administrator see all. Identity numbers are shown in full
to customs officers only, masked to everyone else and in audit records and events."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from tradewindow.bonded import service as bonded_service
from tradewindow.bonded.model import InsufficientStock
from tradewindow.ecommerce import model
from tradewindow.ecommerce.model import Decision, Kind
from tradewindow.ecommerce.rates import QuoteCache
from tradewindow.ecommerce.tables import cbec_buyer_years, cbec_orders, cbec_parcels, cbec_payments, cbec_waybills
from tradewindow.platform import caches
from tradewindow.platform.audit import audit_record, record_audit_rows, record_audits
from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.platform.bulk import BULK_ROWS, array_text, insert_records, insert_text_rows
from tradewindow.platform.db import UnitOfWork, rows_keyed_by, utcnow
from tradewindow.platform.errors import Conflict, NotFound, Problem, ValidationFailed, not_found, require
from tradewindow.platform.ids import new_id, new_ids
from tradewindow.platform.jobs import handles, periodic
from tradewindow.platform.jsontext import stored as stored_json
from tradewindow.platform.money import format_amount, from_minor_units, to_minor_units
from tradewindow.platform.outbox import append_event_rows, append_events, event_record
from tradewindow.platform.settings import get_settings
from tradewindow.registry import service as registry
from tradewindow.tariff import service as tariff_service

SENDERS = {Kind.ORDER: Role.PLATFORM, Kind.PAYMENT: Role.PAYMENT, Kind.WAYBILL: Role.LOGISTICS}
PARTIES = (Role.PLATFORM, Role.PAYMENT, Role.LOGISTICS)
SEE_ALL = (Role.CUSTOMS, Role.ZONE, Role.ADMIN)
READERS = (*PARTIES, *SEE_ALL)
BATCH_SENDERS = (*PARTIES, Role.ADMIN)
TABLES = {Kind.ORDER: (cbec_orders, cbec_orders.c.order_no),
          Kind.PAYMENT: (cbec_payments, cbec_payments.c.payment_no),
          Kind.WAYBILL: (cbec_waybills, cbec_waybills.c.waybill_no)}
# Documents stored per transaction in a batch, and parcels decided per transaction in a sweep.
CHUNK = 500
# Orders decide_orders takes in one transaction: a whole stream batch (`tradewindow worker cbec
# --batch` is at most 10,000 documents), so the batch rule's order holds across the batch, not
# only within chunks of order numbers, and a batch pays its look-ups, locks and commit once (in
# chunks of 500, a batch of 1,000 mixed documents took 22 statements instead of 14).
DECIDE_CHUNK = 10_000
# The default random inspection: 1 % of clean parcels (issue 6), seeded so it is reproducible.
DEFAULT_SAMPLING = model.Sampling()


def _zone() -> ZoneInfo:
    return ZoneInfo(get_settings().time_zone)


def shows_personal_data(actor: Actor) -> bool:
    """Only customs officers need the buyer's identity number in full (DESIGN.md §3)."""
    return actor.role is Role.CUSTOMS


def may_send(actor: Actor, kind: Kind) -> bool:
    return actor.role is Role.ADMIN or (actor.role is SENDERS[kind] and actor.enterprise_id is not None)


# --- receiving documents -------------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    kind: Kind
    number: str
    created: bool
    parcel: dict | None

    def as_dict(self) -> dict:
        return {"kind": self.kind.value, "number": self.number,
                "status": "accepted" if self.created else "repeat", "parcel": self.parcel}


def submit(uow: UnitOfWork, actor: Actor, kind: Kind, raw: object,
           sampling: model.Sampling | None = None) -> Received:
    """Receive one document. The same document again (same number, same content, same sender) is
    a repeat answered as the first; a different document under a used number, or a second payment
    or waybill for an order, is refused `duplicate` (409) and the first stands. When this document
    completes its parcel, the parcel is decided and returned."""
    require(may_send(actor, kind), "role_not_allowed",
            f"{kind.value.capitalize()}s are sent by the {SENDERS[kind].value} role.")
    record = model.parse_record(kind, raw)
    sender = _sender(uow, actor, kind, record)
    try:
        with uow.transaction() as conn:
            outcome = _store(uow, conn, actor, kind, record, sender)
    except Conflict:
        # A concurrent sender of the same number won the race: compare with what it stored.
        with uow.read() as conn:
            outcome = _compare(conn, kind, record, sender)
    if isinstance(outcome, Problem):
        raise Conflict([outcome])
    parcel = decide_order(uow, record.order_no, sampling)
    if parcel is None and outcome == "repeat":
        parcel = _parcel_if_visible(uow, actor, record.order_no)
    elif parcel is not None:
        parcel = parcel_view(parcel, actor)
    return Received(kind, record.number, outcome == "created", parcel)


def _sender(uow: UnitOfWork, actor: Actor, kind: Kind, record: model.Record) -> str | None:
    """The enterprise a document belongs to: its sender; for the administrator's imports, the
    platform named by the order's platform code when that is a registered credit code."""
    if actor.enterprise_id is not None or kind is not Kind.ORDER:
        return actor.enterprise_id
    assert isinstance(record, model.Order)
    enterprise = registry.enterprise_by_uscc(uow, record.platform_code)
    return enterprise["id"] if enterprise else None


def _compare(conn: Connection, kind: Kind, record: model.Record, sender: str | None) -> str | Problem | None:
    """"repeat", a `duplicate` problem, or None when nothing holds this number or order yet."""
    table, number = TABLES[kind]
    held = conn.execute(select(table.c.body, table.c.sender_id).where(number == record.number)).first()
    name = number.name
    if held is not None:
        if model.stored_canonical_text(held.body) == model.canonical_text(record) and held.sender_id == sender:
            return "repeat"
        return Problem(name, "duplicate", f"{name} {record.number} was already used for a different "
                                          f"{kind.value}; the first one stands.")
    if kind is not Kind.ORDER and conn.execute(select(number).where(table.c.order_no == record.order_no)).first():
        return Problem("order_no", "duplicate", f"Order {record.order_no} already has a {kind.value}; "
                                                "the first one stands.")
    return None


def _store(uow: UnitOfWork, conn: Connection, actor: Actor, kind: Kind, record: model.Record,
           sender: str | None) -> str | Problem:
    if (known := _compare(conn, kind, record, sender)) is not None:
        return known
    table, number = TABLES[kind]
    row: dict[str, Any] = {number.name: record.number, "sender_id": sender, "body": model.canonical(record),
                           "received_at": utcnow()}
    if isinstance(record, model.Order):
        row |= {"buyer_id_number": record.buyer_id_number, "ordered_at": record.ordered_at}
    else:
        row["order_no"] = record.order_no
    conn.execute(insert(table).values(row))
    uow.audit(actor, f"ecommerce.{kind.value}_received", f"cbec_{kind.value}", record.number, None,
              {"order_no": record.order_no})
    return "created"


# --- deciding parcels ----------------------------------------------------------------------------

def decide_order(uow: UnitOfWork, order_no: str, sampling: model.Sampling | None = None) -> dict | None:
    """Decide the parcel of an order if its three documents are in and it is not decided yet.
    Returns the parcel's row (decided now or before), or None while a document is missing."""
    with uow.transaction() as conn:
        found = _complete_documents(conn, order_no)
        if not found:
            return None
        zone = _zone()
        order = model.parse_order(found[0]["order_body"])
        total = _lock_year(uow, order.buyer_id_number, model.limit_year(order, zone))
        if (done := _parcel_row(conn, order_no)) is not None:
            return done
        return _decide(uow, found[0], order, total, sampling or DEFAULT_SAMPLING, zone)[0]


def _complete_documents(conn: Connection, order_no: str | None = None, limit: int = CHUNK) -> list[dict]:
    """Orders with their payment and waybill and no parcel yet: the named one, or the first
    `limit` of all in the batch rule's order."""
    o, p, w = cbec_orders, cbec_payments, cbec_waybills
    query = (select(o.c.order_no, o.c.buyer_id_number, o.c.ordered_at, o.c.body.label("order_body"),
                    o.c.sender_id.label("platform_id"), p.c.body.label("payment_body"),
                    p.c.sender_id.label("payment_sender_id"), w.c.body.label("waybill_body"),
                    w.c.sender_id.label("logistics_sender_id"))
             .join(p, p.c.order_no == o.c.order_no).join(w, w.c.order_no == o.c.order_no)
             .outerjoin(cbec_parcels, cbec_parcels.c.order_no == o.c.order_no)
             .where(cbec_parcels.c.order_no.is_(None)))
    if order_no is not None:
        query = query.where(o.c.order_no == order_no)
    else:
        query = query.order_by(o.c.buyer_id_number, o.c.ordered_at, o.c.order_no).limit(limit)
    return [dict(r) for r in conn.execute(query).mappings()]


def _lock_year(uow: UnitOfWork, buyer: str, year: int) -> Decimal:
    """The buyer's total for the year, its row locked until the transaction ends."""
    conn = uow.conn
    dialect_insert = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(cbec_buyer_years).values(
        buyer_id_number=buyer, year=year, total_fen=0, parcels=0, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["buyer_id_number", "year"]))
    query = select(cbec_buyer_years.c.total_fen).where(cbec_buyer_years.c.buyer_id_number == buyer,
                                                       cbec_buyer_years.c.year == year)
    query = uow.locking(query)
    return from_minor_units(conn.execute(query).scalar_one())


def _decide(uow: UnitOfWork, documents: Mapping[str, Any], order: model.Order, year_total: Decimal,
            sampling: model.Sampling, zone: ZoneInfo) -> tuple[dict, model.Outcome, model.Assessment]:
    decided = _settle(uow, documents, order, year_total, sampling, zone, tariff_service.tariff_lookup(uow))
    _write_decisions(uow, [decided])
    return decided.row, decided.outcome, decided.assessment


@dataclass(frozen=True)
class _Decided:
    row: dict
    outcome: model.Outcome
    assessment: model.Assessment
    summary: dict


def _settle(uow: UnitOfWork, documents: Mapping[str, Any], order: model.Order, year_total: Decimal,
            sampling: model.Sampling, zone: ZoneInfo, lookup: Any, quoter: Any = model.quote_order,
            known: Mapping[Kind, model.Record] | None = None) -> _Decided:
    """A parcel's decision, under its buyer's lock (bonded goods drawn now); `_write_decisions`
    gives it its id and stores it. `known`: the parcel's documents already parsed, as stored
    (else read from their bodies)."""
    known = known or {}
    payment = known.get(Kind.PAYMENT) or model.parse_payment(documents["payment_body"])
    waybill = known.get(Kind.WAYBILL) or model.parse_waybill(documents["waybill_body"])
    assessment = model.assess(order, payment, waybill, lookup, zone, quoter)
    outcome = model.decide(assessment, year_total, sampling.draws(order.order_no))
    if order.bonded_warehouse and outcome.decision is not Decision.REJECT:
        outcome = _draw_bonded_goods(uow, order, outcome, year_total)
    row = {
        "buyer_id_number": order.buyer_id_number, "order_no": order.order_no, "id": None,
        "year": model.limit_year(order, zone), "waybill_no": waybill.waybill_no,
        "platform_id": documents["platform_id"], "payment_sender_id": documents["payment_sender_id"],
        "logistics_sender_id": documents["logistics_sender_id"], "ordered_at": order.ordered_at,
        "decision": outcome.decision.value, "reasons": [r.value for r in outcome.reasons], "status": "decided",
        "customs_value_fen": to_minor_units(assessment.customs_value),
        "duty_fen": to_minor_units(assessment.duty),
        "consumption_tax_fen": to_minor_units(assessment.consumption_tax),
        "vat_fen": to_minor_units(assessment.vat), "total_tax_fen": to_minor_units(assessment.total_tax),
        "counted_fen": to_minor_units(outcome.counted),
        "year_total_after_fen": to_minor_units(outcome.year_total_after), "decided_at": utcnow(),
        "cancelled_at": None, "cancel_reason": None,
    }
    summary = {"order_no": order.order_no, "waybill_no": waybill.waybill_no,
               "buyer": model.mask_id(order.buyer_id_number), "decision": outcome.decision.value,
               "reasons": row["reasons"], "total_tax": format_amount(assessment.total_tax)}
    return _Decided(row, outcome, assessment, summary)


def _write_decisions(uow: UnitOfWork, decided: list[_Decided]) -> None:
    """Store decided parcels, their buyers' new year totals, audit records and events: a few
    statements however many parcels."""
    if not decided:
        return
    conn, now = uow.conn, utcnow()
    for d, parcel_id in zip(decided, new_ids(len(decided)), strict=True):
        d.row["id"] = parcel_id
    many = len(decided) >= BULK_ROWS        # a stream batch's: written as text (bulk.insert_text_rows)
    if many:
        reasons: dict[tuple[str, ...], str] = {}
        rows = []
        for d in decided:
            row = d.row
            codes = tuple(row["reasons"])
            if codes not in reasons:
                reasons[codes] = stored_json(row["reasons"])
            rows.append((row["buyer_id_number"], row["order_no"], row["id"], row["year"], row["waybill_no"],
                         row["platform_id"], row["payment_sender_id"], row["logistics_sender_id"],
                         row["ordered_at"].isoformat(), row["decision"], reasons[codes], row["status"],
                         row["customs_value_fen"], row["duty_fen"], row["consumption_tax_fen"], row["vat_fen"],
                         row["total_tax_fen"], row["counted_fen"], row["year_total_after_fen"],
                         row["decided_at"].isoformat(), None, None))
        insert_text_rows(conn, cbec_parcels, PARCEL_COLUMNS, rows)
    else:
        insert_records(conn, cbec_parcels, [d.row for d in decided])
    totals: dict[tuple[str, int], list[int]] = {}
    for d in decided:
        if d.outcome.counted:
            key = (d.row["buyer_id_number"], d.row["year"])
            counted = totals.setdefault(key, [0, 0])
            counted[0], counted[1] = d.row["year_total_after_fen"], counted[1] + 1
    if totals and uow.dialect == "postgresql":
        # One statement for all (an executemany sends and runs one per buyer-year); every row
        # exists (_lock_years made it) and is found by its key, one index probe each (as an
        # UPDATE ... FROM unnest(...) the planner hashed the whole table for a few hundred).
        conn.exec_driver_sql(
            "INSERT INTO cbec_buyer_years AS t (buyer_id_number, year, total_fen, parcels, updated_at) "
            "SELECT b, y, total, n, %s FROM unnest(%s::varchar[], %s::int[], %s::bigint[], %s::int[]) "
            "AS k(b, y, total, n) ON CONFLICT (buyer_id_number, year) DO UPDATE SET total_fen = excluded.total_fen, "
            "parcels = t.parcels + excluded.parcels, updated_at = excluded.updated_at",
            (now, array_text([b for b, _ in totals]), _int_array(y for _, y in totals),
             _int_array(t for t, _ in totals.values()), _int_array(n for _, n in totals.values())))
    elif totals:
        conn.execute(update(cbec_buyer_years).where(
            cbec_buyer_years.c.buyer_id_number == bindparam("b_buyer"), cbec_buyer_years.c.year == bindparam("b_year"))
            .values(total_fen=bindparam("b_total"), parcels=cbec_buyer_years.c.parcels + bindparam("b_parcels"),
                    updated_at=now),
            [{"b_buyer": b, "b_year": y, "b_total": t, "b_parcels": n} for (b, y), (t, n) in totals.items()])
    ids = new_ids(2 * len(decided))
    if many:        # the summary's JSON text written once for its audit record and its event
        stamp = now.isoformat()
        summaries = [stored_json(d.summary) for d in decided]
        record_audit_rows(conn, [(record_id, stamp, SYSTEM.user_id, SYSTEM.username, "ecommerce.parcel_decided",
                                  "cbec_parcel", d.row["order_no"], None, summary)
                                 for d, summary, record_id in zip(decided, summaries, ids[:len(decided)], strict=True)])
        append_event_rows(conn, [(record_id, DECIDED_EVENT[d.outcome.decision], "cbec_parcel", d.row["order_no"],
                                  d.row["platform_id"], summary, stamp)
                                 for d, summary, record_id in zip(decided, summaries, ids[len(decided):], strict=True)])
        return
    record_audits(conn, [audit_record(SYSTEM, "ecommerce.parcel_decided", "cbec_parcel", d.row["order_no"], None,
                                      d.summary, record_id)
                         for d, record_id in zip(decided, ids[:len(decided)], strict=True)])
    append_events(conn, [event_record(DECIDED_EVENT[d.outcome.decision], "cbec_parcel",
                                      d.row["order_no"], d.summary, d.row["platform_id"], record_id)
                         for d, record_id in zip(decided, ids[len(decided):], strict=True)])


DECIDED_EVENT = {decision: f"ecommerce.parcel_{decision.value}" for decision in Decision}
# A parcel's columns in the order `_write_decisions` copies them.
PARCEL_COLUMNS = ("buyer_id_number", "order_no", "id", "year", "waybill_no", "platform_id", "payment_sender_id",
                  "logistics_sender_id", "ordered_at", "decision", "reasons", "status", "customs_value_fen",
                  "duty_fen", "consumption_tax_fen", "vat_fen", "total_tax_fen", "counted_fen",
                  "year_total_after_fen", "decided_at", "cancelled_at", "cancel_reason")


def _int_array(values: Iterable[int]) -> str:
    """Integers as the text of a PostgreSQL array."""
    return "{" + ",".join(str(v) for v in values) + "}"


def _draw_bonded_goods(uow: UnitOfWork, order: model.Order, outcome: model.Outcome,
                       year_total: Decimal) -> model.Outcome:
    """Bonded-import mode: a parcel to release or inspect takes its goods out of its warehouse's
    e-commerce account book (under the book's lock, taken after the buyer's: always in that
    order, so two workers never deadlock). Short stock refuses the parcel and counts nothing."""
    assert order.bonded_warehouse is not None
    goods = [(item.tariff_code, item.quantity) for item in order.items]
    try:
        bonded_service.draw_for_parcel(uow, order.bonded_warehouse, order.order_no, goods)
    except NotFound:
        return model.without_bonded_stock(outcome, year_total, model.Reason.UNKNOWN_BONDED_WAREHOUSE)
    except InsufficientStock:
        return model.without_bonded_stock(outcome, year_total, model.Reason.INSUFFICIENT_BONDED_STOCK)
    return outcome


def decide_pending(uow: UnitOfWork, sampling: model.Sampling | None = None,
                   summary: model.BatchSummary | None = None,
                   on_decided: Callable[[dict], None] | None = None) -> int:
    """Decide every complete, undecided parcel, per buyer in ordered_at order (ties by order
    number) — the batch rule — a chunk per transaction. Buyers are locked in sorted order, so two
    sweeps never deadlock. Returns how many parcels were decided."""
    sampling = sampling or DEFAULT_SAMPLING
    zone = _zone()
    decided = 0
    while True:
        with uow.transaction() as conn:
            chunk = _complete_documents(conn)
            if not chunk:
                return decided
            totals: dict[tuple[str, int], Decimal] = {}
            orders = [model.parse_order(documents["order_body"]) for documents in chunk]
            # Every buyer of the chunk locked first, in sorted order (the chunk's), and only then
            # any bonded book: the lock order of decide_order, so no two workers deadlock.
            for order in orders:
                key = (order.buyer_id_number, model.limit_year(order, zone))
                if key not in totals:
                    totals[key] = _lock_year(uow, *key)
            for documents, order in zip(chunk, orders, strict=True):
                key = (order.buyer_id_number, model.limit_year(order, zone))
                if _parcel_row(conn, order.order_no) is not None:
                    continue            # decided meanwhile by a concurrent worker
                row, outcome, assessment = _decide(uow, documents, order, totals[key], sampling, zone)
                totals[key] = outcome.year_total_after
                decided += 1
                if summary is not None:
                    summary.count_outcome(outcome, assessment.total_tax)
                if on_decided is not None:
                    on_decided(row)


def decide_orders(uow: UnitOfWork, order_nos: Iterable[str], sampling: model.Sampling | None = None,
                  on_decided: Callable[[dict], None] | None = None,
                  known: Mapping[str, Mapping[Kind, tuple[model.Record, str | None]]] | None = None,
                  complete: set[str] | None = None) -> int:
    """Decide the named orders' parcels that are complete and undecided, up to DECIDE_CHUNK per
    transaction (a stream batch's all in one): every buyer-year of a chunk locked first, in sorted
    order (so two workers never deadlock), then, under those locks, the parcels not decided yet
    decided in the batch rule's order and stored together. The stream worker's batch step; returns
    how many were decided. `known`: by order number, documents this batch has just stored, already
    parsed, with their senders (the others are read from their stored bodies); `complete`, when
    given, receives the numbers of the orders whose three documents are in (decided now or before)."""
    sampling = sampling or DEFAULT_SAMPLING
    zone = _zone()
    wanted = sorted(set(order_nos))
    decided = 0
    known = known or {}
    for start in range(0, len(wanted), DECIDE_CHUNK):
        with uow.transaction() as conn:
            found = _documents_of(conn, wanted[start:start + DECIDE_CHUNK], known)
            if complete is not None:
                complete.update(documents["order_no"] for documents in found)
            if not found:
                continue
            ready = sorted(((_parsed_order(documents), documents) for documents in found),
                           key=lambda pair: model.batch_key(pair[0].buyer_id_number, pair[0].ordered_at,
                                                            pair[0].order_no))
            totals = _lock_years(uow, sorted({(o.buyer_id_number, model.limit_year(o, zone)) for o, _ in ready}))
            # Under the locks: decided before (a repeat), or by a concurrent worker meanwhile.
            done = {row[0] for row in rows_keyed_by(conn, cbec_parcels, cbec_parcels.c.order_no,
                                                    [o.order_no for o, _ in ready], cbec_parcels.c.order_no)}
            lookup = tariff_service.tariff_lookup(uow)     # on this transaction's connection
            quotes = _quote_cache(uow, lookup)
            settled = []
            for order, documents in ready:
                if order.order_no in done:
                    continue
                key = (order.buyer_id_number, model.limit_year(order, zone))
                result = _settle(uow, documents, order, totals[key], sampling, zone, lookup, quotes,
                                 documents["known"])
                totals[key] = result.outcome.year_total_after
                settled.append(result)
            _write_decisions(uow, settled)
            decided += len(settled)
            if on_decided is not None:
                for result in settled:
                    on_decided(result.row)
    return decided


# The sender column of a parcel's row for each kind of document.
_SENDER_OF = {Kind.ORDER: "platform_id", Kind.PAYMENT: "payment_sender_id", Kind.WAYBILL: "logistics_sender_id"}


def _documents_of(conn: Connection, order_nos: list[str], known: Mapping[str, Mapping[Kind, tuple[model.Record,
                  str | None]]]) -> list[dict]:
    """The named orders whose three documents are in (decided or not), each as `_complete_documents`
    gives it, plus "known": its documents `known` holds, parsed (their bodies are not read). The
    others are looked up by order number, a statement per kind, each an index probe per order (a
    join of the three tables let the planner hash a whole table of documents on every batch):
    waybills first, then the payments of the orders that have one, then those orders. A waybill
    mostly comes last (an order is paid, then shipped), so most orders of a batch still waiting
    for a document are dropped after the first probe, their bodies never read."""
    have: dict[str, dict[str, Any]] = {}
    for order_no in order_nos:
        documents: dict[str, Any] = {"order_no": order_no, "known": {}}
        for kind, (record, sender) in known.get(order_no, {}).items():
            documents["known"][kind] = record
            documents[_SENDER_OF[kind]] = sender
        have[order_no] = documents
    for kind in (Kind.WAYBILL, Kind.PAYMENT, Kind.ORDER):
        table, body = TABLES[kind][0], f"{kind.value}_body"
        missing = [order_no for order_no, documents in have.items() if kind not in documents["known"]]
        if missing:
            for order_no, sender, stored in rows_keyed_by(conn, table, table.c.order_no, missing,
                                                          table.c.order_no, table.c.sender_id, table.c.body):
                have[order_no][body], have[order_no][_SENDER_OF[kind]] = stored, sender
        have = {order_no: documents for order_no, documents in have.items()
                if kind in documents["known"] or body in documents}
    return list(have.values())


def _parsed_order(documents: Mapping[str, Any]) -> model.Order:
    order = documents["known"].get(Kind.ORDER) or model.parse_order(documents["order_body"])
    assert isinstance(order, model.Order)
    return order


# The quotes of the stream's batches, kept from batch to batch while the tariff version stays the
# same (an import makes a new version, and a new cache): a worker asks the same quotes again and
# again, and a cache per batch computed a third of its parcels' quotes afresh. One per thread (a
# QuoteCache is not shared between threads) and database.
_quotes: dict[int, tuple[tuple, QuoteCache]] = {}
caches.register(_quotes.clear)


def _quote_cache(uow: UnitOfWork, lookup: tariff_service.DatabaseTariff) -> QuoteCache:
    key, thread = (id(uow.engine), lookup.version), threading.get_ident()
    held = _quotes.get(thread)
    if held is None or held[0] != key:
        held = _quotes[thread] = (key, QuoteCache())
    return held[1]


def _lock_years(uow: UnitOfWork, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Decimal]:
    """The buyers' totals for their years, every row locked until the transaction ends, taken in
    the sorted order of `keys`."""
    if not keys:
        return {}
    conn, now = uow.conn, utcnow()
    if uow.dialect == "postgresql":
        # The keys as two arrays: two short statements whatever their number (a VALUES list or an
        # IN of thousands of pairs costs more to compile and parse than to run).
        buyers, years = array_text([b for b, _ in keys]), _int_array(y for _, y in keys)
        conn.exec_driver_sql(
            "INSERT INTO cbec_buyer_years (buyer_id_number, year, total_fen, parcels, updated_at) "
            "SELECT b, y, 0, 0, %s FROM unnest(%s::varchar[], %s::int[]) AS k(b, y) "
            "ON CONFLICT (buyer_id_number, year) DO NOTHING", (now, buyers, years))
        # Each row locked by a probe of its own (a join of the table with the keys was planned
        # as a hash of the whole table while it was small), in the database's order of the
        # keys: the order in which the sweep (decide_pending) takes them too.
        rows = conn.exec_driver_sql(
            "SELECT t.* FROM (SELECT b, y FROM unnest(%s::varchar[], %s::int[]) AS u(b, y) ORDER BY b, y) AS k "
            "CROSS JOIN LATERAL (SELECT buyer_id_number, year, total_fen FROM cbec_buyer_years "
            "WHERE buyer_id_number = k.b AND year = k.y LIMIT 1 FOR UPDATE) AS t", (buyers, years))
        return {(b, y): from_minor_units(total) for b, y, total in rows}
    dialect_insert = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(cbec_buyer_years).values(
        [{"buyer_id_number": b, "year": y, "total_fen": 0, "parcels": 0, "updated_at": now} for b, y in keys])
        .on_conflict_do_nothing(index_elements=["buyer_id_number", "year"]))
    query = uow.locking(select(cbec_buyer_years.c.buyer_id_number, cbec_buyer_years.c.year,
                               cbec_buyer_years.c.total_fen)
                        .where(tuple_(cbec_buyer_years.c.buyer_id_number, cbec_buyer_years.c.year).in_(keys))
                        .order_by(cbec_buyer_years.c.buyer_id_number, cbec_buyer_years.c.year))
    return {(r.buyer_id_number, r.year): from_minor_units(r.total_fen) for r in conn.execute(query)}


def _store_many(uow: UnitOfWork, conn: Connection, records: list[tuple[Actor, Kind, model.Record]],
                senders: list[str | None]) -> list[str | Problem]:
    """`_store` for many documents with a few statements: the numbers (and, for payments and
    waybills, the orders) already held are read at once, the new documents inserted at once,
    their audit records too. Documents of the batch are compared with each other as with those
    stored before (the first stands)."""
    held: dict[tuple[Kind, str], tuple[str, str | None]] = {}
    order_taken: set[tuple[Kind, str]] = set()
    for kind in Kind:
        numbers = sorted({r.number for _, k, r in records if k is kind})
        if not numbers:
            continue
        table, number = TABLES[kind]
        for row in rows_keyed_by(conn, table, number, numbers, number, table.c.body, table.c.sender_id):
            held[(kind, row[0])] = (model.stored_canonical_text(row[1]), row[2])
        if kind is not Kind.ORDER:
            orders = sorted({r.order_no for _, k, r in records if k is kind})
            order_taken.update((kind, row[0]) for row in rows_keyed_by(conn, table, table.c.order_no, orders,
                                                                       table.c.order_no))
    rows: dict[Kind, list[tuple]] = {kind: [] for kind in Kind}
    audits: list[tuple[Actor, Kind, model.Record]] = []
    outcomes: list[str | Problem] = []
    now = utcnow().isoformat()      # the rows' values as their stored text (see bulk.insert_text_rows)
    for (actor, kind, record), sender in zip(records, senders, strict=True):
        body = model.canonical_text(record)
        name = TABLES[kind][1].name
        if (kind, record.number) in held:
            first_body, first_sender = held[(kind, record.number)]
            outcomes.append("repeat" if (first_body, first_sender) == (body, sender) else Problem(
                name, "duplicate", f"{name} {record.number} was already used for a different {kind.value}; "
                                   "the first one stands."))
            continue
        if kind is not Kind.ORDER and (kind, record.order_no) in order_taken:
            outcomes.append(Problem("order_no", "duplicate", f"Order {record.order_no} already has a "
                                                              f"{kind.value}; the first one stands."))
            continue
        held[(kind, record.number)] = (body, sender)
        if isinstance(record, model.Order):
            rows[kind].append((record.number, record.buyer_id_number, record.ordered_at.isoformat(), sender, body, now))
        else:
            rows[kind].append((record.number, record.order_no, sender, body, now))
            order_taken.add((kind, record.order_no))
        audits.append((actor, kind, record))
        outcomes.append("created")
    for kind, new in rows.items():
        insert_text_rows(conn, TABLES[kind][0], DOCUMENT_COLUMNS[kind], new)
    record_audit_rows(conn, [
        (record_id, now, actor.user_id, actor.username or "system", RECEIVED_ACTION[kind], f"cbec_{kind.value}",
         record.number, None, stored_json({"order_no": record.order_no}))
        for (actor, kind, record), record_id in zip(audits, new_ids(len(audits)), strict=True)])
    return outcomes


# The columns of a document's row as `_store_many` writes it, and the action of its audit record.
DOCUMENT_COLUMNS = {Kind.ORDER: ("order_no", "buyer_id_number", "ordered_at", "sender_id", "body", "received_at"),
                    Kind.PAYMENT: ("payment_no", "order_no", "sender_id", "body", "received_at"),
                    Kind.WAYBILL: ("waybill_no", "order_no", "sender_id", "body", "received_at")}
RECEIVED_ACTION = {kind: f"ecommerce.{kind.value}_received" for kind in Kind}


def receive_many(uow: UnitOfWork, received: list[tuple[Actor, Kind, object]],
                 sampling: model.Sampling | None = None) -> list[str | list[Problem]]:
    """Receive many documents from many senders at once (the stream worker's batch): each is
    stored as `submit` would (in one transaction for all), then the parcels they completed are
    decided (`decide_orders`). Per document: "created", "repeat", or the problems that refused it
    (refusals change nothing, as in `submit`)."""
    outcomes: list[str | list[Problem]] = [[] for _ in received]
    parsed: list[tuple[int, Actor, Kind, model.Record]] = []
    for index, (actor, kind, raw) in enumerate(received):
        if not may_send(actor, kind):
            outcomes[index] = [Problem("kind", "role_not_allowed",
                                       f"{kind.value.capitalize()}s are sent by the {SENDERS[kind].value} role.")]
            continue
        try:
            parsed.append((index, actor, kind, model.parse_record(kind, raw)))
        except ValidationFailed as refused:
            outcomes[index] = refused.problems
    platforms: dict[str, str | None] = {}

    def sender_of(actor: Actor, kind: Kind, record: model.Record) -> str | None:
        if actor.enterprise_id is not None or kind is not Kind.ORDER:
            return actor.enterprise_id
        assert isinstance(record, model.Order)
        if record.platform_code not in platforms:
            platforms[record.platform_code] = _sender(uow, actor, kind, record)
        return platforms[record.platform_code]
    senders = [sender_of(actor, kind, record) for _, actor, kind, record in parsed]
    try:
        with uow.transaction() as conn:
            stored = _store_many(uow, conn, [(actor, kind, record) for _, actor, kind, record in parsed], senders)
    except Conflict:
        # A concurrent worker stored one of these numbers first: one by one, as `submit` does.
        stored = []
        for (_, actor, kind, record), sender in zip(parsed, senders, strict=True):
            try:
                with uow.transaction() as conn:
                    stored.append(_store(uow, conn, actor, kind, record, sender))
            except Conflict:
                with uow.read() as conn:
                    stored.append(_compare(conn, kind, record, sender) or "repeat")
    known: dict[str, dict[Kind, tuple[model.Record, str | None]]] = {}
    for (index, _, kind, record), outcome, sender in zip(parsed, stored, senders, strict=True):
        outcomes[index] = [outcome] if isinstance(outcome, Problem) else outcome
        if outcome == "created":      # stored as parsed here: the parcel's deciding need not read it back
            known.setdefault(record.order_no, {})[kind] = (record, sender)
    order_nos = [record.order_no for (index, _, _, record) in parsed if not isinstance(outcomes[index], list)]
    waiting = _waiting_documents(uow)
    for order_no in order_nos:
        held = waiting.pop(order_no, None)       # stored by an earlier batch of this process
        if held is not None:
            known[order_no] = {**held, **known.get(order_no, {})}
    complete: set[str] = set()
    decide_orders(uow, order_nos, sampling, known=known, complete=complete)
    for order_no, documents in known.items():
        if order_no not in complete:
            waiting[order_no] = documents
    while len(waiting) > WAITING_KEPT:
        waiting.popitem(last=False)              # the oldest first
    return outcomes


# Documents a process has stored (`receive_many`) whose parcel it has not yet seen complete, parsed,
# with their senders, by order number: the batch that brings the last document of the parcel has
# the others at hand instead of reading their bodies back and parsing them again (a stream worker
# holds most of the documents it waits on). Documents are never changed or removed once stored, so
# what is held is what the database holds; whoever empties or restores the database behind the
# services' back clears it with the other caches (platform.caches). Per thread and database, at
# most WAITING_KEPT order numbers (an order and its payment ~2 KB), the oldest dropped first.
WAITING_KEPT = 20_000
# (An OrderedDict: a dict emptied from the front one key at a time walks past its deleted keys at
# every step.)
_waiting: dict[tuple[int, int], OrderedDict[str, dict[Kind, tuple[model.Record, str | None]]]] = {}
caches.register(_waiting.clear)


def _waiting_documents(uow: UnitOfWork) -> OrderedDict[str, dict[Kind, tuple[model.Record, str | None]]]:
    return _waiting.setdefault((threading.get_ident(), id(uow.engine)), OrderedDict())


# --- queued documents (the stream: NATS JetStream, or the database job queue) ---------------------

# The database job queue's queue of e-commerce documents (the embedded default of the stream).
RECORD_QUEUE = "cbec.records"


def queued(actor: Actor, kind: Kind, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A document as it travels on the stream: its kind, its fields as sent, and who sent it."""
    return {"kind": kind.value, "record": dict(raw),
            "actor": {"user_id": actor.user_id, "username": actor.username, "role": actor.role.value,
                      "enterprise_id": actor.enterprise_id}}


def receive_queued(uow: UnitOfWork, bodies: list[Any], sampling: model.Sampling | None = None
                   ) -> list[str | list[Problem]]:
    """Receive documents taken from the stream (`queued` dicts): `receive_many` for all of them.
    A body that is not a queued document is refused (`malformed_message`). Errors other than
    refusals (the database restarting) propagate, so the queue tries again."""
    outcomes: list[str | list[Problem]] = [[] for _ in bodies]
    unpacked: list[tuple[Actor, Kind, object]] = []
    where: list[int] = []
    actors: dict[tuple, Actor] = {}        # a batch comes from a few senders
    for index, body in enumerate(bodies):
        try:
            who = body["actor"]
            key = (who["user_id"], who["username"], who["role"], who["enterprise_id"])
            actor = actors.get(key)
            if actor is None:
                actor = actors[key] = Actor(user_id=key[0], username=key[1], role=Role(key[2]), enterprise_id=key[3])
            unpacked.append((actor, Kind(body["kind"]), body["record"]))
            where.append(index)
        except (KeyError, TypeError, ValueError):
            outcomes[index] = [Problem("", "malformed_message", "Not a queued e-commerce document.")]
    for index, outcome in zip(where, receive_many(uow, unpacked, sampling), strict=True):
        outcomes[index] = outcome
    return outcomes


@handles(RECORD_QUEUE)
def _queued_document(uow: UnitOfWork, payload: dict[str, Any]) -> None:
    """The general worker applies documents queued in the database (the embedded default)."""
    receive_queued(uow, [payload])


@periodic("ecommerce.decide_pending", 30)
def _sweep(uow: UnitOfWork) -> int:
    """Heals a crash between storing a parcel's last document and deciding it."""
    return decide_pending(uow)


# --- batches -------------------------------------------------------------------------------------

def ndjson_objects(lines: Iterable[str | bytes]) -> Iterator[tuple[int, object]]:
    """(line number, decoded JSON or a Problem) for each non-blank line."""
    for number, line in enumerate(lines, start=1):
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            yield number, Problem("", "malformed_json", "This line is not a JSON object.")


def import_batch(uow: UnitOfWork, actor: Actor, objects: Iterable[tuple[int, object]],
                 kind: Kind | None = None, sampling: model.Sampling | None = None,
                 on_progress: Callable[[str, int], None] | None = None,
                 on_decided: Callable[[dict], None] | None = None) -> model.BatchSummary:
    """Store a batch of documents (each line its own outcome: accepted, repeat, or refused with
    its errors), then decide the parcels that are complete, limits in the batch rule's order.
    `kind` fixes the kind of every record (the per-kind endpoints); otherwise each carries its
    "kind". Memory stays bounded: documents go in chunks, decisions in chunks."""
    require(actor.is_(*BATCH_SENDERS), "role_not_allowed",
            "Batches are sent by platforms, payment and logistics companies, or an administrator.")
    summary = model.BatchSummary()
    chunk: list[tuple[int, Kind, model.Record]] = []
    for number, raw in objects:
        summary.lines += 1
        parsed = _parse_batch_line(actor, raw, kind)
        if isinstance(parsed, list):
            summary.refused.append({"line": number, "errors": [p.as_dict() for p in parsed]})
        else:
            chunk.append((number, *parsed))
        if len(chunk) >= CHUNK:
            _store_chunk(uow, actor, chunk, summary)
            chunk = []
            if on_progress:
                on_progress("stored", summary.lines)
    if chunk:
        _store_chunk(uow, actor, chunk, summary)
    if on_progress:
        on_progress("stored", summary.lines)
    decide_pending(uow, sampling, summary, on_decided)
    uow_summary = summary.as_dict(refused_limit=20)
    with uow.transaction():
        uow.audit(actor, "ecommerce.batch_imported", "cbec_batch", new_id(), None,
                  {k: uow_summary[k] for k in ("lines", "accepted", "repeated", "refused", "parcels_decided")})
    return summary


def _parse_batch_line(actor: Actor, raw: object, kind: Kind | None) -> tuple[Kind, model.Record] | list[Problem]:
    if isinstance(raw, Problem):
        return [raw]
    try:
        if kind is None:
            line_kind, record = model.parse_line(raw)
        else:
            line_kind, record = kind, model.parse_record(kind, raw)
    except ValidationFailed as refused:
        return refused.problems
    if not may_send(actor, line_kind):
        return [Problem("kind", "role_not_allowed",
                        f"{line_kind.value.capitalize()}s are sent by the {SENDERS[line_kind].value} role.")]
    return line_kind, record


def _store_chunk(uow: UnitOfWork, actor: Actor, chunk: list[tuple[int, Kind, model.Record]],
                 summary: model.BatchSummary) -> None:
    senders = {id(record): _sender(uow, actor, kind, record) for _, kind, record in chunk}
    try:
        with uow.transaction() as conn:
            outcomes = [_store(uow, conn, actor, kind, record, senders[id(record)]) for _, kind, record in chunk]
    except Conflict:
        # A concurrent sender took a number of this chunk first: go one by one.
        outcomes = []
        for _, kind, record in chunk:
            try:
                with uow.transaction() as conn:
                    outcomes.append(_store(uow, conn, actor, kind, record, senders[id(record)]))
            except Conflict:
                with uow.read() as conn:
                    outcomes.append(_compare(conn, kind, record, senders[id(record)]) or "repeat")
    for (number, kind, _), outcome in zip(chunk, outcomes, strict=True):
        if isinstance(outcome, Problem):
            summary.refused.append({"line": number, "errors": [outcome.as_dict()]})
        elif outcome == "repeat":
            summary.repeated += 1
        else:
            summary.accepted[kind.value] += 1


# --- cancelling ----------------------------------------------------------------------------------

def cancel_parcel(uow: UnitOfWork, actor: Actor, order_no: str, reason: str) -> dict:
    """The platform cancels a parcel (order cancelled, goods returned): its amount goes back to
    the buyer's year. Cancelling again returns the cancelled parcel."""
    require(actor.is_(Role.PLATFORM), "role_not_allowed", "Parcels are cancelled by their platform.")
    if not reason.strip():
        raise ValidationFailed("Say why the parcel is cancelled.", "required", "reason")
    with uow.transaction() as conn:
        row = _parcel_row(conn, order_no)
        if row is None or row["platform_id"] != actor.enterprise_id:
            raise not_found("parcel", order_no)
        if row["status"] == "cancelled":
            return parcel_view(row, actor)
        _lock_year(uow, row["buyer_id_number"], row["year"])
        now = utcnow()
        conn.execute(update(cbec_parcels).where(cbec_parcels.c.buyer_id_number == row["buyer_id_number"],
                                                cbec_parcels.c.order_no == order_no)
                     .values(status="cancelled", cancelled_at=now, cancel_reason=reason.strip()))
        warehouse = conn.execute(select(cbec_orders.c.body).where(cbec_orders.c.order_no == order_no)
                                 ).scalar_one().get("bonded_warehouse") if row["decision"] != "reject" else None
        if warehouse:
            bonded_service.return_parcel_goods(uow, warehouse, order_no)   # the goods go back to the book
        if row["counted_fen"]:
            conn.execute(update(cbec_buyer_years).where(
                cbec_buyer_years.c.buyer_id_number == row["buyer_id_number"], cbec_buyer_years.c.year == row["year"])
                .values(total_fen=cbec_buyer_years.c.total_fen - row["counted_fen"],
                        parcels=cbec_buyer_years.c.parcels - 1, updated_at=now))
        summary = {"order_no": order_no, "reason": reason.strip(),
                   "amount_returned": format_amount(from_minor_units(row["counted_fen"]))}
        uow.audit(actor, "ecommerce.parcel_cancelled", "cbec_parcel", order_no,
                  {"status": row["status"]}, {"status": "cancelled", **summary})
        uow.emit("ecommerce.parcel_cancelled", "cbec_parcel", order_no, summary,
                 owner_enterprise_id=row["platform_id"])
        return parcel_view(_parcel_row(conn, order_no), actor)  # type: ignore[arg-type]


# --- reading -------------------------------------------------------------------------------------

def _parcel_row(conn: Connection, order_no: str) -> dict | None:
    row = conn.execute(select(cbec_parcels).where(cbec_parcels.c.order_no == order_no)).mappings().first()
    return dict(row) if row else None


def _money(fen: int) -> str:
    return format_amount(from_minor_units(fen))


def parcel_view(row: Mapping[str, Any], actor: Actor) -> dict:
    """A parcel's result as the issue names its fields; the identity number masked unless the
    reader is a customs officer."""
    buyer = row["buyer_id_number"]
    return {
        "order_no": row["order_no"], "waybill_no": row["waybill_no"],
        "buyer_id_number": buyer if shows_personal_data(actor) else model.mask_id(buyer),
        "year": row["year"], "ordered_at": row["ordered_at"], "decision": row["decision"],
        "reasons": list(row["reasons"]), "status": row["status"],
        "customs_value": _money(row["customs_value_fen"]), "duty": _money(row["duty_fen"]),
        "consumption_tax": _money(row["consumption_tax_fen"]), "vat": _money(row["vat_fen"]),
        "total_tax": _money(row["total_tax_fen"]), "counted": _money(row["counted_fen"]),
        "buyer_year_total_after": _money(row["year_total_after_fen"]), "decided_at": row["decided_at"],
        "cancelled_at": row["cancelled_at"], "cancel_reason": row["cancel_reason"],
    }


def _scope(actor: Actor) -> Any:
    """The parcels an actor may see, as a where-clause (None: all)."""
    require(actor.is_(*READERS), "role_not_allowed",
            "Parcels are seen by their platform, payment and logistics companies, customs and the zone.")
    column = {Role.PLATFORM: cbec_parcels.c.platform_id, Role.PAYMENT: cbec_parcels.c.payment_sender_id,
              Role.LOGISTICS: cbec_parcels.c.logistics_sender_id}.get(actor.role)
    if column is None:
        return None
    return column == actor.enterprise_id


def _documents(conn: Connection, order_no: str) -> dict[Kind, Any]:
    found: dict[Kind, Any] = {}
    for kind, (table, _) in TABLES.items():
        row = conn.execute(select(table).where(table.c.order_no == order_no)).mappings().first()
        if row is not None:
            found[kind] = row
    return found


def _may_see_documents(actor: Actor, documents: Mapping[Kind, Any]) -> bool:
    if actor.is_(*SEE_ALL):
        return True
    return actor.is_(*PARTIES) and any(d["sender_id"] == actor.enterprise_id for d in documents.values())


def _masked_body(kind: Kind, body: Mapping[str, Any], actor: Actor) -> dict:
    shown = dict(body)
    if not shows_personal_data(actor):
        for name in ("buyer_id_number", "payer_id_number"):
            if name in shown:
                shown[name] = model.mask_id(shown[name])
    return shown


def get_parcel(uow: UnitOfWork, actor: Actor, order_no: str) -> dict:
    """What became of an order: the documents received so far and, once decided, the result."""
    require(actor.is_(*READERS), "role_not_allowed", "Parcels are seen by their parties, customs and the zone.")
    with uow.read() as conn:
        documents = _documents(conn, order_no)
        if not documents or not _may_see_documents(actor, documents):
            raise not_found("parcel", order_no)
        row = _parcel_row(conn, order_no)
        return {
            "order_no": order_no,
            "status": row["status"] if row else "waiting",
            "documents": {kind.value: (_masked_body(kind, documents[kind]["body"], actor)
                                       if kind in documents else None) for kind in Kind},
            "result": parcel_view(row, actor) if row else None,
        }


def _parcel_if_visible(uow: UnitOfWork, actor: Actor, order_no: str) -> dict | None:
    with uow.read() as conn:
        row = _parcel_row(conn, order_no)
        return parcel_view(row, actor) if row else None


def list_parcels(uow: UnitOfWork, actor: Actor, decision: str | None = None, buyer: str | None = None,
                 limit: int = 50, offset: int = 0, q: str | None = None) -> dict:
    """Decided parcels the actor may see, newest first, by decision, buyer identity number, and
    `q`: the start of an order or waybill number."""
    scope = _scope(actor)
    if decision is not None and decision not in {d.value for d in Decision}:
        raise ValidationFailed("decision is one of: release, inspect, reject.", "invalid_choice", "decision")
    query = select(cbec_parcels)
    if scope is not None:
        query = query.where(scope)
    if decision:
        query = query.where(cbec_parcels.c.decision == decision)
    if buyer:
        query = query.where(cbec_parcels.c.buyer_id_number == buyer.strip().upper())
    if q and q.strip():
        start = q.strip().upper().replace("\\", "").replace("%", "").replace("_", "\\_")
        query = query.where(or_(func.upper(cbec_parcels.c.order_no).like(f"{start}%", escape="\\"),
                                func.upper(cbec_parcels.c.waybill_no).like(f"{start}%", escape="\\")))
    with uow.read() as conn:
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(query.order_by(cbec_parcels.c.decided_at.desc(), cbec_parcels.c.order_no)
                            .limit(limit).offset(offset)).mappings().all()
        return {"total": total, "limit": limit, "offset": offset,
                "items": [parcel_view(r, actor) for r in rows]}


# The live dashboard: figures over the last minutes, in buckets of BUCKET_SECONDS.
LIVE_MINUTES, BUCKET_SECONDS = 5, 10
LIVE_REASON_ROWS = 20_000


def live_figures(uow: UnitOfWork, actor: Actor, now: datetime | None = None) -> dict:
    """What the live dashboard shows, from the stored decisions the actor may see: parcels per
    second over the last minute, a series of parcels per second by decision in buckets of
    BUCKET_SECONDS over the last LIVE_MINUTES, the decisions and reasons over that window
    (reasons of at most the LIVE_REASON_ROWS latest parcels not simply released), and the
    totals by decision."""
    scope = _scope(actor)
    now = now or utcnow()
    count = LIVE_MINUTES * 60 // BUCKET_SECONDS
    since = now - timedelta(seconds=count * BUCKET_SECONDS)
    edges = [since + timedelta(seconds=i * BUCKET_SECONDS) for i in range(count + 1)]
    p = cbec_parcels.c
    window = [p.decided_at >= since, p.decided_at < now]
    if scope is not None:
        window.append(scope)
    buckets = [func.sum(case(((p.decided_at >= edges[i]) & (p.decided_at < edges[i + 1]), 1), else_=0))
               for i in range(count)]
    with uow.read() as conn:
        rows = conn.execute(select(p.decision, func.count(), *buckets).where(*window).group_by(p.decision)).all()
        last_minute = conn.execute(select(func.count()).select_from(cbec_parcels)
                                   .where(*window, p.decided_at >= now - timedelta(seconds=60))).scalar_one()
        reasons: dict[str, int] = {}
        for listed in conn.execute(select(p.reasons).where(*window, p.decision != Decision.RELEASE.value)
                                   .order_by(p.decided_at.desc()).limit(LIVE_REASON_ROWS)).scalars():
            for reason in listed:
                reasons[reason] = reasons.get(reason, 0) + 1
        totals = conn.execute(select(p.decision, func.count()).where(*([scope] if scope is not None else []))
                              .group_by(p.decision)).all()
    series = {d.value: [0.0] * count for d in Decision}
    decisions = {d.value: 0 for d in Decision}
    for decision, total, *per_bucket in rows:
        decisions[decision] = total
        series[decision] = [round((n or 0) / BUCKET_SECONDS, 1) for n in per_bucket]
    return {"at": now, "window_minutes": LIVE_MINUTES, "bucket_seconds": BUCKET_SECONDS,
            "parcels_per_second": round(last_minute / 60, 1),
            "labels": [edge.strftime("%H:%M:%S") for edge in edges[:-1]], "series": series,
            "decisions": decisions, "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "totals": {d.value: 0 for d in Decision} | {d: n for d, n in totals}}


def count_parcels(uow: UnitOfWork, actor: Actor, decision: str) -> int:
    return list_parcels(uow, actor, decision, limit=1)["total"]


def buyer_year(uow: UnitOfWork, actor: Actor, buyer: str, year: int) -> dict:
    """A buyer's purchases in a calendar year, against the annual limit. Customs only."""
    require(actor.is_(Role.CUSTOMS), "role_not_allowed", "A buyer's year is for customs officers.")
    buyer = buyer.strip().upper()
    with uow.read() as conn:
        row = conn.execute(select(cbec_buyer_years).where(cbec_buyer_years.c.buyer_id_number == buyer,
                                                          cbec_buyer_years.c.year == year)).mappings().first()
        parcels = conn.execute(select(cbec_parcels).where(cbec_parcels.c.buyer_id_number == buyer,
                                                          cbec_parcels.c.year == year)
                               .order_by(cbec_parcels.c.ordered_at, cbec_parcels.c.order_no)).mappings().all()
    total = from_minor_units(row["total_fen"]) if row else Decimal(0)
    return {"buyer_id_number": buyer, "year": year, "total": format_amount(total),
            "limit": format_amount(model.CBEC_ANNUAL_LIMIT),
            "remaining": format_amount(model.CBEC_ANNUAL_LIMIT - total),
            "parcels": [parcel_view(p, actor) for p in parcels]}


def result_line(row: Mapping[str, Any]) -> dict:
    """A parcel as one line of a results file: the issue's fields, identity number masked
    (exports carry no personal data)."""
    view = parcel_view(row, SYSTEM)
    keep = ("order_no", "waybill_no", "buyer_id_number", "decision", "reasons", "customs_value", "duty",
            "consumption_tax", "vat", "total_tax", "buyer_year_total_after")
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in view.items() if k in keep}
