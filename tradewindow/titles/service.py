"""Titles business actions: register a signing key; issue a bill of lading; endorse, pledge,
release the pledge, take over on default, surrender, void; read a bill and its history; verify a
chain; publish the heads of every chain. Each action runs in one transaction with its record, its
audit entry and its outbox event (a notification to every party of the bill).

Who sees a bill: its issuer, every enterprise that held it or holds it, every bank that took it in
pledge, and customs officers; anyone else is told it does not exist (404).

Signing: every record is signed with the acting party's current Ed25519 key. A party that chose
custodial signing has its record signed here with the private key the platform keeps for it; any
other party sends `signature` (and the `signed_at` and `previous` of the record it signed, which
`prepare` returns) with the action, and a missing or wrong signature is refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update

from tradewindow.platform import vault
from tradewindow.platform.auth import ENTERPRISE_ROLES, SYSTEM, Actor, Role
from tradewindow.platform.db import UnitOfWork, utcnow
from tradewindow.platform.errors import Conflict, Problem, ValidationFailed, not_found, require
from tradewindow.platform.ids import new_id
from tradewindow.platform.jobs import periodic
from tradewindow.platform.settings import get_settings
from tradewindow.registry import service as registry
from tradewindow.titles import model
from tradewindow.titles.model import Action, Head, Kind, Particulars, PublicKey, Record, Status, TitleState
from tradewindow.titles.tables import (
    bills_of_lading,
    signing_keys,
    title_checkpoints,
    title_heads,
    title_records,
)

SEES_ALL_TITLES = (Role.CUSTOMS,)
ISSUERS = (Role.CARRIER,)
ISSUER_KIND = "carrier"        # carriers and forwarders are registered with the kind "carrier"
BANK_KIND = "bank"
# The worker publishes the heads this often (a checkpoint is written only when a chain moved).
PUBLISH_TASK = "titles.publish_heads"
PUBLISH_EVERY = timedelta(minutes=10)
# A client's signature must be fresh: signed at most this long ago (or this far in the future, for
# clock skew), so an old prepared record cannot be replayed later.
SIGNATURE_MAX_AGE = timedelta(minutes=15)
CLOCK_SKEW = timedelta(minutes=2)
# When set, every checkpoint is also appended as one JSON line to this file (kept outside the
# database, ideally on write-once storage), and verification checks the chains against it too.
CHECKPOINT_FILE_ENV = "TRADEWINDOW_TITLE_CHECKPOINT_FILE"     # Settings.title_checkpoint_file

NOTIFICATION_CODES = {
    Action.ISSUE: "titles.bill_issued",
    Action.ENDORSE: "titles.bill_endorsed",
    Action.PLEDGE: "titles.bill_pledged",
    Action.RELEASE_PLEDGE: "titles.pledge_released",
    Action.TAKE_OVER: "titles.bill_taken_over",
    Action.SURRENDER: "titles.bill_surrendered",
    Action.VOID: "titles.bill_voided",
}


@dataclass(frozen=True)
class ClientSignature:
    """What a party that signs for itself sends with an action."""

    signature: str | None = None
    signed_at: str | None = None      # the record's "at", as in the prepared record
    previous: str | None = None       # the head the party saw (the record's "previous")


@dataclass(frozen=True)
class Issued:
    bill: dict
    created: bool


@dataclass(frozen=True)
class HolderOfRecord:
    """What customs needs to know to release goods under a bill (DESIGN.md §4.5)."""

    bol_number: str
    status: Status
    holder_id: str
    pledgee_id: str | None
    surrendered_by: str | None

    @property
    def entitled_to_goods(self) -> str | None:
        """The enterprise the goods may be delivered to: the holder of an unpledged bill, or the
        one who surrendered it against delivery; nobody while it is pledged or void."""
        if self.status is Status.ACTIVE:
            return self.holder_id
        if self.status is Status.SURRENDERED:
            return self.surrendered_by
        return None


# --- signing keys --------------------------------------------------------------------------------

def register_key(uow: UnitOfWork, actor: Actor, public_key: str | None = None,
                 custodial: bool = False) -> dict:
    """Register the enterprise's signing key: its own public key (PEM or raw, base64 or hex), or,
    with `custodial`, a key pair the platform generates and keeps. The new key replaces the
    current one for future records; retired keys still verify the records they signed."""
    enterprise_id = _require_party(actor)
    if custodial == bool(public_key and public_key.strip()):
        raise ValidationFailed("Send either your public key or custodial=true, not both or neither.",
                               "key_or_custodial", "public_key")
    if custodial:
        private = model.new_private_key()
        raw = model.public_key_of(private)
    else:
        private, raw = None, model.parse_public_key(public_key or "")
    fingerprint = model.fingerprint(raw)
    with uow.transaction() as conn:
        if conn.execute(select(signing_keys.c.id).where(signing_keys.c.fingerprint == fingerprint)).first():
            raise Conflict([Problem("public_key", "duplicate_key", "This key is already registered.")])
        now = utcnow()
        conn.execute(update(signing_keys).where(signing_keys.c.enterprise_id == enterprise_id,
                                                signing_keys.c.retired_at.is_(None)).values(retired_at=now))
        key_id = new_id()
        row = {"id": key_id, "enterprise_id": enterprise_id, "fingerprint": fingerprint, "public_key": _b64(raw),
               "private_key": vault.seal(private, _private_key_purpose(key_id)) if private else None,
               "custodial": custodial, "created_at": now, "created_by": actor.username, "retired_at": None}
        conn.execute(insert(signing_keys).values(row))
        uow.audit(actor, "titles.key_registered", "signing_key", row["id"], None,
                  {"fingerprint": fingerprint, "custodial": custodial})
        # A new key signs for the enterprise from now on: every user of it should know.
        uow.emit("titles.key_registered", "signing_key", row["id"], {
            "fingerprint": fingerprint, "custodial": custodial,
            "notification": {"code": "titles.key_registered",
                             "message": f"A new {'custodial ' if custodial else ''}signing key "
                                        f"{fingerprint[:16]}… was registered by {actor.username}; "
                                        "it signs your enterprise's bills of lading from now on.",
                             "subject_type": "signing_key", "subject_id": row["id"]},
        }, owner_enterprise_id=enterprise_id)
        return _key_public(row)


def list_keys(uow: UnitOfWork, actor: Actor) -> list[dict]:
    """The caller's enterprise's keys, the current one first."""
    enterprise_id = _require_party(actor)
    with uow.read() as conn:
        rows = conn.execute(select(signing_keys).where(signing_keys.c.enterprise_id == enterprise_id)
                            .order_by(signing_keys.c.retired_at.is_not(None), signing_keys.c.created_at.desc()))
        return [_key_public(r) for r in rows.mappings()]


def current_key(uow: UnitOfWork, enterprise_id: str) -> dict | None:
    with uow.read() as conn:
        row = conn.execute(select(signing_keys).where(signing_keys.c.enterprise_id == enterprise_id,
                                                      signing_keys.c.retired_at.is_(None))).mappings().first()
        return dict(row) if row else None


# --- issue ---------------------------------------------------------------------------------------

def issue_bill(uow: UnitOfWork, actor: Actor, raw: object) -> Issued:
    """A registered carrier or forwarder issues a bill of lading to the shipper. The bill number is
    the client reference: the same bill again returns the first result; another bill under a
    number already used is refused."""
    issuer_id = _require_issuer(uow, actor)
    number = raw.get("bol_number") if isinstance(raw, Mapping) else None
    if isinstance(number, str) and (done := _repeat_issue(uow, actor, issuer_id, raw)) is not None:
        return Issued(done, created=False)
    try:
        with uow.transaction():
            return Issued(_issue(uow, actor, issuer_id, raw), created=True)
    except Conflict:
        if isinstance(number, str) and (done := _repeat_issue(uow, actor, issuer_id, raw)) is not None:
            return Issued(done, created=False)
        raise


def prepare_issue(uow: UnitOfWork, actor: Actor, raw: object) -> dict:
    """The issue record the issuer is to sign for these particulars (nothing is stored)."""
    issuer_id = _require_issuer(uow, actor)
    with uow.read():
        particulars = _particulars(uow, issuer_id, raw)
        _refuse_taken_number(uow, particulars.bol_number)
        key = _signing_key(uow, issuer_id)
        return _to_sign(model.issue_record(particulars, _now(), key["fingerprint"]))


def _issue(uow: UnitOfWork, actor: Actor, issuer_id: str, raw: object) -> dict:
    particulars = _particulars(uow, issuer_id, raw)
    _refuse_taken_number(uow, particulars.bol_number)
    key = _signing_key(uow, issuer_id)
    signed = _client_signature(raw)
    at = _signed_at(signed, None)
    record = _signed(model.issue_record(particulars, at, key["fingerprint"]), key, signed)
    state = model.apply(None, record, particulars.consignee)
    bill_id = new_id()
    uow.conn.execute(insert(bills_of_lading).values(
        id=bill_id, bol_number=particulars.bol_number, issuer_id=issuer_id, shipper_id=particulars.shipper,
        consignee_id=particulars.consignee, goods_description=particulars.goods_description,
        packages=particulars.packages, gross_mass_kg=model.decimal_text(particulars.gross_mass_kg),
        containers=list(particulars.containers), place_of_receipt=particulars.place_of_receipt,
        place_of_delivery=particulars.place_of_delivery,
        consignment_reference=particulars.consignment_reference, kind=particulars.kind.value,
        vessel=particulars.vessel, voyage=particulars.voyage, port_of_loading=particulars.port_of_loading,
        port_of_discharge=particulars.port_of_discharge, document_hash=record.document,
        issued_at=record.at, **_derived(state)))
    _store_record(uow, bill_id, record)
    _after_action(uow, actor, bill_id, None, state, record, issuer_id, particulars.kind)
    return _view(uow, _bill_by_id(uow, bill_id))


def _repeat_issue(uow: UnitOfWork, actor: Actor, issuer_id: str, raw: Mapping) -> dict | None:
    with uow.read():
        row = _bill_row(uow, str(raw["bol_number"]).strip().upper())
        if row is None:
            return None
        if row["issuer_id"] != issuer_id:
            raise Conflict([Problem("bol_number", "duplicate", "This bill of lading number is taken.")])
        try:
            particulars = _particulars(uow, issuer_id, raw)
        except ValidationFailed:
            particulars = None
        if particulars is None or model.document_digest(particulars) != row["document_hash"]:
            raise Conflict([Problem("bol_number", "duplicate",
                                    "You already issued a different bill under this number.")])
        return _view(uow, row)


def _particulars(uow: UnitOfWork, issuer_id: str, raw: object) -> Particulars:
    """Every problem of the particulars at once, parties resolved to registered enterprises."""
    filed, problems = model.check_bill(raw)
    shipper = consignee = None
    if isinstance(raw, Mapping):
        for name in ("shipper_uscc", "consignee_uscc"):
            value = raw.get(name)
            if isinstance(value, str) and value.strip():
                party = registry.enterprise_by_uscc(uow, value.strip())
                if party is None or party["status"] != "active":
                    problems.add(name, "unknown_enterprise", f"No active enterprise with credit code {value}.")
                elif name == "shipper_uscc":
                    shipper = party["id"]
                else:
                    consignee = party["id"]
    problems.raise_if_any()
    assert filed is not None and shipper is not None
    return Particulars(bol_number=filed.bol_number, issuer=issuer_id, shipper=shipper, consignee=consignee,
                       goods_description=filed.goods_description, packages=filed.packages,
                       gross_mass_kg=filed.gross_mass_kg, containers=filed.containers,
                       place_of_receipt=filed.place_of_receipt, place_of_delivery=filed.place_of_delivery,
                       consignment_reference=filed.consignment_reference, kind=filed.kind, vessel=filed.vessel,
                       voyage=filed.voyage, port_of_loading=filed.port_of_loading,
                       port_of_discharge=filed.port_of_discharge)


def _refuse_taken_number(uow: UnitOfWork, number: str) -> None:
    if _bill_row(uow, number) is not None:
        raise Conflict([Problem("bol_number", "duplicate", "This bill of lading number is taken.")])


def _client_signature(raw: object) -> ClientSignature | None:
    if not isinstance(raw, Mapping) or raw.get("signature") is None:
        return None
    signature, signed_at = raw.get("signature"), raw.get("signed_at")
    if not isinstance(signature, str) or not isinstance(signed_at, str):
        raise ValidationFailed("signature and signed_at are strings (see the canonical form).",
                               "not_a_string", "signature")
    return ClientSignature(signature, signed_at)


# --- transfers -----------------------------------------------------------------------------------

def endorse(uow: UnitOfWork, actor: Actor, bol_number: str, to_uscc: str,
            signed: ClientSignature | None = None) -> dict:
    """The holder endorses the bill to another registered enterprise (or a bank)."""
    return _act(uow, actor, bol_number, Action.ENDORSE, to_uscc, signed)


def pledge(uow: UnitOfWork, actor: Actor, bol_number: str, bank_uscc: str,
           signed: ClientSignature | None = None) -> dict:
    """The holder pledges the bill to a bank: the holder stays, and the bill is locked until the
    bank releases it."""
    return _act(uow, actor, bol_number, Action.PLEDGE, bank_uscc, signed)


def release_pledge(uow: UnitOfWork, actor: Actor, bol_number: str,
                   signed: ClientSignature | None = None) -> dict:
    """The bank holding the pledge releases it."""
    return _act(uow, actor, bol_number, Action.RELEASE_PLEDGE, None, signed)


def take_over(uow: UnitOfWork, actor: Actor, bol_number: str, signed: ClientSignature | None = None) -> dict:
    """On the pledgor's default, the bank holding the pledge becomes the holder."""
    return _act(uow, actor, bol_number, Action.TAKE_OVER, None, signed)


