"""The bill of lading as a transferable record, pure: its particulars, the rules of each action
(issue, endorse, pledge, release the pledge, take over on default, surrender, void), the record
each action appends to the bill's history, the hash chain and the Ed25519 signatures over it, and
the root of the published chain heads.

One model, several kinds of document
------------------------------------
An electronic transferable record in the sense of UNCITRAL's Model Law on Electronic Transferable
Records (MLETR) is the same thing whatever paper it replaces: one record that is singled out, one
holder in control of it at a time, and a reliable history of who controlled it. So a railway bill
of lading and a sea bill of lading follow the same title rules, chain and signatures here; only
their particulars differ (`Kind`, `KIND_FIELDS`): a sea bill also names the vessel, the voyage and
the ports of loading and discharge. A railway bill's particulars are digested exactly as before
sea bills existed (no "kind" key), so the digests signed into existing chains stay valid; every
other kind adds "kind" and its own fields to the digested particulars.

The canonical form of a record
------------------------------
What is hashed and what is signed are the same bytes: the record as a JSON object with exactly
these keys, sorted, no whitespace (separators "," and ":"), UTF-8, non-ASCII characters as
themselves (not \\u escapes)::

    {"action":"endorse",                  issue | endorse | pledge | release_pledge | take_over
                                          | surrender | void
     "actor":"01J...",                    the acting enterprise's id
     "at":"2026-05-01T08:30:00.000000Z",  UTC, always six fraction digits and a Z
     "bill":"CQDE2026000123",             the bill of lading number
     "document":"<64 hex>",               SHA-256 of the bill's particulars (document_digest)
     "format":"tradewindow.title-record/1",
     "from_holder":"01J..." | null,       the holder before the action (null for issue)
     "key":"<64 hex>",                    fingerprint of the signing key: SHA-256 of its 32 raw bytes
     "pledgee":"01J..." | null,           the pledgee after the action
     "previous":"<64 hex>",               the previous record's hash; 64 zeros for the first record
     "sequence":2,                        1 for the issue, then one more per record (a JSON number)
     "to_holder":"01J..."}                the holder after the action

The record's hash is the lower-case hex SHA-256 of those bytes; its signature is Ed25519 over the
same bytes, sent and stored as standard base64 (64 bytes). A client that signs for itself asks the
platform for the record to sign (`POST /api/v1/titles/{number}/prepare`), or builds it by this
description, signs the bytes with its own key and sends `signed_at`, `previous` and `signature`
with the action.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pycountry
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from stdnum import iso6346

from tradewindow.platform.errors import Conflict, Forbidden, Problems, ValidationFailed
from tradewindow.platform.fields import FieldReader

RECORD_FORMAT = "tradewindow.title-record/1"
GENESIS = "0" * 64


class Action(StrEnum):
    ISSUE = "issue"
    ENDORSE = "endorse"
    PLEDGE = "pledge"
    RELEASE_PLEDGE = "release_pledge"
    TAKE_OVER = "take_over"          # the pledgee, on the pledgor's default, becomes the holder
    SURRENDER = "surrender"          # to the issuer against delivery: final
    VOID = "void"                    # by the issuer before any transfer: final


class Status(StrEnum):
    ACTIVE = "active"
    PLEDGED = "pledged"
    SURRENDERED = "surrendered"
    VOID = "void"


class Kind(StrEnum):
    RAILWAY_BILL = "railway_bill"      # China–Europe Railway Express, the Land–Sea corridor's rail leg
    SEA_BILL = "sea_bill"              # a negotiable ocean bill of lading


KIND_NAMES = {Kind.RAILWAY_BILL: "railway bill of lading", Kind.SEA_BILL: "sea bill of lading"}
# The particulars each kind carries beyond the common ones.
SEA_FIELDS = ("vessel", "voyage", "port_of_loading", "port_of_discharge")
KIND_FIELDS: dict[Kind, tuple[str, ...]] = {Kind.RAILWAY_BILL: (), Kind.SEA_BILL: SEA_FIELDS}

FINAL = frozenset({Status.SURRENDERED, Status.VOID})
# Actions that name a counterparty (`to`): the endorsee, the bank taking the pledge.
WITH_COUNTERPARTY = frozenset({Action.ENDORSE, Action.PLEDGE})


# --- the particulars -----------------------------------------------------------------------------

BOL_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9/-]{3,34}")
UN_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
BILL_FIELDS = frozenset({
    "bol_number", "shipper_uscc", "consignee_uscc", "goods_description", "packages", "gross_mass_kg",
    "containers", "place_of_receipt", "place_of_delivery", "consignment_reference",
    "kind", *SEA_FIELDS,
    # the issuer's own signature of the issue record, when it signs for itself
    "signed_at", "signature",
})


@dataclass(frozen=True)
class BillInput:
    """The particulars as filed: parties by credit code (the service resolves them)."""

    bol_number: str
    shipper_uscc: str
    consignee_uscc: str | None      # None: "to order" (negotiable by endorsement)
    goods_description: str
    packages: int
    gross_mass_kg: Decimal
    containers: tuple[str, ...]
    place_of_receipt: str
    place_of_delivery: str
    consignment_reference: str | None
    kind: Kind = Kind.RAILWAY_BILL
    vessel: str | None = None           # sea bill: the vessel's name
    voyage: str | None = None           # sea bill: the carrier's voyage number
    port_of_loading: str | None = None  # sea bill: UN/LOCODE
    port_of_discharge: str | None = None


@dataclass(frozen=True)
class Particulars:
    """What the bill says, parties by enterprise id. Its digest is in every record of the chain,
    so a changed particular shows in verification."""

    bol_number: str
    issuer: str
    shipper: str
    consignee: str | None
    goods_description: str
    packages: int
    gross_mass_kg: Decimal
    containers: tuple[str, ...]
    place_of_receipt: str
    place_of_delivery: str
    consignment_reference: str | None
    kind: Kind = Kind.RAILWAY_BILL
    vessel: str | None = None
    voyage: str | None = None
    port_of_loading: str | None = None
    port_of_discharge: str | None = None

    def as_json(self) -> dict[str, Any]:
        """What is digested: a railway bill as before other kinds existed, any other kind with
        "kind" and its own particulars (see the module docstring)."""
        particulars = {"bol_number": self.bol_number, "issuer": self.issuer, "shipper": self.shipper,
                       "consignee": self.consignee, "goods_description": self.goods_description,
                       "packages": self.packages, "gross_mass_kg": decimal_text(self.gross_mass_kg),
                       "containers": list(self.containers), "place_of_receipt": self.place_of_receipt,
                       "place_of_delivery": self.place_of_delivery,
                       "consignment_reference": self.consignment_reference}
        if self.kind is not Kind.RAILWAY_BILL:
            particulars["kind"] = self.kind.value
            particulars.update({name: getattr(self, name) for name in KIND_FIELDS[self.kind]})
        return particulars


def decimal_text(value: Decimal) -> str:
    """One spelling per number ("20100", "1.5"), so the digest does not depend on how it was typed."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def document_digest(particulars: Particulars) -> str:
    return hashlib.sha256(canonical_json(particulars.as_json())).hexdigest()


