"""The batch path at scale (`tradewindow cbec clear`): three NDJSON files of any size in, every
parcel matched, checked, taxed, limited, decided and stored, memory bounded.

How, in three passes over temporary files (an external partitioning, no sort of the whole):
1. partition: each line goes, as received, to the partition of its order number (CRC-32 mod K),
   so an order, its payment and its waybill meet; payment and waybill numbers also go to the
   partition of their own number, so a number used for two orders is found whatever partitions
   the two orders fall into (the first in its file stands, the other is `duplicate`);
2. match, per order partition: the documents are parsed with the model's own parsers, repeats and
   duplicates sorted out against the batch and the database, complete parcels assessed
   (`model.assess`, with one tariff quote per distinct request: a cache in front of the quote
   engine, never a second formula). Documents of parcels still waiting are stored now; a complete
   parcel's new documents travel with it to the partition of its buyer;
3. decide, per buyer partition: the buyer's parcels in the rule's order (`model.decide_batch`:
   ordered_at, ties by order number) from the year totals already stored, then the parcels, their
   documents and the year totals stored in one transaction per partition, by COPY on PostgreSQL
   (executemany on SQLite).

With W workers (forked processes; 2 on PostgreSQL), pass 1 reads each file in W pieces cut at
line starts, one piece of each to each worker; the numbers used twice are looked for in them too;
and passes 2 and 3 hand their partitions out one at a time, the largest first, to whichever worker
is free (so the cores stay busy to the end of a pass: `benchmarks/cbec.py --timing` shows it).

So a result never depends on where a line sits in a file, on K or on W; a parcel's documents and its
decision are committed together (the service's sweep never sees a complete, undecided parcel of
ours). The same files again store nothing twice and give the same results (the parcels decided
before are read back). Orders in the bonded-import mode are stored here and handed to the
per-record service decision (`service.decide_order`), which draws on the bonded account books.

One audit record describes the batch (per-record audit rows and parcel events are the per-record
path's; a batch of millions is audited as one action). The batch path assumes no stream worker
decides parcels of the same buyers at the same moment: year totals are read once per partition."""

from __future__ import annotations

import json
import marshal
import multiprocessing
import os
import re
import resource
import shutil
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import DBAPIError

from tradewindow.ecommerce import model, service
from tradewindow.ecommerce.model import Decision, Kind, Reason
from tradewindow.ecommerce.rates import QuoteCache
from tradewindow.ecommerce.tables import cbec_buyer_years, cbec_orders, cbec_parcels, cbec_payments, cbec_waybills
from tradewindow.platform import jsontext
from tradewindow.platform.auth import Actor
from tradewindow.platform.bulk import copy_line, copy_lines, cycle_collection_paused, insert_rows
from tradewindow.platform.db import UnitOfWork, utcnow
from tradewindow.platform.errors import DomainError, Problem, ValidationFailed, require
from tradewindow.platform.ids import new_id
from tradewindow.platform.money import format_amount, from_minor_units, to_minor_units
from tradewindow.platform.settings import get_settings
from tradewindow.registry import service as registry
from tradewindow.tariff import service as tariff_service

# Raw bytes of input per partition: what one partition holds in memory at a time (~16 k parcels).
PARTITION_BYTES = 16 * 1024 * 1024
MAX_PARTITIONS = 2048              # 16 MiB each: 32 GiB of input (10 million parcels are ~17 GiB)
BUYER_SPLIT = 2     # buyer partitions per order partition with 2 workers or more: shorter ones, so
                    # that the workers' last partitions of pass 3 end closer together
IN_CHUNK = 2000                     # numbers per IN (...) look-up
PROGRESS_BYTES = 1 << 20            # pass 1 reports what it read by the megabyte
KINDS = tuple(Kind)     # iterating the enum itself costs a generator each time
KIND_CHAR = {Kind.ORDER: "o", Kind.PAYMENT: "p", Kind.WAYBILL: "w"}
CHAR_KIND = {v: k for k, v in KIND_CHAR.items()}
KIND_SLOT = {KIND_CHAR[kind]: slot for slot, kind in enumerate(KINDS)}
NUMBER_FIELD = {Kind.ORDER: "order_no", Kind.PAYMENT: "payment_no", Kind.WAYBILL: "waybill_no"}
# The documents' and parcels' columns in the order their rows are written: the service's (its
# stream batches write the same tables the same way).
DOC_COLUMNS = service.DOCUMENT_COLUMNS
SENDER_AT = {kind: columns.index("sender_id") for kind, columns in DOC_COLUMNS.items()}
PARCEL_COLUMNS = service.PARCEL_COLUMNS
# On PostgreSQL a parcel's row is copied in this order of its columns: pass 2 writes the first ones
# (known when the parcel is assessed) as COPY text, pass 3 adds the rest (known once it is decided).
PARCEL_ASSESSED = ("buyer_id_number", "order_no", "year", "waybill_no", "platform_id", "payment_sender_id",
                   "logistics_sender_id", "ordered_at", "customs_value_fen", "duty_fen", "consumption_tax_fen",
                   "vat_fen", "total_tax_fen")
PARCEL_DECIDED = ("id", "decision", "reasons", "status", "counted_fen", "year_total_after_fen", "decided_at",
                  "cancelled_at", "cancel_reason")
YEAR_COLUMNS = ("buyer_id_number", "year", "total_fen", "parcels", "updated_at")
TABLE_OF = {Kind.ORDER: cbec_orders, Kind.PAYMENT: cbec_payments, Kind.WAYBILL: cbec_waybills}
FILE_OF = {Kind.ORDER: "orders", Kind.PAYMENT: "payments", Kind.WAYBILL: "waybills"}
REFUSED_KEPT = 100
TAX_NAMES = ("duty", "consumption_tax", "vat", "total_tax")

Progress = Callable[[str, int], None]
MALFORMED = Problem("", "malformed_json", "This line is not a JSON object.")