def surrender(uow: UnitOfWork, actor: Actor, bol_number: str, signed: ClientSignature | None = None) -> dict:
    """The holder surrenders the bill to its issuer against delivery of the goods. Final."""
    return _act(uow, actor, bol_number, Action.SURRENDER, None, signed)


def void(uow: UnitOfWork, actor: Actor, bol_number: str, signed: ClientSignature | None = None) -> dict:
    """The issuer voids a bill that has not changed hands yet. Final."""
    return _act(uow, actor, bol_number, Action.VOID, None, signed)


def prepare(uow: UnitOfWork, actor: Actor, bol_number: str, action: str, to_uscc: str | None = None) -> dict:
    """The record the caller is to sign to take `action` now: its fields, its canonical bytes (as
    text and base64) and its hash. The rules are checked as for the action itself; nothing is
    stored. Sign the bytes, then send `signed_at` (the record's "at"), `previous` and `signature`."""
    enterprise_id = _require_party(actor)
    kind = _action(action)
    with uow.read():
        bill = _visible_bill(uow, actor, bol_number)
        if kind is Action.ISSUE:
            raise Conflict("The bill is already issued.", "already_issued")
        to_id = _counterparty(uow, kind, to_uscc)
        key = _signing_key(uow, enterprise_id)
        record = model.next_record(_state(bill), kind, enterprise_id, _now(), key["fingerprint"], to_id)
        return _to_sign(record)