def check_bill(raw: object) -> tuple[BillInput | None, Problems]:
    """Every problem of a bill's particulars as received (JSON decoded), or the normalised input."""
    problems = Problems()
    if not isinstance(raw, Mapping):
        problems.add("", "not_an_object", "A bill of lading is a JSON object.")
        return None, problems
    fields = FieldReader(raw, "", problems)
    fields.refuse_unknown(BILL_FIELDS)
    chosen = fields.choice("kind", {k.value for k in Kind})
    kind = Kind(chosen) if chosen else (None if fields.given("kind") else Kind.RAILWAY_BILL)
    number = fields.text("bol_number", required=True, max_length=35)
    if number is not None:
        number = number.upper()
        if not BOL_NUMBER.fullmatch(number):
            fields.add("bol_number", "invalid_bol_number",
                       "A bill of lading number has 4 to 35 letters, digits, '-' or '/'.")
    shipper = fields.text("shipper_uscc", required=True, max_length=40)
    consignee = fields.text("consignee_uscc", max_length=40)
    description = fields.text("goods_description", required=True, max_length=1000)
    packages = _whole_number(fields, "packages")
    mass = fields.amount("gross_mass_kg", required=True, positive=True)
    containers = _containers(fields)
    sea = _sea_particulars(fields, kind)
    # A sea bill may be port to port: its place of receipt and of delivery default to the ports.
    port_to_port = kind is Kind.SEA_BILL
    receipt = _locode(fields, "place_of_receipt", required=not port_to_port) or sea.get("port_of_loading")
    delivery = _locode(fields, "place_of_delivery", required=not port_to_port) or sea.get("port_of_discharge")
    reference = fields.text("consignment_reference", max_length=64)
    if problems:
        return None, problems
    assert number and shipper and description and packages and mass and receipt and delivery and kind
    return BillInput(number, shipper.upper(), consignee.upper() if consignee else None, description,
                     packages, mass, containers, receipt, delivery, reference, kind, **sea), problems