@dataclass
class ClearSummary:
    """What a clearing run did. Refusals are counted by code; the first ones are kept with their
    file and line."""

    lines: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILE_OF.values(), 0))
    accepted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILE_OF.values(), 0))
    repeated: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    refused_lines: list[dict] = field(default_factory=list)
    decisions: dict[str, int] = field(default_factory=lambda: {d.value: 0 for d in Decision})
    reasons: dict[str, int] = field(default_factory=dict)
    decided_before: int = 0
    waiting: int = 0
    taxes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TAX_NAMES, 0))  # fen, released and inspected
    partitions: int = 0

    def refuse(self, kind: Kind, line: int, problems: list[Problem]) -> None:
        for code in {p.code for p in problems}:
            self.refused[code] = self.refused.get(code, 0) + 1
        # the first lines by file and line, whichever pass finds them
        self.refused_lines.append({"file": FILE_OF[kind], "line": line, "errors": [p.as_dict() for p in problems]})
        if len(self.refused_lines) > 2 * REFUSED_KEPT:
            self.refused_lines = _first_refused(self.refused_lines)

    def count(self, result: dict) -> None:
        """Count a result line."""
        taxes = tuple(to_minor_units(Decimal(result[name])) for name in TAX_NAMES)
        self.count_decided(result["decision"], result["reasons"], taxes)  # type: ignore[arg-type]

    def count_decided(self, decision: str, reasons: list[str], taxes: tuple[int, int, int, int],
                      parcels: int = 1) -> None:
        """Count a decision, its reasons and its duty, consumption tax, VAT and total in fen (of
        `parcels` parcels decided alike: the taxes are their sums)."""
        self.decisions[decision] += parcels
        for reason in reasons:
            self.reasons[reason] = self.reasons.get(reason, 0) + parcels
        if decision != Decision.REJECT.value:
            for name, fen in zip(TAX_NAMES, taxes, strict=True):
                self.taxes[name] += fen

    def merge(self, other: ClearSummary) -> None:
        """Add what another worker's part of the same run counted."""
        for mine, theirs in ((self.lines, other.lines), (self.accepted, other.accepted), (self.refused, other.refused),
                             (self.decisions, other.decisions), (self.reasons, other.reasons),
                             (self.taxes, other.taxes)):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value
        self.repeated += other.repeated
        self.decided_before += other.decided_before
        self.waiting += other.waiting
        self.refused_lines = _first_refused([*self.refused_lines, *other.refused_lines])

    @property
    def parcels(self) -> int:
        return sum(self.decisions.values())

    def as_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "accepted": self.accepted, "repeated": self.repeated,
                "refused": sum(self.refused.values()), "refused_by_code": dict(sorted(self.refused.items())),
                "refused_lines": _first_refused(self.refused_lines), "parcels_decided": self.parcels,
                "decided_before": self.decided_before, "waiting": self.waiting, "decisions": self.decisions,
                "reasons": dict(sorted(self.reasons.items())),
                "taxes": {k: format_amount(from_minor_units(v)) for k, v in self.taxes.items()}}


@contextmanager
def _timed(target: Path | None, step: str, worker: int | None = None) -> Iterator[None]:
    """With `target` a file (`clear(timing=...)`, `tradewindow cbec clear --timing`), one JSON line
    appended to it per step: the process, its start and end (epoch seconds), the process's CPU
    seconds over it and the seconds it waited, runnable, for a core (the benchmark's `--timing`
    report of where cores idle). Otherwise nothing."""
    if target is None:
        yield
        return
    began, cpu, queued = time.time(), time.process_time(), _run_queue_seconds()
    try:
        yield
    finally:
        line = json.dumps({"step": step, "worker": worker, "pid": os.getpid(), "start": began, "end": time.time(),
                           "cpu": time.process_time() - cpu, "queued": _run_queue_seconds() - queued})
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def _run_queue_seconds() -> float:
    """How long this process has waited, runnable, for a core (Linux schedstat; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _first_refused(lines: list[dict]) -> list[dict]:
    return sorted(lines, key=lambda r: (r["file"], r["line"]))[:REFUSED_KEPT]


_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _BASE32 for b in _BASE32]


class _Ids:
    """ULIDs for many rows: a fresh `new_id()` gives the time, 50 fresh random bits follow and a
    counter the last 30 (a million rows cost one `new_id`, not a million). The random bits are
    drawn here, not taken from `new_id`, whose state forked workers share."""

    def __init__(self) -> None:
        self.prefix, self.count = "", 1 << 30

    def __call__(self) -> str:
        if self.count >= (1 << 30) - 1:
            bits = int.from_bytes(os.urandom(7), "big") >> 6      # 50 bits
            self.prefix = new_id()[:10] + "".join(_BASE32[(bits >> shift) & 31] for shift in range(45, -5, -5))
            self.count = 0
        self.count += 1
        n = self.count
        return self.prefix + _PAIRS[n >> 20] + _PAIRS[(n >> 10) & 1023] + _PAIRS[n & 1023]


_CENT = Decimal("0.01")


def _to_fen(amount: Decimal) -> int:
    """`money.to_minor_units(amount)` in CNY (the currency of every amount here), without the
    look-up of the currency's places: a third of the time, per parcel (a test holds them equal)."""
    scaled = amount.scaleb(2)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} CNY is not a whole number of minor units")
    return int(scaled)


def _from_fen(units: int) -> Decimal:
    """`money.from_minor_units(units)` in CNY (a test holds them equal)."""
    return Decimal(units).scaleb(-2).quantize(_CENT)


@lru_cache(maxsize=1 << 16)
def _fen(value: int) -> str:
    """An amount in fen as the system writes amounts ("53846.25"); the amounts of a festival's
    parcels repeat, so each is written once."""
    return f"-{_fen(-value)}" if value < 0 else f"{value // 100}.{value % 100:02d}"


_json_string = json.encoder.encode_basestring      # as json.dumps(..., ensure_ascii=False) writes a str
_masked = lru_cache(maxsize=1 << 14)(model.mask_id)  # a buyer's parcels are decided one after another


def _result_text(order_no: str, waybill_no: str, buyer: str, decision: str, reasons_text: str,
                 fen: tuple[int, int, int, int, int, int]) -> str:
    """A result line as `json.dumps(result, ensure_ascii=False)` writes service.result_line's
    dictionary (a test holds them equal): customs value, duty, consumption tax, VAT, total tax
    and the buyer's year total after, in fen."""
    e = _json_string
    value, duty, ctax, vat, total, after = fen
    return (f'{{"order_no": {e(order_no)}, "waybill_no": {e(waybill_no)}, '
            f'"buyer_id_number": {e(_masked(buyer))}, '
            f'"decision": "{decision}", "reasons": {reasons_text}, "customs_value": "{_fen(value)}", '
            f'"duty": "{_fen(duty)}", "consumption_tax": "{_fen(ctax)}", "vat": "{_fen(vat)}", '
            f'"total_tax": "{_fen(total)}", "buyer_year_total_after": "{_fen(after)}"}}\n')


def _put(handle: IO[bytes], value: Any) -> None:
    """Append one value to a temporary file (length-prefixed marshal: the fastest safe round trip
    of plain JSON values and tuples in the standard library)."""
    data = marshal.dumps(value)
    handle.write(len(data).to_bytes(4, "little"))
    handle.write(data)