def _act(uow: UnitOfWork, actor: Actor, bol_number: str, action: Action, to_uscc: str | None,
         signed: ClientSignature | None) -> dict:
    enterprise_id = _require_party(actor)
    with uow.transaction():
        bill = _visible_bill(uow, actor, bol_number, for_update=True)
        state = _state(bill)
        to_id = _counterparty(uow, action, to_uscc)
        if signed is not None and signed.previous and signed.previous != state.head:
            if _is_repeat(uow, bill, signed.previous, action, enterprise_id, to_id):
                return _view(uow, bill)       # the same action sent again: its first result
            raise Conflict("The bill changed since you prepared this record; prepare it again.",
                           "chain_moved", "previous")
        key = _signing_key(uow, enterprise_id)
        at = _signed_at(signed, _last_record_at(uow, bill["id"]))
        record = _signed(model.next_record(state, action, enterprise_id, at, key["fingerprint"], to_id),
                         key, signed)
        after = model.apply(state, record)
        _store_record(uow, bill["id"], record)
        uow.conn.execute(update(bills_of_lading).where(bills_of_lading.c.id == bill["id"])
                         .values(**_derived(after)))
        _after_action(uow, actor, bill["id"], state, after, record, bill["issuer_id"], _kind(bill))
        return _view(uow, _bill_by_id(uow, bill["id"]))