def _sea_particulars(fields: FieldReader, kind: Kind | None) -> dict[str, str | None]:
    """A sea bill's vessel, voyage and ports; refused on a kind that does not carry them."""
    if kind is not Kind.SEA_BILL:
        for name in SEA_FIELDS:
            if fields.given(name) and kind is not None:
                fields.add(name, "not_for_this_kind", f"A {KIND_NAMES[kind]} has no {name.replace('_', ' ')}.")
        return {}
    vessel = fields.text("vessel", required=True, max_length=35)
    voyage = fields.text("voyage", required=True, max_length=17)
    loading = _locode(fields, "port_of_loading")
    discharge = _locode(fields, "port_of_discharge")
    if loading and discharge and loading == discharge:
        fields.add("port_of_discharge", "same_port", "The ports of loading and discharge are different ports.")
    return {"vessel": vessel.upper() if vessel else None, "voyage": voyage.upper() if voyage else None,
            "port_of_loading": loading, "port_of_discharge": discharge}


def _whole_number(fields: FieldReader, name: str) -> int | None:
    value = fields.raw.get(name)
    if value is None:
        fields.add(name, "required", f"{name} is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        fields.add(name, "not_a_whole_number", f"{name} is a whole number, like 12.")
        return None
    number = int(str(value).strip())
    if number < 1 or number > 10_000_000:
        fields.add(name, "out_of_range", f"{name} is between 1 and 10,000,000.")
        return None
    return number


def _containers(fields: FieldReader) -> tuple[str, ...]:
    items = fields.items("containers", max_items=500)
    if items is None:
        return ()
    found: list[str] = []
    for index, item in enumerate(items):
        path = f"containers[{index}]"
        if not isinstance(item, str) or not item.strip():
            fields.add(path, "not_a_string", "A container number is a string, like CSQU3054383.")
            continue
        number = iso6346.compact(item)
        if not iso6346.is_valid(number):
            fields.add(path, "invalid_container_number",
                       f"{item.strip()} is not a valid ISO 6346 container number (owner code, "
                       "category, serial number and check digit).")
        elif number in found:
            fields.add(path, "duplicate_container", f"Container {number} is listed twice.")
        else:
            found.append(number)
    return tuple(found)


def _locode(fields: FieldReader, name: str, required: bool = True) -> str | None:
    text = fields.text(name, required=required, max_length=6)
    if text is None:
        return None
    code = text.replace(" ", "").upper()
    if not UN_LOCODE.fullmatch(code) or pycountry.countries.get(alpha_2=code[:2]) is None:
        fields.add(name, "invalid_locode",
                   f"{name} is a UN/LOCODE: an ISO country code and three letters or digits, like CNCKG.")
        return None
    return code


# --- the state of a bill and the rules of each action --------------------------------------------

@dataclass(frozen=True)
class TitleState:
    """Where a bill stands after its last record. `holder` is never empty: exactly one holder."""

    bol_number: str
    document: str
    issuer: str
    consignee: str | None
    holder: str
    pledgee: str | None
    status: Status
    sequence: int
    head: str


@dataclass(frozen=True)
class Record:
    """One entry of a bill's history. `signature` and `hash` are what was stored; `body()` is what
    they are over."""

    bill: str
    sequence: int
    action: Action
    actor: str
    from_holder: str | None
    to_holder: str
    pledgee: str | None
    at: datetime
    previous: str
    document: str
    key: str
    signature: str = ""
    hash: str = ""

    def body(self) -> dict[str, Any]:
        return {"action": self.action.value, "actor": self.actor, "at": format_at(self.at),
                "bill": self.bill, "document": self.document, "format": RECORD_FORMAT,
                "from_holder": self.from_holder, "key": self.key, "pledgee": self.pledgee,
                "previous": self.previous, "sequence": self.sequence, "to_holder": self.to_holder}


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical_bytes(record: Record) -> bytes:
    """The bytes that are hashed and signed (see the module docstring)."""
    return canonical_json(record.body())


def record_hash(record: Record) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def format_at(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a record's time is timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_at(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def issue_record(particulars: Particulars, at: datetime, key: str) -> Record:
    """The first record: the issuer hands the bill to the shipper."""
    return Record(bill=particulars.bol_number, sequence=1, action=Action.ISSUE, actor=particulars.issuer,
                  from_holder=None, to_holder=particulars.shipper, pledgee=None, at=at, previous=GENESIS,
                  document=document_digest(particulars), key=key)


def next_record(state: TitleState, action: Action, actor: str, at: datetime, key: str,
                to: str | None = None) -> Record:
    """The record `actor` may append by taking `action` now; raises the rule's error otherwise.

    Who may do what: the holder endorses, pledges and surrenders; only the pledgee releases the
    pledge or takes the bill over; only the issuer voids, and only before any transfer. A pledged
    bill is locked (no endorsement, no surrender); a surrendered or void bill is final."""
    if action is Action.ISSUE:
        raise Conflict("The bill is already issued.", "already_issued")
    if state.status is Status.SURRENDERED:
        raise Conflict("The bill was surrendered against delivery; nothing more can be done with it.",
                       "already_surrendered")
    if state.status is Status.VOID:
        raise Conflict("The bill was voided by its issuer.", "voided")
    if action in WITH_COUNTERPARTY and not to:
        raise ValidationFailed("Name the party the bill goes to.", "required", "to_uscc")
    holder, pledgee = state.holder, state.pledgee
    if action is Action.ENDORSE:
        _require_holder(state, actor)
        _require_unpledged(state, "endorsed")
        if to == holder:
            raise ValidationFailed("The bill is already held by this party.", "same_holder", "to_uscc")
        if state.consignee is not None and to != state.consignee:
            raise ValidationFailed("A bill made out to a named consignee can be endorsed only to that "
                                   "consignee; only a bill 'to order' circulates.", "not_negotiable",
                                   "to_uscc")
        holder = to
    elif action is Action.PLEDGE:
        _require_holder(state, actor)
        if state.status is Status.PLEDGED:
            raise Conflict("The bill is already pledged; the bank must release it first.", "already_pledged")
        if to == holder:
            raise ValidationFailed("The holder cannot take its own bill in pledge.", "pledgee_is_holder",
                                   "bank_uscc")
        pledgee = to
    elif action in (Action.RELEASE_PLEDGE, Action.TAKE_OVER):
        if state.status is not Status.PLEDGED:
            raise Conflict("The bill is not pledged.", "not_pledged")
        if actor != state.pledgee:
            raise Forbidden("Only the bank holding the pledge may do this.", "not_the_pledgee")
        if action is Action.TAKE_OVER:
            holder = state.pledgee
        pledgee = None
    elif action is Action.SURRENDER:
        _require_holder(state, actor)
        _require_unpledged(state, "surrendered")
        holder = state.issuer
    elif action is Action.VOID:
        if actor != state.issuer:
            raise Forbidden("Only the issuer may void a bill.", "not_the_issuer")
        if state.sequence > 1:
            raise Conflict("The bill has changed hands or been pledged since it was issued; it can no "
                           "longer be voided.", "already_transferred")
        holder = state.issuer
    else:  # pragma: no cover - every Action is handled above
        raise ValueError(action)
    assert holder is not None
    return Record(bill=state.bol_number, sequence=state.sequence + 1, action=action, actor=actor,
                  from_holder=state.holder, to_holder=holder, pledgee=pledgee, at=at, previous=state.head,
                  document=state.document, key=key)


def _require_holder(state: TitleState, actor: str) -> None:
    if actor != state.holder:
        raise Forbidden("Only the holder of the bill may do this.", "not_the_holder")


def _require_unpledged(state: TitleState, done: str) -> None:
    if state.status is Status.PLEDGED:
        raise Conflict(f"The bill is pledged to a bank and cannot be {done} until the bank releases it.",
                       "pledged")


def apply(state: TitleState | None, record: Record, consignee: str | None = None) -> TitleState:
    """The state after a record (assumed legal: see `verify_chain` for the check)."""
    head = record.hash or record_hash(record)
    if state is None:
        return TitleState(bol_number=record.bill, document=record.document, issuer=record.actor,
                          consignee=consignee, holder=record.to_holder, pledgee=None, status=Status.ACTIVE,
                          sequence=record.sequence, head=head)
    status = {Action.SURRENDER: Status.SURRENDERED, Action.VOID: Status.VOID}.get(
        record.action, Status.PLEDGED if record.pledgee else Status.ACTIVE)
    return replace(state, holder=record.to_holder, pledgee=record.pledgee, status=status,
                   sequence=record.sequence, head=head)


# --- keys and signatures -------------------------------------------------------------------------

@dataclass(frozen=True)
class PublicKey:
    enterprise_id: str
    raw: bytes            # the 32 bytes of an Ed25519 public key


def fingerprint(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()


def parse_public_key(text: str) -> bytes:
    """An Ed25519 public key as PEM (SubjectPublicKeyInfo), or its 32 raw bytes in base64 or hex."""
    text = (text or "").strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, UnsupportedAlgorithm):
            key = None
        if not isinstance(key, Ed25519PublicKey):
            raise ValidationFailed("This PEM is not an Ed25519 public key.", "invalid_public_key", "public_key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raw = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raw = bytes.fromhex(text)
    else:
        raw = _b64decode(text)
    if raw is None or len(raw) != 32:
        raise ValidationFailed("An Ed25519 public key is PEM, or its 32 raw bytes in base64 or hex.",
                               "invalid_public_key", "public_key")
    return raw


def new_private_key() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def public_key_of(raw_private_key: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(raw_private_key).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_key_pem(raw_private_key: bytes) -> str:
    """A private key as an unencrypted PKCS #8 PEM file (what `tradewindow titles keygen` writes)."""
    return Ed25519PrivateKey.from_private_bytes(raw_private_key).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def public_key_pem(raw_public_key: bytes) -> str:
    return Ed25519PublicKey.from_public_bytes(raw_public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def parse_private_key_pem(text: str) -> bytes:
    """The 32 raw bytes of an Ed25519 private key in an (unencrypted) PEM file."""
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValidationFailed("This file is not an unencrypted Ed25519 private key in PEM.", "invalid_private_key",
                               "key")
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def sign_bytes(raw_private_key: bytes, data: bytes) -> str:
    return base64.b64encode(Ed25519PrivateKey.from_private_bytes(raw_private_key).sign(data)).decode()


def sign(raw_private_key: bytes, record: Record) -> str:
    signature = Ed25519PrivateKey.from_private_bytes(raw_private_key).sign(canonical_bytes(record))
    return base64.b64encode(signature).decode()


def signature_valid(raw_public_key: bytes, record: Record, signature: str) -> bool:
    decoded = _b64decode(signature)
    if decoded is None or len(decoded) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(raw_public_key).verify(decoded, canonical_bytes(record))
    except (InvalidSignature, ValueError):
        return False
    return True


def _b64decode(text: str) -> bytes | None:
    text = text.strip()
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            continue
    return None


# --- verification --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verification:
    """The outcome of checking a chain: valid, or the first broken record and why."""

    valid: bool
    length: int
    state: TitleState | None
    broken_sequence: int | None = None
    code: str | None = None
    message: str | None = None
    checks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "length": self.length, "head": self.state.head if self.state else None,
                "broken_sequence": self.broken_sequence, "code": self.code, "message": self.message,
                "checks": list(self.checks)}


def verify_chain(records: Sequence[Record], public_keys: Mapping[str, PublicKey],
                 particulars: Particulars | None = None) -> Verification:
    """Check every record in order: its place in the sequence, its link to the previous record,
    its stored hash, the key that signed it (known, and the actor's), the signature, the document
    digest, and that the rules allowed it. Reports the first record that fails."""
    state: TitleState | None = None
    expected_previous = GENESIS
    digest = document_digest(particulars) if particulars is not None else None
    checks = ["sequence", "link", "hash", "key", "signature", "rules"] + (["document"] if digest else [])

    def broken(record: Record, code: str, message: str) -> Verification:
        # Named by its place in the chain: a tampered record's own sequence cannot be trusted.
        place = index + 1
        return Verification(False, len(records), state, place, code,
                            f"Record {place} ({record.action.value}): {message}", checks)

    if not records:
        return Verification(False, 0, None, None, "empty_chain", "The bill has no records.", checks)
    for index, record in enumerate(records):
        if record.sequence != index + 1:
            return broken(record, "sequence_gap", f"expected sequence {index + 1}.")
        if (state is not None and record.bill != state.bol_number) or (
                particulars is not None and record.bill != particulars.bol_number):
            return broken(record, "wrong_bill", "the record belongs to another bill.")
        if record.previous != expected_previous:
            return broken(record, "broken_link", "its previous hash is not the hash of the record before.")
        computed = record_hash(record)
        if record.hash != computed:
            return broken(record, "hash_mismatch", "its content does not match its hash.")
        key = public_keys.get(record.key)
        if key is None:
            return broken(record, "unknown_key", "it was signed with a key the platform does not know.")
        if key.enterprise_id != record.actor:
            return broken(record, "key_not_actors", "the signing key belongs to another party.")
        if not signature_valid(key.raw, record, record.signature):
            return broken(record, "bad_signature", "the signature does not verify with the actor's key.")
        if digest is not None and record.document != digest:
            return broken(record, "document_mismatch", "the bill's particulars differ from what was signed.")
        try:
            if state is None:
                if record.action is not Action.ISSUE or record.from_holder is not None:
                    raise Conflict("The first record must be the issue.", "not_issued")
                if particulars is not None and (record.actor != particulars.issuer
                                                or record.to_holder != particulars.shipper):
                    raise Conflict("The bill was not issued by its issuer to its shipper.", "not_issued")
            else:
                legal = next_record(state, record.action, record.actor, record.at, record.key,
                                    record.pledgee if record.action is Action.PLEDGE else record.to_holder)
                if (legal.from_holder, legal.to_holder, legal.pledgee) != (
                        record.from_holder, record.to_holder, record.pledgee):
                    raise Conflict("The record's holders do not follow from the action.", "wrong_holders")
                if record.at < records[index - 1].at:
                    raise Conflict("The record is dated before the one it follows.", "time_reversed")
        except (Conflict, Forbidden, ValidationFailed) as exc:
            return broken(record, "illegal_transition", f"the rules did not allow it ({exc.code}).")
        state = apply(state, record, particulars.consignee if particulars is not None else None)
        expected_previous = computed
    return Verification(True, len(records), state, checks=checks)


# --- published heads -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Head:
    bol_number: str
    sequence: int
    hash: str


def heads_root(heads: Iterable[Head]) -> str:
    """SHA-256 over the sorted heads, one line each: "<bill number> <sequence> <hash>\\n"."""
    digest = hashlib.sha256()
    for head in sorted(heads, key=lambda h: h.bol_number):
        digest.update(f"{head.bol_number} {head.sequence} {head.hash}\n".encode())
    return digest.hexdigest()


def checkpoint_hash(previous: str, at: datetime, root: str, titles: int) -> str:
    """Each checkpoint names the one before it: the checkpoint log is itself a chain."""
    return hashlib.sha256(canonical_json({"at": format_at(at), "previous": previous, "root": root,
                                          "titles": titles})).hexdigest()


def check_against_heads(records: Sequence[Record], published: Iterable[Head]) -> tuple[str, str, int] | None:
    """The first published head the chain disagrees with, as (code, message, sequence), or None.
    A chain rewritten and re-signed (by whoever holds the keys) still differs from what was
    published before the rewrite."""
    by_sequence = {r.sequence: r for r in records}
    for head in sorted(published, key=lambda h: h.sequence):
        record = by_sequence.get(head.sequence)
        if record is None:
            return ("chain_truncated", f"A checkpoint published record {head.sequence}, which is missing.",
                    head.sequence)
        if record.hash != head.hash:
            return ("head_mismatch", f"Record {head.sequence} differs from the hash published in a "
                    "checkpoint: the history was rewritten after it was published.", head.sequence)
    return None