def _values(path: Path) -> Iterator[Any]:
    data = path.read_bytes()
    view, at, end = memoryview(data), 0, len(data)
    while at < end:
        size = int.from_bytes(view[at:at + 4], "little")
        yield marshal.loads(view[at + 4:at + 4 + size])
        at += 4 + size


# --- pass 1: partitioning ------------------------------------------------------------------------

def _partition_of(text: str, k: int) -> int:
    return zlib.crc32(text.encode()) % k


def partition_count(total_bytes: int) -> int:
    return max(1, min(MAX_PARTITIONS, -(-total_bytes // PARTITION_BYTES)))


_ORDER_NO_FIRST = re.compile(rb'\{[ \t\r\n]*"order_no"[ \t\r\n]*:[ \t\r\n]*"([^"\\\x00-\x1f]+)"')


def _order_no_at_sight(raw: bytes) -> str | None:
    """An order line's number read off the raw line, when that is certain to be what parsing
    would give: a plain string (no escape, quote or control character) under the first key of
    the top-level object, and a line with no backslash (so every quoted name is a whole JSON
    string) naming "order_no" only once (a repeated key would leave the last one standing). The
    line may still be malformed: pass 2 parses it and refuses it then, as this pass would have
    (an order line leaves nothing else behind in this pass; payments and waybills, whose numbers
    are compared here, are parsed here). None: parse it here."""
    if b"\\" in raw or raw.count(b'"order_no"') != 1:
        return None
    found = _ORDER_NO_FIRST.match(raw)
    if found is None:
        return None
    try:
        return found[1].decode()
    except UnicodeDecodeError:
        return None


def _numbers_read_fast(raw: bytes, number_field: str) -> tuple[str, str] | None:
    """A payment's or waybill's order number and own number when orjson reads both as text (the
    order number not empty): the standard library reads the same two strings then, as orjson
    reads a line as it does or refuses it, but for huge integers, which are not text. None: read
    the line the full way (`_read_line`)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict:
        return None
    order_no, number = value.get("order_no"), value.get(number_field)
    return (order_no, number) if type(order_no) is str and order_no and type(number) is str else None


_LINE_HEAD = struct.Struct("<BIII")     # kind char, line number, sizes of the order number and of the line


def _put_line(handle: IO[bytes], char: str, line_no: int, order_no: str, raw: bytes) -> None:
    """A line of an order partition, as read (parsed in pass 2): kind, line number, order number."""
    key = order_no.encode()
    handle.write(_LINE_HEAD.pack(ord(char), line_no, len(key), len(raw)) + key)
    handle.write(raw)


def _lines(path: Path) -> Iterator[tuple[str, int, str, bytes]]:
    data = path.read_bytes()
    at, end = 0, len(data)
    head, head_size = _LINE_HEAD.unpack_from, _LINE_HEAD.size
    while at < end:
        char, line_no, key_size, size = head(data, at)
        at += head_size
        yield chr(char), line_no, data[at:at + key_size].decode(), data[at + key_size:at + key_size + size]
        at += key_size + size


def _read_line(raw: bytes, line_no: int) -> Any:
    """A line's JSON value; raises ValueError (UnicodeDecodeError, JSONDecodeError) when malformed."""
    return jsontext.read(raw, lambda: json.loads(raw.decode("utf-8-sig" if line_no == 1 else "utf-8")))


def _record(kind: Kind, raw: bytes, line_no: int) -> model.Record:
    """A line's record: `model.parse_record(kind, _read_line(raw, line_no))`, or its ValueError
    (malformed) or ValidationFailed. Read by orjson and the quick reading first: a record that
    reading takes holds only text, objects, lists and nulls, which orjson reads as the standard
    library does (only huge integers differ, and there are none), so it is the same record;
    anything else is read the full way, with its exact errors."""
    try:
        record = model.quick_record(kind, orjson.loads(raw))
    except orjson.JSONDecodeError:
        record = None
    return record if record is not None else model.parse_record(kind, _read_line(raw, line_no))


Piece = tuple[Kind, Path, int, int | None]      # a file's lines starting from byte `start` before byte `end`


def _line_start(handle: IO[bytes], at: int) -> int:
    """The offset of the first line that starts at `at` or after it."""
    if at <= 0:
        return 0
    handle.seek(at - 1)
    handle.readline()
    return handle.tell()


def _pieces(paths: dict[Kind, Path], workers: int) -> list[list[Piece]]:
    """Each file cut in `workers` pieces of about the same size at line starts: worker w reads the
    w-th piece of every file (the work of pass 1 shared evenly whatever the files' sizes)."""
    shares: list[list[Piece]] = [[] for _ in range(workers)]
    for kind, path in paths.items():
        size = path.stat().st_size
        with open(path, "rb") as handle:
            cuts = [_line_start(handle, size * w // workers) for w in range(workers)]
        for w in range(workers):
            shares[w].append((kind, path, cuts[w], cuts[w + 1] if w + 1 < workers else None))
    return shares


def _lines_before(handle: IO[bytes], at: int) -> int:
    """How many lines end before byte `at` (the line number of the line starting there, less one)."""
    handle.seek(0)
    count, left = 0, at
    while left > 0:
        block = handle.read(min(left, 1 << 22))
        if not block:
            break
        count += block.count(b"\n")
        left -= len(block)
    return count


def _partition(pieces: list[Piece], work: Path, k: int, actor: Actor, summary: ClearSummary,
               progress: Progress | None, worker: int = 0) -> None:
    """Pass 1 over some pieces of the files, into partition files of this worker's own."""
    by_order = [open(work / f"o{i}_{worker}", "wb") for i in range(k)]  # noqa: SIM115 - closed below
    by_number = [open(work / f"n{i}_{worker}", "w", encoding="utf-8") for i in range(k)]  # noqa: SIM115
    try:
        for kind, path, start, end in pieces:
            allowed = service.may_send(actor, kind)
            char = KIND_CHAR[kind]
            number_field = NUMBER_FIELD[kind]
            with open(path, "rb") as handle:
                first_line = _lines_before(handle, start) + 1
                handle.seek(start)
                left = end - start if end is not None else -1      # bytes of this piece still to read
                unreported = 0      # bytes read since the last report: progress by the megabyte, not
                for line_no, raw in enumerate(handle, start=first_line):  # by the line (a worker's goes by a queue)
                    if left == 0:
                        break
                    left -= len(raw)
                    unreported += len(raw)
                    if unreported >= PROGRESS_BYTES and progress:
                        progress("read", unreported)
                        unreported = 0
                    if not raw.strip():
                        continue
                    summary.lines[FILE_OF[kind]] += 1
                    order_no = None
                    if allowed:
                        if kind is Kind.ORDER:
                            order_no = _order_no_at_sight(raw)
                        elif (numbers := _numbers_read_fast(raw, number_field)) is not None:
                            order_no, number = numbers
                    if order_no is None:
                        try:
                            obj = _read_line(raw, line_no)
                        except ValueError:
                            summary.refuse(kind, line_no, [MALFORMED])
                            continue
                        if not allowed:
                            summary.refuse(kind, line_no, [Problem("kind", "role_not_allowed",
                                                                   f"{kind.value.capitalize()}s are sent by the "
                                                                   f"{service.SENDERS[kind].value} role.")])
                            continue
                        order_no = obj.get("order_no") if isinstance(obj, dict) else None
                        if not isinstance(order_no, str) or not order_no:
                            try:
                                model.parse_record(kind, obj)
                                problems = [Problem("order_no", "required", "order_no is required.")]
                            except ValidationFailed as refused:
                                problems = refused.problems
                            summary.refuse(kind, line_no, problems)
                            continue
                        number = obj.get(number_field)
                    _put_line(by_order[_partition_of(order_no, k)], char, line_no, order_no, raw)
                    if kind is not Kind.ORDER and isinstance(number, str):
                        by_number[_partition_of(number, k)].write(f"{char}\t{line_no}\t{number}\t{order_no}\n")
                if unreported and progress:
                    progress("read", unreported)
    finally:
        for handle in (*by_order, *by_number):
            handle.close()


def _numbers_used_twice(work: Path, indices: Iterator[int] | range) -> set[tuple[str, int]]:
    """(kind char, line) of the payments and waybills whose number an earlier line of the same
    file gave to another order, found in some number partitions: they are `duplicate`, the first
    one stands."""
    losers: set[tuple[str, int]] = set()
    for i in indices:
        first: dict[tuple[str, str], tuple[int, str]] = {}
        # worker w read the w-th piece of each file: by worker, each file's lines in order
        for path in sorted(work.glob(f"n{i}_*"), key=lambda p: int(p.name.rsplit("_", 1)[1])):
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    char, line_no, number, order_no = line.rstrip("\n").split("\t", 3)
                    held = first.get((char, number))
                    if held is None:
                        first[(char, number)] = (int(line_no), order_no)
                    elif held[1] != order_no:
                        losers.add((char, int(line_no)))
            path.unlink()
    return losers


# --- pass 2: matching ----------------------------------------------------------------------------

@dataclass(slots=True)
class _Doc:
    kind: Kind
    line: int
    record: model.Record
    body: str       # model.canonical_text(record): stored, and compared with what is stored


def _in_chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start:start + IN_CHUNK]


class _Stored:
    """What the database already holds for a partition's orders and numbers."""

    def __init__(self) -> None:
        self.by_number: dict[Kind, dict[str, Any]] = {k: {} for k in KINDS}
        self.by_order: dict[Kind, dict[str, Any]] = {k: {} for k in KINDS}
        self.parcels: dict[str, dict] = {}

    @classmethod
    def load(cls, conn: Any, order_nos: list[str], numbers: dict[Kind, list[str]], any_docs: bool,
             any_parcels: bool) -> _Stored:
        stored = cls()
        if any_docs:
            for kind, table in TABLE_OF.items():
                number_col = table.c[NUMBER_FIELD[kind]]
                columns = [number_col, table.c.sender_id, table.c.body]
                if kind is not Kind.ORDER:
                    columns.append(table.c.order_no)
                keys = [*order_nos]
                for chunk in _in_chunks(keys):
                    rows = conn.execute(select(*columns).where(table.c.order_no.in_(chunk))).mappings().all()
                    for row in rows:
                        stored.by_number[kind][row[NUMBER_FIELD[kind]]] = dict(row)
                        stored.by_order[kind][row["order_no"]] = dict(row)
                if kind is not Kind.ORDER:
                    for chunk in _in_chunks(numbers[kind]):
                        for row in conn.execute(select(*columns).where(number_col.in_(chunk))).mappings():
                            stored.by_number[kind][row[NUMBER_FIELD[kind]]] = dict(row)
        if any_parcels:
            for chunk in _in_chunks(order_nos):
                for row in conn.execute(select(cbec_parcels).where(cbec_parcels.c.order_no.in_(chunk))).mappings():
                    stored.parcels[row["order_no"]] = dict(row)
        return stored


class _Clearing:
    def __init__(self, uow: UnitOfWork, actor: Actor, sampling: model.Sampling, summary: ClearSummary,
                 work: Path, k: int, results: IO[str] | None, progress: Progress | None,
                 timing: Path | None = None) -> None:
        self.uow, self.actor, self.sampling, self.summary = uow, actor, sampling, summary
        self.work, self.k, self.results, self.progress = work, k, results, progress
        self.timing = timing        # the file `_timed` appends to, if any
        self.buyer_k = k            # buyer partitions (pass 3)
        self.zone = ZoneInfo(get_settings().time_zone)
        self.quotes = QuoteCache()
        self.lines: Any = None      # the tariff lookup, on the connection of the pass that reads
        self.ids = _Ids()
        self.platforms: dict[str, str | None] = {}
        self.reasons_text: dict[tuple[Reason, ...], tuple[list[str], str, str]] = {}
        # PostgreSQL: pass 2 writes a complete parcel's new documents and its assessed columns as
        # COPY text lines (platform.bulk.copy_line: bytes, which marshal and the COPY take as they
        # are), which pass 3 joins and copies
        self.copy_text = uow.dialect == "postgresql"
        with uow.read() as conn:
            self.any_docs = any(conn.execute(select(func.count()).select_from(
                select(t.c.order_no).limit(1).subquery())).scalar_one() for t in TABLE_OF.values())
            self.any_parcels = bool(conn.execute(select(func.count()).select_from(
                select(cbec_parcels.c.id).limit(1).subquery())).scalar_one())
            self.any_years = bool(conn.execute(select(func.count()).select_from(
                select(cbec_buyer_years.c.year).limit(1).subquery())).scalar_one())

    # --- rows
    @staticmethod
    def _time(moment: datetime) -> str:
        """A time as stored rows carry it: ISO 8601 text with its offset (see insert_rows)."""
        return moment.isoformat()

    def _doc_row(self, doc: _Doc, sender: str | None, now: Any) -> tuple:
        record = doc.record
        if isinstance(record, model.Order):
            return (record.order_no, record.buyer_id_number, self._time(record.ordered_at), sender, doc.body, now)
        return (record.number, record.order_no, sender, doc.body, now)

    def _sender(self, kind: Kind, record: model.Record) -> str | None:
        if self.actor.enterprise_id is not None or kind is not Kind.ORDER:
            return self.actor.enterprise_id
        code = record.platform_code  # type: ignore[union-attr]
        if code not in self.platforms:
            enterprise = registry.enterprise_by_uscc(self.uow, code)
            self.platforms[code] = enterprise["id"] if enterprise else None
        return self.platforms[code]

    # --- pass 2
    def match(self, index: int, losers: set[tuple[str, int]], buyers: list[IO[bytes]], bonded: IO[str]) -> None:
        groups: dict[str, tuple[list[tuple[int, bytes]], ...]] = {}     # an order's lines by kind (KINDS)
        for path in sorted(self.work.glob(f"o{index}_*")):
            for char, line_no, order_no, raw in _lines(path):
                group = groups.get(order_no)
                if group is None:
                    group = groups[order_no] = ([], [], [])
                group[KIND_SLOT[char]].append((line_no, raw))
            path.unlink()
        to_buyers: dict[int, list[tuple]] = {}
        order_nos = sorted(groups)
        parsed: dict[str, dict[Kind, list[_Doc]]] = {}
        numbers: dict[Kind, list[str]] = {Kind.PAYMENT: [], Kind.WAYBILL: []}
        for order_no in order_nos:
            docs: dict[Kind, list[_Doc]] = {}
            for kind, lines in zip(KINDS, groups.pop(order_no), strict=True):
                docs[kind] = kind_docs = []
                if len(lines) > 1:
                    lines.sort()        # by line number: the first of a kind in its file stands
                for line_no, raw in lines:
                    try:
                        record = _record(kind, raw, line_no)
                    except ValueError:
                        self.summary.refuse(kind, line_no, [MALFORMED])
                        continue
                    except ValidationFailed as refused:
                        self.summary.refuse(kind, line_no, refused.problems)
                        continue
                    if losers and (KIND_CHAR[kind], line_no) in losers:
                        self.summary.refuse(kind, line_no, [_duplicate(kind, record.number)])
                        continue
                    kind_docs.append(_Doc(kind, line_no, record, model.canonical_text(record)))
                    if kind is not Kind.ORDER:
                        numbers[kind].append(record.number)
            parsed[order_no] = docs
        now = self._time(utcnow())
        waiting_rows: dict[Kind, list[tuple]] = {k: [] for k in KINDS}
        with self.uow.read() as conn:   # computing reads only; the writes follow in a short transaction
            stored = _Stored.load(conn, order_nos, numbers, self.any_docs, self.any_parcels)
            self.lines = tariff_service.tariff_lookup(self.uow)
            for order_no in order_nos:
                docs = parsed.pop(order_no)
                if not any(docs.values()):      # every line of the order refused: nothing stands or waits
                    continue
                standing, new_docs = self._standing(docs, stored)
                rows = {kind: self._doc_row(doc, self._sender(kind, doc.record), now) for kind, doc in new_docs.items()}
                if order_no in stored.parcels:
                    self._write_result(service.result_line(stored.parcels[order_no]))
                    self.summary.decided_before += 1
                    continue
                order = standing.get(Kind.ORDER)
                if len(standing) < 3 or getattr(order, "bonded_warehouse", None):
                    for kind, row in rows.items():
                        waiting_rows[kind].append(row)
                    if len(standing) < 3:
                        self.summary.waiting += 1
                    else:   # the per-record service decides bonded imports (account books)
                        bonded.write(order_no + "\n")
                    continue
                senders = {kind: (rows[kind][SENDER_AT[kind]] if kind in rows
                                  else stored.by_number[kind][standing[kind].number]["sender_id"])
                           for kind in KINDS}
                assessment = model.assess(order, standing[Kind.PAYMENT], standing[Kind.WAYBILL],  # type: ignore[arg-type]
                                          self.lines, self.zone, self.quotes)
                ordered_at = rows[Kind.ORDER][2] if Kind.ORDER in rows else self._time(order.ordered_at)  # type: ignore[union-attr]
                buyer, year, number = (order.buyer_id_number, model.limit_year(order, self.zone),  # type: ignore[union-attr, arg-type]
                                       order.order_no)  # type: ignore[union-attr]
                fen = (_to_fen(assessment.customs_value), _to_fen(assessment.duty),
                       _to_fen(assessment.consumption_tax), _to_fen(assessment.vat))
                waybill_no = standing[Kind.WAYBILL].number
                if self.copy_text:      # the rows as COPY text lines; the parcel's but its decided columns
                    assessed = copy_line((buyer, number, year, waybill_no, senders[Kind.ORDER],
                                          senders[Kind.PAYMENT], senders[Kind.WAYBILL], ordered_at, *fen,
                                          fen[1] + fen[2] + fen[3]))
                    candidate = (buyer, ordered_at, number, year, tuple(r.value for r in assessment.reasons),
                                 *fen, waybill_no, None, None, None,
                                 {KIND_CHAR[kind]: copy_line(row) for kind, row in rows.items()},
                                 assessed[:-1] + b"\t")
                else:
                    candidate = (buyer, ordered_at, number, year, tuple(r.value for r in assessment.reasons),
                                 *fen, waybill_no, senders[Kind.ORDER], senders[Kind.PAYMENT], senders[Kind.WAYBILL],
                                 {KIND_CHAR[kind]: row for kind, row in rows.items()}, None)
                to_buyers.setdefault(_partition_of(order.buyer_id_number, self.buyer_k), []).append(candidate)  # type: ignore[union-attr]
        for j, candidates in to_buyers.items():
            _put(buyers[j], candidates)
        if any(waiting_rows.values()):
            with self.uow.transaction() as conn:
                self._store(conn, waiting_rows)
        if self.progress:
            self.progress("matched", len(order_nos))

    def _standing(self, docs: dict[Kind, list[_Doc]], stored: _Stored) -> tuple[dict[Kind, Any], dict[Kind, _Doc]]:
        """The record of each kind that stands for the order (stored before, or the first of the
        batch), and the new ones to store; repeats counted, duplicates refused."""
        standing: dict[Kind, Any] = {}
        new: dict[Kind, _Doc] = {}
        for kind in KINDS:
            kind_docs = docs[kind]
            if len(kind_docs) == 1 and not stored.by_number[kind] and not stored.by_order[kind]:
                # the common case, as the loop below decides it: one document, nothing stored to meet
                new[kind] = kind_docs[0]
                standing[kind] = kind_docs[0].record
                self.summary.accepted[FILE_OF[kind]] += 1
                continue
            for doc in kind_docs:
                record = doc.record
                sender = self._sender(kind, record) if kind is Kind.ORDER else self.actor.enterprise_id
                held = stored.by_number[kind].get(record.number)
                problem = None
                if held is not None:
                    if model.stored_canonical_text(held["body"]) == doc.body and held["sender_id"] == sender and (
                            kind is Kind.ORDER or held["order_no"] == record.order_no):
                        self.summary.repeated += 1
                        standing.setdefault(kind, record)
                        continue
                    problem = _duplicate(kind, record.number)
                elif kind is not Kind.ORDER and record.order_no in stored.by_order[kind]:
                    problem = _second(kind, record.order_no)
                elif kind in new:
                    first = new[kind]
                    if first.record.number == record.number:
                        if first.body == doc.body:
                            self.summary.repeated += 1
                            continue
                        problem = _duplicate(kind, record.number)
                    else:
                        problem = _second(kind, record.order_no)
                if problem is not None:
                    self.summary.refuse(kind, doc.line, [problem])
                    continue
                new[kind] = doc
                standing[kind] = record
                self.summary.accepted[FILE_OF[kind]] += 1
            if kind not in standing:
                held_for_order = stored.by_order[kind].get(_order_no(docs))
                if held_for_order is not None:
                    parse = model.PARSERS[kind]
                    standing[kind] = parse(held_for_order["body"])
        return standing, new

    # --- pass 3
    def decide(self, index: int) -> None:
        entries = []
        for path in sorted(self.work.glob(f"b*_{index}")):
            for candidates in _values(path):
                entries.extend(candidates)
            path.unlink()
        if not entries:
            return
        entries.sort(key=itemgetter(0, 1, 2))      # buyer, ordered_at text, order number
        candidates = []
        reasons_of: dict[tuple[str, ...], tuple[Reason, ...]] = {}
        for e in entries:
            reasons = reasons_of.get(e[4])
            if reasons is None:
                reasons = reasons_of[e[4]] = tuple(Reason(r) for r in e[4])
            assessment = model.Assessment(reasons, _from_fen(e[5]))
            candidates.append(model.Candidate(e[2], e[0], datetime.fromisoformat(e[1]), assessment, e[3]))
        now = utcnow()
        stamp = self._time(now)     # text: COPY takes it as is (a datetime is dumped again for every row)
        with self.uow.transaction() as conn, ThreadPoolExecutor(1) as background:
            keys = sorted({(e[0], e[3]) for e in entries})
            totals = self._year_totals(conn, keys)
            documents = None
            if self.copy_text:
                # PostgreSQL: the documents copied (by a thread, which waits on the server) while the
                # parcels are decided, so that the server takes them in meanwhile; the connection is
                # the thread's alone until they are
                doc_lines: dict[str, list[bytes]] = {char: [] for char in CHAR_KIND}
                for e in entries:
                    for char, line in e[13].items():
                        doc_lines[char].append(line)
                documents = background.submit(self._copy_documents, conn, doc_lines)
            outcomes = model.decide_batch(candidates, {k: _from_fen(v) for k, v in totals.items()},
                                          self.sampling)
            doc_rows: dict[Kind, list[tuple]] = {k: [] for k in KINDS}
            parcel_rows: list[tuple] = []
            parcel_lines: list[bytes] = []
            copy_text = self.copy_text
            counted: dict[tuple[str, int], list[int]] = {}
            tally: dict[tuple[str, tuple[Reason, ...]], list[int]] = {}    # parcels, duty, consumption tax, VAT
            for e in entries:
                (buyer, ordered_at, order_no, year, _, value, duty, ctax, vat, waybill_no, platform_id,
                 payment_sender, logistics_sender, rows, assessed) = e
                outcome = outcomes[order_no]
                decision = outcome.decision.value
                _, reasons_text, reasons_copied = self._reasons(outcome.reasons)
                counted_fen = _to_fen(outcome.counted)
                after = _to_fen(outcome.year_total_after)
                key = (buyer, year)
                slot = counted.setdefault(key, [totals.get(key, 0), 0])
                if counted_fen:
                    slot[0], slot[1] = after, slot[1] + 1
                if copy_text:       # PARCEL_ASSESSED, then PARCEL_DECIDED
                    parcel_lines.append(assessed + f"{self.ids()}\t{decision}\t{reasons_copied}\tdecided\t"
                                                   f"{counted_fen}\t{after}\t{stamp}\t\\N\t\\N\n".encode())
                else:
                    for char, row in rows.items():
                        doc_rows[CHAR_KIND[char]].append(row)
                    parcel_rows.append((buyer, order_no, self.ids(), year, waybill_no, platform_id, payment_sender,
                                        logistics_sender, ordered_at, decision, reasons_text, "decided", value,
                                        duty, ctax, vat, duty + ctax + vat, counted_fen, after, stamp, None, None))
                sums = tally.get((decision, outcome.reasons))
                if sums is None:
                    sums = tally[(decision, outcome.reasons)] = [0, 0, 0, 0]
                sums[0] += 1
                sums[1] += duty
                sums[2] += ctax
                sums[3] += vat
                if self.results is not None:
                    self.results.write(_result_text(order_no, waybill_no, buyer, decision, reasons_text,
                                                    (value, duty, ctax, vat, duty + ctax + vat, after)))
            for (decision, reasons_of_parcel), (parcels, duty, ctax, vat) in tally.items():
                self.summary.count_decided(decision, self._reasons(reasons_of_parcel)[0],
                                           (duty, ctax, vat, duty + ctax + vat), parcels)
            with _timed(self.timing, f"store {index}"):
                if documents is not None:
                    documents.result()          # copied (or its error raised here)
                    copy_lines(conn, cbec_parcels, PARCEL_ASSESSED + PARCEL_DECIDED, parcel_lines)
                else:
                    self._store(conn, doc_rows)
                    insert_rows(conn, cbec_parcels, PARCEL_COLUMNS, parcel_rows, json_written=True)
                self._store_years(conn, counted, set(totals), now)
        if self.progress:
            self.progress("decided", len(entries))

    @staticmethod
    def _copy_documents(conn: Any, lines: dict[str, list[bytes]]) -> None:
        for char, kind_lines in lines.items():
            kind = CHAR_KIND[char]
            copy_lines(conn, TABLE_OF[kind], DOC_COLUMNS[kind], kind_lines)

    def _reasons(self, reasons: tuple[Reason, ...]) -> tuple[list[str], str, str]:
        """The codes of a parcel's reasons, their JSON text and that as a COPY text value, written
        once per distinct set."""
        known = self.reasons_text.get(reasons)
        if known is None:
            codes = [r.value for r in reasons]
            text = json.dumps(codes)
            known = self.reasons_text[reasons] = (codes, text, copy_line((text,))[:-1].decode())
        return known

    def _year_totals(self, conn: Any, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        totals: dict[tuple[str, int], int] = {}
        if not self.any_years:
            return totals
        buyers = sorted({b for b, _ in keys})
        wanted = set(keys)
        for chunk in _in_chunks(buyers):
            query = select(cbec_buyer_years.c.buyer_id_number, cbec_buyer_years.c.year, cbec_buyer_years.c.total_fen
                           ).where(cbec_buyer_years.c.buyer_id_number.in_(chunk))
            for buyer, year, total in conn.execute(self.uow.locking(query)):
                if (buyer, year) in wanted:
                    totals[(buyer, year)] = total
        return totals

    def _store_years(self, conn: Any, counted: dict[tuple[str, int], list[int]], known: set, now: datetime) -> None:
        if self.copy_text:
            stamp = self._time(now)
            copy_lines(conn, cbec_buyer_years, YEAR_COLUMNS, [copy_line((b, y, total, n, stamp))
                                                              for (b, y), (total, n) in counted.items()
                                                              if (b, y) not in known])
        else:
            fresh = [(b, y, total, n, now) for (b, y), (total, n) in counted.items() if (b, y) not in known]
            insert_rows(conn, cbec_buyer_years, YEAR_COLUMNS, fresh)
        changed = [{"b_buyer": b, "b_year": y, "b_total": total, "b_parcels": n}
                   for (b, y), (total, n) in counted.items() if (b, y) in known and n]
        if changed:
            years = cbec_buyer_years.c
            conn.execute(update(cbec_buyer_years).where(
                years.buyer_id_number == bindparam("b_buyer"), years.year == bindparam("b_year"))
                .values(total_fen=bindparam("b_total"), parcels=cbec_buyer_years.c.parcels + bindparam("b_parcels"),
                        updated_at=now), changed)

    # --- storing
    def _store(self, conn: Any, rows: dict[Kind, list[tuple]]) -> None:
        insert_rows(conn, cbec_orders, DOC_COLUMNS[Kind.ORDER], rows[Kind.ORDER], json_written=True)
        insert_rows(conn, cbec_payments, DOC_COLUMNS[Kind.PAYMENT], rows[Kind.PAYMENT], json_written=True)
        insert_rows(conn, cbec_waybills, DOC_COLUMNS[Kind.WAYBILL], rows[Kind.WAYBILL], json_written=True)

    def _write_result(self, result: dict) -> None:
        self.summary.count(result)
        if self.results is not None:
            self.results.write(json.dumps(result, ensure_ascii=False) + "\n")


def _order_no(docs: dict[Kind, list[_Doc]]) -> str:
    for kind in KINDS:
        if docs[kind]:
            return docs[kind][0].record.order_no
    raise AssertionError("an empty group")


def _duplicate(kind: Kind, number: str) -> Problem:
    name = NUMBER_FIELD[kind]
    return Problem(name, "duplicate", f"{name} {number} was already used for a different {kind.value}; "
                                      "the first one stands.")


def _second(kind: Kind, order_no: str) -> Problem:
    return Problem("order_no", "duplicate", f"Order {order_no} already has a {kind.value}; the first one stands.")


def _allow_open_files(count: int) -> None:
    """Pass 1 keeps 2 K temporary files open per worker, pass 2 K or BUYER_SPLIT K: raise the soft
    limit if need be."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _match_partitions(clearing: _Clearing, indices: Iterator[int] | range, losers: set[tuple[str, int]],
                      worker: int) -> None:
    work = clearing.work
    buyers = [open(work / f"b{worker}_{i}", "wb") for i in range(clearing.buyer_k)]  # noqa: SIM115 - closed below
    try:
        with open(work / f"bonded{worker}", "w", encoding="utf-8") as bonded:
            for i in indices:
                with _timed(clearing.timing, f"match {i}", worker):
                    clearing.match(i, losers, buyers, bonded)
    finally:
        for handle in buyers:
            handle.close()


def _numbers_in_processes(clearing: _Clearing, k: int, workers: int) -> set[tuple[str, int]]:
    """The numbers used twice (see _numbers_used_twice) looked for in `workers` forked processes,
    number partition i to worker i mod `workers`; each writes the lines it found to a file."""
    def find(worker: int) -> None:
        found = _numbers_used_twice(clearing.work, range(worker, k, workers))
        (clearing.work / f"losers{worker}").write_bytes(marshal.dumps(sorted(found)))
    _in_processes(clearing, workers, "numbers", find)
    losers: set[tuple[str, int]] = set()
    for worker in range(workers):
        path = clearing.work / f"losers{worker}"
        losers.update(marshal.loads(path.read_bytes()))
        path.unlink()
    return losers


def _largest_first(paths_of: Callable[[int], list[Path]], k: int) -> list[int]:
    """Partitions by their files' total size, the largest first: given out in this order, the
    last ones handed out are the short ones, and the workers finish about together."""
    sizes = {i: sum(path.stat().st_size for path in paths_of(i)) for i in range(k)}
    return sorted(range(k), key=lambda i: (-sizes[i], i))


def _taken(order: list[int], counter: Any) -> Iterator[int]:
    """The partitions this worker takes, one at a time as it is ready for the next: `counter` (a
    shared integer) says how many of `order` the workers have taken so far."""
    while True:
        with counter.get_lock():
            at = counter.value
            counter.value += 1
        if at >= len(order):
            return
        yield order[at]


def _match_in_processes(clearing: _Clearing, k: int, losers: set[tuple[str, int]], workers: int) -> None:
    """Pass 2 in `workers` forked processes, each taking the next order partition, the largest
    first, when it is done with one. Each has its own database connections, buyer files, results
    piece and summary, merged here."""
    order = _largest_first(lambda i: list(clearing.work.glob(f"o{i}_*")), k)
    counter = multiprocessing.get_context("fork").Value("l", 0)
    _in_processes(clearing, workers, "matched",
                  lambda worker: _match_partitions(clearing, _taken(order, counter), losers, worker))


def _decide_in_processes(clearing: _Clearing, k: int, workers: int) -> None:
    """Pass 3 the same way, with buyer partitions. Partitions share no buyer, so each worker
    decides and stores its own in their own transactions, as one process would."""
    order = _largest_first(lambda i: list(clearing.work.glob(f"b*_{i}")), k)
    counter = multiprocessing.get_context("fork").Value("l", 0)

    def decide(worker: int) -> None:
        for i in _taken(order, counter):
            with _timed(clearing.timing, f"decide {i}", worker):
                clearing.decide(i)
    _in_processes(clearing, workers, "decided", decide)


def _in_processes(clearing: _Clearing, workers: int, stage: str, job: Callable[[int], None]) -> None:
    """`job(worker)` in `workers` forked processes; their summaries merged and their results
    pieces appended here, in worker order."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    parent_results, parent_summary, parent_progress = clearing.results, clearing.summary, clearing.progress
    processes = []
    for worker in range(workers):
        process = context.Process(target=_worker, args=(clearing, worker, stage, job, queue))
        process.start()
        processes.append(process)
    finished, failed = 0, []
    while finished < workers:
        message = queue.get()
        if message[0] == "progress":
            if parent_progress:
                parent_progress(stage, message[1])
        else:
            finished += 1
            if message[0] == "failed":
                failed.append(Problem(f"worker {message[1]}", "worker_failed",
                                      f"Worker {message[1]} failed while {STAGE_NAMES[stage]}: {message[2]}. "
                                      + RUN_AGAIN))
            else:
                parent_summary.merge(message[1])
    for process in processes:
        process.join()
    if failed:
        raise ClearingFailed(failed)
    for worker in range(workers):
        piece = clearing.work / f"r{stage}{worker}"
        if parent_results is not None and piece.exists():
            with open(piece, encoding="utf-8") as lines:
                shutil.copyfileobj(lines, parent_results, 1 << 20)
        piece.unlink(missing_ok=True)


STAGE_NAMES = {"read": "reading the files", "numbers": "looking for numbers used twice", "matched": "matching",
               "decided": "deciding"}


class ClearingFailed(DomainError):
    """The batch stopped (the database went away, the disk filled): every failed worker is named,
    and the run may simply be repeated."""

    status = 503


RUN_AGAIN = "Run the same command again: what was stored stays, and nothing is stored twice."


def _worker(clearing: _Clearing, worker: int, stage: str, job: Callable[[int], None], queue: Any) -> None:
    try:
        clearing.uow.engine.dispose(close=False)        # the parent's connections stay the parent's
        clearing.uow = UnitOfWork(clearing.uow.engine)
        clearing.summary = ClearSummary(partitions=clearing.k)
        clearing.progress = lambda stage, count: queue.put(("progress", count))
        clearing.ids = _Ids()                           # ids of its own (see _Ids)
        with open(clearing.work / f"r{stage}{worker}", "w", encoding="utf-8") as piece:
            clearing.results = piece
            with _timed(clearing.timing, f"worker {stage}", worker):
                job(worker)
        queue.put(("done", clearing.summary))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises ClearingFailed
        queue.put(("failed", worker, repr(exc)))
        raise SystemExit(1) from None     # the parent tells; no traceback of the worker's beside it


def clear(uow: UnitOfWork, actor: Actor, orders: Path, payments: Path, waybills: Path,
          results: IO[str] | None = None, sampling: model.Sampling | None = None,
          partitions: int | None = None, progress: Progress | None = None,
          work_dir: Path | None = None, workers: int | None = None, timing: Path | None = None) -> ClearSummary:
    """Clear the parcels of three files (see the module's docstring). `partitions` fixes K
    (default: by the files' size) and `workers` the processes that match and assess partitions
    side by side, and then decide buyer partitions side by side (default: 2 on PostgreSQL, 1 on
    SQLite, whose writers queue anyway); results depend on neither. `timing` names a file to which
    each pass and each worker's steps append their wall and CPU seconds (see `_timed`)."""
    require(actor.is_(*service.BATCH_SENDERS), "role_not_allowed",
            "Batches are sent by platforms, payment and logistics companies, or an administrator.")
    try:
        return _clear(uow, actor, orders, payments, waybills, results, sampling, partitions, progress,
                      work_dir, workers, timing)
    except (OSError, DBAPIError) as exc:
        # In this process (one worker, or the parent's own steps): the same answer as a worker's.
        raise ClearingFailed([Problem("", "clearing_failed", f"The batch stopped: {exc!r}. {RUN_AGAIN}")]) from exc


def _clear(uow: UnitOfWork, actor: Actor, orders: Path, payments: Path, waybills: Path,
           results: IO[str] | None, sampling: model.Sampling | None, partitions: int | None,
           progress: Progress | None, work_dir: Path | None, workers: int | None,
           timing: Path | None) -> ClearSummary:
    paths = {Kind.ORDER: Path(orders), Kind.PAYMENT: Path(payments), Kind.WAYBILL: Path(waybills)}
    k = partitions or partition_count(sum(p.stat().st_size for p in paths.values()))
    summary = ClearSummary(partitions=k)
    sampling = sampling or service.DEFAULT_SAMPLING
    _allow_open_files(3 * k + 64)
    with cycle_collection_paused(), tempfile.TemporaryDirectory(prefix="cbec-clear-", dir=work_dir) as temp:
        work = Path(temp)
        clearing = _Clearing(uow, actor, sampling, summary, work, k, results, progress, timing)
        if workers is None:
            workers = 2 if uow.dialect == "postgresql" and (os.cpu_count() or 1) > 1 else 1
        with _timed(timing, "pass 1"):
            shares = _pieces(paths, workers)      # each file cut in `workers` pieces, one to each
            if workers == 1:
                _partition(shares[0], work, k, actor, summary, progress)
            else:
                _in_processes(clearing, workers, "read", lambda worker: _partition(
                    shares[worker], work, k, actor, clearing.summary, clearing.progress, worker))
        workers = max(1, min(workers, k))
        clearing.buyer_k = k if workers == 1 else BUYER_SPLIT * k
        with _timed(timing, "numbers used twice"):
            if workers == 1:
                losers = _numbers_used_twice(work, range(k))
            else:
                losers = _numbers_in_processes(clearing, k, workers)
        with _timed(timing, "pass 2"):
            if workers == 1:
                _match_partitions(clearing, range(k), losers, 0)
            else:
                _match_in_processes(clearing, k, losers, workers)
        with _timed(timing, "pass 3"):
            if workers == 1:
                for i in range(clearing.buyer_k):
                    clearing.decide(i)
            else:
                _decide_in_processes(clearing, clearing.buyer_k, workers)
        for path in sorted(work.glob("bonded*")):
            with open(path, encoding="utf-8") as bonded_orders:
                for line in bonded_orders:
                    row = service.decide_order(uow, line.strip(), sampling)
                    if row is not None:
                        clearing._write_result(service.result_line(row))
    with uow.transaction():
        done = summary.as_dict()
        uow.audit(actor, "ecommerce.batch_cleared", "cbec_batch", new_id(), None,
                  {k: done[k] for k in ("lines", "accepted", "repeated", "refused", "parcels_decided",
                                        "decisions", "taxes")})
    return summary