def _is_repeat(uow: UnitOfWork, bill: Mapping, previous: str, action: Action, actor_id: str,
               to_id: str | None) -> bool:
    row = uow.conn.execute(select(title_records).where(title_records.c.bill_id == bill["id"],
                                                       title_records.c.previous_hash == previous)).mappings().first()
    if row is None or row["action"] != action.value or row["actor_id"] != actor_id:
        return False
    if action is Action.ENDORSE:
        return row["to_holder_id"] == to_id
    if action is Action.PLEDGE:
        return row["pledgee_id"] == to_id
    return True


def _counterparty(uow: UnitOfWork, action: Action, uscc: str | None) -> str | None:
    if action not in model.WITH_COUNTERPARTY:
        return None
    path = "bank_uscc" if action is Action.PLEDGE else "to_uscc"
    if not uscc or not uscc.strip():
        raise ValidationFailed("Name the party by its credit code.", "required", path)
    party = registry.enterprise_by_uscc(uow, uscc.strip())
    if party is None or party["status"] != "active":
        raise ValidationFailed(f"No active enterprise with credit code {uscc}.", "unknown_enterprise", path)
    if action is Action.PLEDGE and BANK_KIND not in party["kinds"]:
        raise ValidationFailed("A bill is pledged to a bank; this enterprise is not registered as one.",
                               "not_a_bank", path)
    return party["id"]


def _signing_key(uow: UnitOfWork, enterprise_id: str) -> dict:
    key = current_key(uow, enterprise_id)
    if key is None:
        raise ValidationFailed("Register a signing key first: your own public key, or let the platform "
                               "hold one for you (custodial signing).", "no_signing_key", "signature")
    return key


def _signed_at(signed: ClientSignature | None, not_before: datetime | None) -> datetime:
    """The record's time: now, or the time the client signed (checked for freshness)."""
    now = _now()
    if signed is None or signed.signed_at is None:
        return max(now, not_before) if not_before else now
    at = model.parse_at(signed.signed_at)
    if at is None:
        raise ValidationFailed("signed_at is the record's time as prepared, like 2026-05-01T08:30:00.000000Z.",
                               "invalid_datetime", "signed_at")
    if at > now + CLOCK_SKEW or at < now - SIGNATURE_MAX_AGE or (not_before and at < not_before):
        raise ValidationFailed("The signature is too old (or dated in the future); prepare the record "
                               "again and sign it.", "stale_signature", "signed_at")
    return at


def _private_key_purpose(key_id: str) -> str:
    return vault.row_purpose("signing_keys", "private_key", key_id)


def _signed(record: Record, key: Mapping, signed: ClientSignature | None) -> Record:
    """The record with its signature: the client's, checked against the key, or the platform's
    for a custodial key. The hash is computed last, over the final fields."""
    if signed is not None and signed.signature:
        signature = signed.signature.strip()
        if not model.signature_valid(base64.b64decode(key["public_key"]), record, signature):
            raise ValidationFailed("The signature does not verify with your registered key over this "
                                   "record's canonical bytes.", "bad_signature", "signature")
    elif key["custodial"] and key["private_key"]:
        signature = model.sign(vault.unseal(key["private_key"], _private_key_purpose(key["id"])), record)
    else:
        raise ValidationFailed("Sign the record with your key: prepare it, sign its canonical bytes, and "
                               "send the signature.", "signature_required", "signature")
    record = replace(record, signature=signature)
    return replace(record, hash=model.record_hash(record))


def _store_record(uow: UnitOfWork, bill_id: str, record: Record) -> None:
    uow.conn.execute(insert(title_records).values(
        id=new_id(), bill_id=bill_id, sequence=record.sequence, action=record.action.value,
        actor_id=record.actor, from_holder_id=record.from_holder, to_holder_id=record.to_holder,
        pledgee_id=record.pledgee, at=record.at, previous_hash=record.previous,
        document_hash=record.document, key_fingerprint=record.key, signature=record.signature,
        hash=record.hash))


def _after_action(uow: UnitOfWork, actor: Actor, bill_id: str, before: TitleState | None,
                  after: TitleState, record: Record, issuer_id: str, kind: Kind) -> None:
    code = NOTIFICATION_CODES[record.action]
    uow.audit(actor, code, "bill_of_lading", bill_id, _state_public(before) if before else None,
              {**_state_public(after), "record": record.sequence, "hash": record.hash})
    parties = [issuer_id, record.actor, record.from_holder, record.to_holder, record.pledgee,
               before.pledgee if before else None]
    audiences = list(dict.fromkeys(p for p in parties if p))
    uow.emit(code, "bill_of_lading", bill_id, {
        "number": after.bol_number, "kind": kind.value, "action": record.action.value,
        "sequence": record.sequence,
        "holder_id": after.holder, "pledgee_id": after.pledgee, "status": after.status.value,
        "notification": {"code": code, "message": _message(record, after, kind), "subject_type": "bill_of_lading",
                         "subject_id": bill_id, "audiences": audiences},
    }, owner_enterprise_id=after.holder)


def _message(record: Record, state: TitleState, kind: Kind) -> str:
    bill = f"{model.KIND_NAMES[kind]} {state.bol_number}"
    the_bill = bill[0].upper() + bill[1:]
    return {
        Action.ISSUE: f"{the_bill} was issued.",
        Action.ENDORSE: f"{the_bill} was endorsed to a new holder.",
        Action.PLEDGE: f"{the_bill} was pledged to a bank.",
        Action.RELEASE_PLEDGE: f"The pledge on {bill} was released.",
        Action.TAKE_OVER: f"The pledgee took over {bill}.",
        Action.SURRENDER: f"{the_bill} was surrendered against delivery.",
        Action.VOID: f"{the_bill} was voided by its issuer.",
    }[record.action]


# --- reading -------------------------------------------------------------------------------------

def get_bill(uow: UnitOfWork, actor: Actor, bol_number: str) -> dict:
    """A bill with its particulars, parties and the records of its history."""
    with uow.read():
        bill = _visible_bill(uow, actor, bol_number)
        return _view(uow, bill, with_records=True)


def list_bills(uow: UnitOfWork, actor: Actor, status: str | None = None, held: bool = False,
               limit: int = 50, offset: int = 0, kind: str | None = None) -> dict:
    """Bills the caller may see, newest first; `held`: only those its enterprise holds now;
    `kind`: only railway bills or only sea bills."""
    with uow.read() as conn:
        query = select(bills_of_lading)
        if not actor.is_(*SEES_ALL_TITLES):
            if actor.enterprise_id is None:
                return {"items": [], "total": 0, "limit": limit, "offset": offset}
            query = query.where(bills_of_lading.c.id.in_(_involved_bill_ids(actor.enterprise_id)))
        if held and actor.enterprise_id:
            query = query.where(bills_of_lading.c.holder_id == actor.enterprise_id)
        if status:
            query = query.where(bills_of_lading.c.status == status)
        if kind:
            query = query.where(bills_of_lading.c.kind == kind)
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(query.order_by(bills_of_lading.c.issued_at.desc(), bills_of_lading.c.id.desc())
                            .limit(limit).offset(offset)).mappings().all()
        return {"items": [_view(uow, r) for r in rows], "total": total, "limit": limit, "offset": offset}


def holder_of(uow: UnitOfWork, bol_number: str) -> HolderOfRecord | None:
    """The holder of record of a bill (None when there is no such bill). For customs: goods under
    a bill of lading are delivered, and an import declaration accepted, only for the party
    `entitled_to_goods` (or its authorised broker)."""
    with uow.read() as conn:
        bill = _bill_row(uow, bol_number.strip().upper())
        if bill is None:
            return None
        surrendered_by = None
        if bill["status"] == Status.SURRENDERED:
            surrendered_by = conn.execute(select(title_records.c.actor_id).where(
                title_records.c.bill_id == bill["id"], title_records.c.action == Action.SURRENDER.value)).scalar()
        return HolderOfRecord(bill["bol_number"], Status(bill["status"]), bill["holder_id"], bill["pledgee_id"],
                              surrendered_by)


# --- verification and published heads -----------------------------------------------------------

def verify(uow: UnitOfWork, actor: Actor, bol_number: str) -> dict:
    """Re-check the whole chain: every link, hash and signature, the rules of every transfer, the
    particulars against what was signed, the bill's current state against its history, and the
    heads published in checkpoints (in the database and, when configured, the checkpoint file).
    Names the first broken record."""
    with uow.read():
        bill = _visible_bill(uow, actor, bol_number)
        return {"bol_number": bill["bol_number"], **_verify(uow, bill), "verified_at": utcnow()}


def _verify(uow: UnitOfWork, bill: Mapping) -> dict:
    records = _records(uow, bill)
    keys = _public_keys(uow, {r.key for r in records})
    verification = model.verify_chain(records, keys, _stored_particulars(bill))
    published = _published_heads(uow, bill["id"]) + _file_heads(bill["bol_number"])
    report = {**verification.as_dict(), "published_heads": len(published)}
    report["checks"] += ["state", "published_heads"]
    if not verification.valid:
        return report
    state = verification.state
    assert state is not None
    if _derived(state) != {k: bill[k] for k in ("status", "holder_id", "pledgee_id", "sequence", "head_hash")}:
        return {**report, "valid": False, "broken_sequence": state.sequence, "code": "state_mismatch",
                "message": "The bill's current holder, pledgee, status or head differ from its history."}
    if (mismatch := model.check_against_heads(records, published)) is not None:
        code, message, sequence = mismatch
        return {**report, "valid": False, "broken_sequence": sequence, "code": code, "message": message}
    return report


def verify_all(uow: UnitOfWork) -> dict:
    """For the operator: every bill's chain and the checkpoint log; the broken ones listed."""
    with uow.read() as conn:
        broken = []
        total = 0
        for bill in conn.execute(select(bills_of_lading).order_by(bills_of_lading.c.bol_number)).mappings():
            total += 1
            report = _verify(uow, bill)
            if not report["valid"]:
                broken.append({"bol_number": bill["bol_number"], **report})
        return {"bills": total, "broken": broken, "checkpoints": verify_checkpoints(uow)}


def publish_heads(uow: UnitOfWork, actor: Actor = SYSTEM) -> dict:
    """Record the hash of the latest record of every bill in a checkpoint (the SHA-256 root over
    the sorted heads, chained to the checkpoint before). Nothing new is written when no chain has
    moved since the last checkpoint. With the checkpoint file configured, the checkpoint is also
    appended there."""
    with uow.transaction() as conn:
        latest = select(title_records.c.bill_id, func.max(title_records.c.sequence).label("sequence")) \
            .group_by(title_records.c.bill_id).subquery()
        rows = conn.execute(select(title_records.c.bill_id, bills_of_lading.c.bol_number, title_records.c.sequence,
                                   title_records.c.hash)
                            .join(latest, (latest.c.bill_id == title_records.c.bill_id)
                                  & (latest.c.sequence == title_records.c.sequence))
                            .join(bills_of_lading, bills_of_lading.c.id == title_records.c.bill_id)).all()
        heads = [Head(r.bol_number, r.sequence, r.hash) for r in rows]
        root = model.heads_root(heads)
        last = conn.execute(select(title_checkpoints).order_by(title_checkpoints.c.published_at.desc(),
                                                               title_checkpoints.c.id.desc()).limit(1)).mappings().first()
        if last is None and not heads:
            # Nothing to vouch for yet: an empty first checkpoint would only add an event to every
            # fresh installation's feed.
            return {"id": None, "published_at": None, "titles": 0, "root": root, "previous_hash": None,
                    "hash": None, "published_by": None, "published": False}
        if last is not None and last["root"] == root:
            return {**_checkpoint_public(last), "published": False}
        at = utcnow()
        previous = last["hash"] if last else model.GENESIS
        row = {"id": new_id(), "published_at": at, "titles": len(heads), "root": root, "previous_hash": previous,
               "hash": model.checkpoint_hash(previous, at, root, len(heads)), "published_by": actor.username}
        conn.execute(insert(title_checkpoints).values(row))
        if rows:
            conn.execute(insert(title_heads), [{"checkpoint_id": row["id"], "bill_id": r.bill_id,
                                                "bol_number": r.bol_number, "sequence": r.sequence,
                                                "head_hash": r.hash} for r in rows])
        uow.audit(actor, "titles.heads_published", "title_checkpoint", row["id"], None,
                  {"root": root, "titles": len(heads), "hash": row["hash"]})
        uow.emit("titles.heads_published", "title_checkpoint", row["id"],
                 {"root": root, "titles": len(heads), "hash": row["hash"]})
    if (path := checkpoint_file()) is not None:
        _append_checkpoint(path, row, heads)
    return {**_checkpoint_public(row), "published": True}


def list_checkpoints(uow: UnitOfWork, limit: int = 20) -> list[dict]:
    with uow.read() as conn:
        rows = conn.execute(select(title_checkpoints).order_by(title_checkpoints.c.published_at.desc(),
                                                               title_checkpoints.c.id.desc()).limit(limit))
        return [_checkpoint_public(r) for r in rows.mappings()]


def verify_checkpoints(uow: UnitOfWork) -> dict:
    """Check the checkpoint log itself: each root recomputed from its heads, each hash from its
    fields, each link to the checkpoint before."""
    with uow.read() as conn:
        rows = conn.execute(select(title_checkpoints).order_by(title_checkpoints.c.published_at,
                                                               title_checkpoints.c.id)).mappings().all()
        previous = model.GENESIS
        for row in rows:
            heads = [Head(h.bol_number, h.sequence, h.head_hash) for h in conn.execute(
                select(title_heads).where(title_heads.c.checkpoint_id == row["id"]))]
            if model.heads_root(heads) != row["root"] or row["previous_hash"] != previous or \
                    model.checkpoint_hash(previous, row["published_at"], row["root"], row["titles"]) != row["hash"]:
                return {"valid": False, "checkpoints": len(rows), "broken": row["id"],
                        "code": "checkpoint_mismatch",
                        "message": f"Checkpoint {row['id']} does not match its heads or the one before."}
            previous = row["hash"]
        return {"valid": True, "checkpoints": len(rows), "broken": None, "code": None, "message": None}


@periodic(PUBLISH_TASK, PUBLISH_EVERY.total_seconds())
def _publish_periodically(uow: UnitOfWork) -> None:
    publish_heads(uow, SYSTEM)


def checkpoint_file() -> Path | None:
    return get_settings().title_checkpoint_file


def _append_checkpoint(path: Path, row: Mapping, heads: list[Head]) -> None:
    line = {"id": row["id"], "published_at": model.format_at(row["published_at"]), "titles": row["titles"],
            "root": row["root"], "previous": row["previous_hash"], "hash": row["hash"],
            "heads": [{"bill": h.bol_number, "sequence": h.sequence, "hash": h.hash} for h in heads]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n")


def _file_heads(bol_number: str) -> list[Head]:
    path = checkpoint_file()
    if path is None or not path.exists():
        return []
    found = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            found += [Head(h["bill"], h["sequence"], h["hash"]) for h in entry.get("heads", [])
                      if h.get("bill") == bol_number]
    return found


def _published_heads(uow: UnitOfWork, bill_id: str) -> list[Head]:
    rows = uow.conn.execute(select(title_heads).where(title_heads.c.bill_id == bill_id))
    return [Head(r.bol_number, r.sequence, r.head_hash) for r in rows]


# --- helpers -------------------------------------------------------------------------------------

def _require_party(actor: Actor) -> str:
    require(actor.role in ENTERPRISE_ROLES and actor.enterprise_id is not None, "role_not_allowed",
            "Bills of lading are held and transferred by enterprises.")
    assert actor.enterprise_id is not None
    return actor.enterprise_id


def _require_issuer(uow: UnitOfWork, actor: Actor) -> str:
    require(actor.is_(*ISSUERS) and actor.enterprise_id is not None, "role_not_allowed",
            "Bills of lading are issued by carriers and forwarders.")
    assert actor.enterprise_id is not None
    issuer = registry.enterprise_by_uscc(uow, actor.enterprise_id)
    require(issuer is not None and issuer["status"] == "active" and ISSUER_KIND in issuer["kinds"],
            "not_a_carrier", "Your enterprise is not registered as an active carrier or forwarder.")
    return actor.enterprise_id


def _action(text: str) -> Action:
    try:
        return Action(text)
    except ValueError:
        raise ValidationFailed(f"action is one of: {', '.join(a.value for a in Action)}.", "invalid_choice",
                               "action") from None


def _involved_bill_ids(enterprise_id: str) -> Any:
    return select(title_records.c.bill_id).where(or_(
        title_records.c.actor_id == enterprise_id, title_records.c.to_holder_id == enterprise_id,
        title_records.c.pledgee_id == enterprise_id))


def _visible_bill(uow: UnitOfWork, actor: Actor, bol_number: str, for_update: bool = False) -> dict:
    bill = _bill_row(uow, (bol_number or "").strip().upper(), for_update)
    if bill is None or not _may_see(uow, actor, bill):
        raise not_found("bill of lading", bol_number)
    return bill


def _may_see(uow: UnitOfWork, actor: Actor, bill: Mapping) -> bool:
    if actor.is_(*SEES_ALL_TITLES):
        return True
    if actor.enterprise_id is None:
        return False
    return uow.conn.execute(_involved_bill_ids(actor.enterprise_id).where(
        title_records.c.bill_id == bill["id"]).limit(1)).first() is not None


def _bill_row(uow: UnitOfWork, bol_number: str, for_update: bool = False) -> dict | None:
    query = uow.locking(_BILL_BY_NUMBER, for_update)
    row = uow.conn.execute(query, {"bol_number": bol_number}).mappings().first()
    return dict(row) if row else None


# Built once: customs asks for the bill of every inbound declaration it lodges.
_BILL_BY_NUMBER = select(bills_of_lading).where(bills_of_lading.c.bol_number == bindparam("bol_number"))


def _bill_by_id(uow: UnitOfWork, bill_id: str) -> dict:
    return dict(uow.conn.execute(select(bills_of_lading).where(bills_of_lading.c.id == bill_id)).mappings().one())


def _state(bill: Mapping) -> TitleState:
    return TitleState(bol_number=bill["bol_number"], document=bill["document_hash"], issuer=bill["issuer_id"],
                      consignee=bill["consignee_id"], holder=bill["holder_id"], pledgee=bill["pledgee_id"],
                      status=Status(bill["status"]), sequence=bill["sequence"], head=bill["head_hash"])


def _derived(state: TitleState) -> dict:
    return {"status": state.status.value, "holder_id": state.holder, "pledgee_id": state.pledgee,
            "sequence": state.sequence, "head_hash": state.head}


def _stored_particulars(bill: Mapping) -> Particulars:
    return Particulars(bol_number=bill["bol_number"], issuer=bill["issuer_id"], shipper=bill["shipper_id"],
                       consignee=bill["consignee_id"], goods_description=bill["goods_description"],
                       packages=bill["packages"], gross_mass_kg=Decimal(bill["gross_mass_kg"]),
                       containers=tuple(bill["containers"]), place_of_receipt=bill["place_of_receipt"],
                       place_of_delivery=bill["place_of_delivery"],
                       consignment_reference=bill["consignment_reference"], kind=_kind(bill),
                       vessel=bill["vessel"], voyage=bill["voyage"], port_of_loading=bill["port_of_loading"],
                       port_of_discharge=bill["port_of_discharge"])


def _kind(bill: Mapping) -> Kind:
    try:
        return Kind(bill["kind"])
    except ValueError:            # tampered: the document digest will show it
        return Kind.RAILWAY_BILL


def _records(uow: UnitOfWork, bill: Mapping) -> list[Record]:
    rows = uow.conn.execute(select(title_records).where(title_records.c.bill_id == bill["id"])
                            .order_by(title_records.c.sequence)).mappings()
    return [_record(bill["bol_number"], r) for r in rows]


def _record(bol_number: str, row: Mapping) -> Record:
    try:
        action = Action(row["action"])
    except ValueError:
        action = Action.ISSUE if row["sequence"] == 1 else Action.ENDORSE   # tampered: the hash will show it
    return Record(bill=bol_number, sequence=row["sequence"], action=action, actor=row["actor_id"],
                  from_holder=row["from_holder_id"], to_holder=row["to_holder_id"], pledgee=row["pledgee_id"],
                  at=row["at"], previous=row["previous_hash"], document=row["document_hash"],
                  key=row["key_fingerprint"], signature=row["signature"], hash=row["hash"])


def _last_record_at(uow: UnitOfWork, bill_id: str) -> datetime | None:
    return uow.conn.execute(select(func.max(title_records.c.at)).where(title_records.c.bill_id == bill_id)).scalar()


def _public_keys(uow: UnitOfWork, fingerprints: Iterable[str]) -> dict[str, PublicKey]:
    rows = uow.conn.execute(select(signing_keys.c.fingerprint, signing_keys.c.enterprise_id,
                                   signing_keys.c.public_key)
                            .where(signing_keys.c.fingerprint.in_(list(fingerprints))))
    return {r.fingerprint: PublicKey(r.enterprise_id, base64.b64decode(r.public_key)) for r in rows}


def _now() -> datetime:
    return utcnow().astimezone(UTC)


def _to_sign(record: Record) -> dict:
    data = model.canonical_bytes(record)
    return {"record": record.body(), "canonical": data.decode("utf-8"),
            "canonical_base64": base64.b64encode(data).decode(), "hash": model.record_hash(record),
            "signed_at": model.format_at(record.at), "previous": record.previous}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _party(uow: UnitOfWork, enterprise_id: str | None, cache: dict[str, dict]) -> dict | None:
    if enterprise_id is None:
        return None
    if enterprise_id not in cache:
        found = registry.enterprise_by_uscc(uow, enterprise_id)
        cache[enterprise_id] = {"id": enterprise_id, "uscc": found["uscc"] if found else None,
                                "name": (found["name_en"] or found["name_zh"]) if found else enterprise_id}
    return cache[enterprise_id]


def _view(uow: UnitOfWork, bill: Mapping, with_records: bool = False) -> dict:
    cache: dict[str, dict] = {}
    view = {
        "id": bill["id"], "bol_number": bill["bol_number"], "kind": bill["kind"],
        "kind_name": model.KIND_NAMES[_kind(bill)], "status": bill["status"],
        "issuer": _party(uow, bill["issuer_id"], cache), "shipper": _party(uow, bill["shipper_id"], cache),
        "consignee": _party(uow, bill["consignee_id"], cache), "to_order": bill["consignee_id"] is None,
        "holder": _party(uow, bill["holder_id"], cache), "pledgee": _party(uow, bill["pledgee_id"], cache),
        "goods_description": bill["goods_description"], "packages": bill["packages"],
        "gross_mass_kg": bill["gross_mass_kg"], "containers": list(bill["containers"]),
        "place_of_receipt": bill["place_of_receipt"], "place_of_delivery": bill["place_of_delivery"],
        "consignment_reference": bill["consignment_reference"], "vessel": bill["vessel"],
        "voyage": bill["voyage"], "port_of_loading": bill["port_of_loading"],
        "port_of_discharge": bill["port_of_discharge"], "issued_at": bill["issued_at"],
        "sequence": bill["sequence"], "head_hash": bill["head_hash"], "document_hash": bill["document_hash"],
    }
    if with_records:
        view["records"] = [{
            "sequence": r.sequence, "action": r.action.value, "actor": _party(uow, r.actor, cache),
            "from_holder": _party(uow, r.from_holder, cache), "to_holder": _party(uow, r.to_holder, cache),
            "pledgee": _party(uow, r.pledgee, cache), "at": r.at, "previous": r.previous, "hash": r.hash,
            "key": r.key, "signature": r.signature,
        } for r in _records(uow, bill)]
    return view


def _state_public(state: TitleState) -> dict:
    return {"holder_id": state.holder, "pledgee_id": state.pledgee, "status": state.status.value,
            "sequence": state.sequence, "head": state.head}


def _key_public(row: Mapping) -> dict:
    return {k: row[k] for k in ("id", "enterprise_id", "fingerprint", "public_key", "custodial", "created_at",
                                "retired_at")} | {"current": row["retired_at"] is None}


def _checkpoint_public(row: Mapping) -> dict:
    return {"id": row["id"], "published_at": row["published_at"], "titles": row["titles"], "root": row["root"],
            "previous_hash": row["previous_hash"], "hash": row["hash"], "published_by": row["published_by"]}
