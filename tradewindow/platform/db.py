"""The database: one SQLAlchemy MetaData for every context's tables, the engine, and the unit of
work that every business action runs in.

SQLite (the embedded default) gets WAL, a busy timeout, foreign keys, and BEGIN IMMEDIATE for
writing transactions, so two writers queue up instead of failing half-way with "database is
locked". PostgreSQL is reached through psycopg 3 and gets row locks (FOR UPDATE) where the
services ask for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from pathlib import Path
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    cast,
    column,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    select,
    true,
    type_coerce,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.types import UserDefinedType

from tradewindow.platform import jsontext
from tradewindow.platform.errors import Conflict

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


def id_column_type() -> String:
    """Ids are ULIDs (see platform.ids)."""
    return String(26)


NAIVE_MESSAGE = "naive datetime given; use timezone-aware UTC"


class UtcDateTime(TypeDecorator):
    """Timestamps are stored in UTC and always come back timezone-aware, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(NAIVE_MESSAGE)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def refuse_naive_times(table: Table, columns: Sequence[str], rows: Sequence[Any], by_name: bool = False) -> None:
    """ValueError (as UtcDateTime's) when a row holds a time without its offset in one of `columns`
    that is a UtcDateTime: a datetime without tzinfo, or ISO 8601 text without an offset. The bulk
    paths (COPY, insert_together's JSON) send times as text, which PostgreSQL would read in the
    server's time zone: silently wrong. Rows are sequences of the values of `columns`, or
    dictionaries (`by_name`). Only those columns are looked at: a few hundred nanoseconds a row."""
    for i, name in enumerate(columns):
        if not isinstance(table.c[name].type, UtcDateTime):
            continue
        key = name if by_name else i
        for row in rows:
            value = row[key]
            if value is None:
                continue
            if type(value) is str:
                value = datetime.fromisoformat(value)   # text that is no time: ValueError, as on SQLite
            if value.tzinfo is None:
                raise ValueError(f"{NAIVE_MESSAGE} ({table.name}.{name}: {value})")


def Json() -> JSON:  # noqa: N802 - reads like a column type
    return JSON(none_as_null=True)


# The demo loader and tests can set the clock to lodge history "in the past" through the real
# services; everything that stamps a time or a business day reads it through utcnow().
_clock: ContextVar[datetime | None] = ContextVar("tradewindow_clock", default=None)


def utcnow() -> datetime:
    return _clock.get() or datetime.now(UTC)


def business_day(moment: datetime) -> date:
    """The zone's calendar day of a moment: acceptance days, working days and a buyer's year
    follow the zone (Asia/Shanghai by default), not the server (a UTC server is still on
    yesterday until 08:00 in Chongqing)."""
    from tradewindow.platform.settings import get_settings

    return moment.astimezone(ZoneInfo(get_settings().time_zone)).date()


def business_today() -> date:
    return business_day(utcnow())


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Run the block as if it were `moment` (timezone-aware)."""
    if moment.tzinfo is None:
        raise ValueError("clock_at needs a timezone-aware moment")
    token = _clock.set(moment)
    try:
        yield
    finally:
        _clock.reset(token)


# A pooled server connection idle for longer than this is checked (a SELECT 1) before it is used
# again, so one the server dropped meanwhile is replaced instead of failing a request. One in
# steady use is not checked: SQLAlchemy's pool_pre_ping would add a round trip to every checkout,
# three per lodged declaration. (A server restart under load fails the requests that are under way
# then; SQLAlchemy replaces the pool's connections on the first disconnection error.)
PING_AFTER_IDLE_SECONDS = 2.0


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # 20 connections stay open per process, enough for one server process's concurrent requests (a
    # lodging holds two at once). Those beyond are closed when returned, and each new one starts a
    # PostgreSQL server process: with 10, that churn doubled the database's CPU per lodgement.
    # Every execution planned for the tables as they are now: psycopg prepares a statement run five
    # times on a connection, and the server may then keep one generic plan, made while a table was
    # small. The zone's tables grow by the million in a day, between two ANALYZEs: the e-commerce
    # stream's look-up of decided orders kept a plan that read cbec_parcels whole, comparing each
    # row with a thousand order numbers, and its server CPU per parcel more than doubled as the
    # table grew. Planning costs tens of microseconds a statement; such a plan, seconds.
    engine = create_engine(url, pool_size=20, max_overflow=20, json_serializer=jsontext.stored,
                           connect_args={"options": "-c plan_cache_mode=force_custom_plan"})
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine.pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info["idle_since"] = monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                # The pool drops this connection and checks out another (a new one if need be).
                raise DisconnectionError("the idle connection is gone") from exc


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, json_serializer=jsontext.stored,
                           connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the write lock up front: a deferred transaction that reads and then
        # writes can fail with SQLITE_BUSY half-way; an immediate one waits its turn instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("writer", True) else "BEGIN")

    return engine


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


# What a taken key answers, whichever write found it: never the database's own detail, which names
# the key's value (a buyer's identity number, say).
DUPLICATE_MESSAGE = "This record already exists (a unique business number or reference is taken)."


class UnitOfWork:
    """One database transaction around one business action, with its audit records and outbox
    events written in the same transaction (so a change, its audit and its event are committed
    together or not at all).

    Nested `transaction()` calls join the outer one: a service that calls another context's
    service keeps a single transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._writing = False

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("no transaction open: use `with uow.transaction():` or `uow.read()`")
        return self._conn

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A writing transaction. Unique-constraint violations at commit become 409 `duplicate`."""
        if self._conn is not None:
            if not self._writing:
                raise RuntimeError("cannot write inside a read-only unit of work")
            yield self._conn
            return
        with self._open(writer=True) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn
            return
        with self._open(writer=False) as conn:
            yield conn

    @contextmanager
    def _open(self, writer: bool) -> Iterator[Connection]:
        conn = self.engine.connect()
        conn.info["writer"] = writer
        try:
            with conn.begin():
                self._conn, self._writing = conn, writer
                yield conn
        except IntegrityError as exc:
            raise Conflict(DUPLICATE_MESSAGE, "duplicate") from exc
        finally:
            self._conn, self._writing = None, False
            conn.close()

    def locking(self, query: Any, lock: bool = True) -> Any:
        """The query taking row locks (SELECT ... FOR UPDATE) on PostgreSQL, so that two writers
        of one row queue up; SQLite needs none, its writers are serialised by BEGIN IMMEDIATE."""
        return query.with_for_update() if lock and self.dialect == "postgresql" else query

    # Audit and outbox live in platform.audit / platform.outbox; these shortcuts keep service code
    # to one line per record.
    def audit(self, actor: Any, action: str, object_type: str, object_id: str,
              before: dict | None = None, after: dict | None = None) -> None:
        from tradewindow.platform.audit import record_audit

        record_audit(self.conn, actor, action, object_type, object_id, before, after)

    def emit(self, event_type: str, aggregate_type: str, aggregate_id: str,
             payload: dict | None = None, owner_enterprise_id: str | None = None) -> str:
        from tradewindow.platform.outbox import append_event

        return append_event(self.conn, event_type, aggregate_type, aggregate_id, payload or {},
                            owner_enterprise_id)


# --- several tables' new rows in one statement ---------------------------------------------------

Writes = Sequence[tuple[Table, Sequence[dict[str, Any]]]]

# The combined statements by shape (tables and their columns), built once each.
_combined: dict[tuple, Any] = {}
_COMBINED_KEPT = 200


def insert_together(conn: Connection, writes: Writes) -> None:
    """New rows for several tables (each table's rows with the same keys) written at once. On
    PostgreSQL one statement writes them all: each table's rows travel as one JSON array, which
    the server unpacks into rows of that table (json_populate_recordset) in a WITH clause of its
    own. On SQLite one statement per table, in the order given. Lodging a declaration, which
    writes it, its version, lines, lane decision, agency tasks, audit records and events, paid
    for a dozen statements before (each line one); now it pays for one, and the rows' values
    are converted by the server's C code instead of by Python per value.

    Foreign keys between the rows hold: PostgreSQL checks them once the statement is done. The
    values must be what the JSON writer and PostgreSQL's input functions agree on: strings,
    numbers, booleans, None, timezone-aware datetimes (a naive one is a ValueError, before
    anything is written), dates, decimals, and JSON documents for JSON columns (not bytes)."""
    writes = [(table, rows) for table, rows in writes if rows]
    for table, rows in writes:          # all refused before any is written, on both databases
        refuse_naive_times(table, tuple(rows[0]), rows, by_name=True)
    if conn.dialect.name != "postgresql":
        for table, rows in writes:
            conn.execute(insert(table), list(rows))
        return
    shape = tuple((table.name, tuple(rows[0])) for table, rows in writes)
    statement = _combined.get(shape)
    if statement is None:
        if len(_combined) >= _COMBINED_KEPT:
            _combined.clear()
        statement = _combined[shape] = _combined_insert(writes)
    conn.execute(statement, {f"rows_{t}": list(rows) for t, (_, rows) in enumerate(writes)})


def _combined_insert(writes: Writes) -> Any:
    parts = []
    for t, (table, rows) in enumerate(writes):
        columns = tuple(rows[0])
        # The table's own row type gives each value its column's type.
        source = func.json_populate_recordset(literal_column(f"NULL::{table.name}"),
                                              bindparam(f"rows_{t}", type_=JSON())).table_valued(*columns)
        parts.append(insert(table).from_select(columns, select(*(source.c[c] for c in columns)))
                     .cte(f"write_{t}"))
    return select(literal_column("1")).add_cte(*parts)


# --- the rows whose indexed key is one of many values --------------------------------------------

# Values per statement on SQLite (an IN list of bound values each).
KEYS_PER_STATEMENT = 500


class _JsonReadFromText(UserDefinedType):
    """A JSON column read back as its text and parsed by orjson (`jsontext.read`): psycopg parses
    JSON with the standard library, several times slower. Its own result processor, not a
    TypeDecorator's (which calls two functions a value); a user-defined type, which no dialect
    replaces by its own (as psycopg's replaces a String)."""

    cache_ok = True

    def get_col_spec(self) -> str:
        return "TEXT"

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        read = jsontext.read
        return lambda value: None if value is None else read(value.encode())


class _TextArrayLiteral(UserDefinedType):
    """A text[] parameter sent as the text of its literal (`bulk.array_text`), cast by the server
    straight to text[] (`%(keys)s::TEXT[]`; a String's parameter cast to text[] went through
    varchar first)."""

    cache_ok = True
    render_bind_cast = True

    def get_col_spec(self) -> str:
        return "TEXT[]"


# PostgreSQL's look-ups without further conditions by shape (source, key, columns, probe), built
# once each: building and keying the statement cost more than running it for a few values.
_keyed: dict[tuple, Any] = {}
_KEYED_KEPT = 200


def rows_keyed_by(conn: Connection, source: Any, key: Any, values: Iterable[str], *columns: Any,
                  where: Sequence[Any] = (), probe: bool = True) -> Iterator[Row]:
    """The rows of `source` (a table, or tables joined) whose `key` (an indexed text column) is
    one of `values` and that meet every condition of `where`: `columns` of each (all of a table's
    when none are named), as rows with those columns' names. Each row comes once however often
    its key is given (values are taken once each); in no particular order. The one way any
    context reads by many keys at once; why it is written so:

    On PostgreSQL each distinct value is its own index probe, whatever the planner estimates. The
    values travel as ONE parameter, the text of a text[] literal (`bulk.array_text`: psycopg
    adapts a list element by element in Python, and the server parses the literal in a fifth of
    the time it takes to unpack the same as JSON), which the server unpacks (unnest). By a key
    no two rows share (the table's own primary key or a unique column), each value is joined to
    a sub-select of its own that stops at its row (LATERAL ... LIMIT 1, which the planner cannot
    flatten into a join): the e-commerce stream's look-ups, measured so. By any other key (many
    rows each: containment by parent), `key = ANY(ARRAY(SELECT unnest(...)))`: an array a
    sub-select makes is one the planner cannot count (it assumes a few values), so it takes the
    index, whose scan descends once per value (sorted, each once); a sub-select per value without
    a LIMIT costs the server half as much again (13,000 EPCs of a table of 300,000 rows: ~127
    against ~73 ms), the ANY form on the e-commerce look-ups ~10 % more server CPU per parcel
    (20,000 parcels, busy machine). Two spellings measured far worse, because the planner read or
    hashed whole tables: `key = ANY(array literal)` (it knows the count: for a few hundred values
    it read a document table whole as long as it held less than some tens of thousands of rows,
    so each e-commerce stream batch cost in proportion to everything stored before; server CPU 200
    -> 92 us/parcel once probed per value), and `key IN (SELECT unnest(...))` (taken as a set of
    100 values: once containment was large and analysed, every EPCIS document hashed the whole
    table; 300,000 events, server CPU 181 -> 125 us/event once probed). tests/platform/
    test_keyed_by.py EXPLAINs both statements on a small analysed table so that neither plan comes
    back unnoticed. Neither shape survives a generic plan made while a table was small (psycopg
    prepares what runs five times): `make_engine`'s connections plan every execution afresh.

    `probe=False` is for a small table looked up by very many values (equipment by every EPC a
    document names): `key IN (SELECT unnest(...))`, which the server may answer by hashing the
    values and reading the table once, cheaper than ten thousand probes.

    JSON columns (of the database's own JSON type) are read back as text and parsed by orjson.
    Elsewhere (SQLite) `key IN (...)` by KEYS_PER_STATEMENT sorted values a statement."""
    from tradewindow.platform.bulk import array_text  # bulk imports this module

    if not columns:
        columns = tuple(source.c)
    if conn.dialect.name != "postgresql":
        distinct = sorted(set(values))
        query = select(*columns).select_from(source)
        for start in range(0, len(distinct), KEYS_PER_STATEMENT):
            yield from conn.execute(query.where(key.in_(distinct[start:start + KEYS_PER_STATEMENT]), *where))
        return
    each_once = probe and _unique(source, key)
    listed = list(dict.fromkeys(values) if each_once else values)   # ANY and IN take each value once
    if not listed:
        return
    shape = (source, key, columns, probe)
    statement = None if where else _keyed.get(shape)
    if statement is None:
        statement = _keyed_statement(conn, source, key, columns, where, probe, each_once)
        if not where:
            if len(_keyed) >= _KEYED_KEPT:
                _keyed.clear()
            _keyed[shape] = statement
    yield from conn.execute(statement, {"keys": array_text(listed)})


def _keyed_statement(conn: Connection, source: Any, key: Any, columns: Sequence[Any], where: Sequence[Any],
                     probe: bool, each_once: bool) -> Any:
    """`rows_keyed_by`'s statement on PostgreSQL, the values' literal its parameter "keys"."""
    selected = [type_coerce(cast(c, Text), _JsonReadFromText()).label(c.name)
                if isinstance(c.type.dialect_impl(conn.dialect), JSON) else c for c in columns]
    values = bindparam("keys", type_=_TextArrayLiteral())
    if each_once:
        listed = func.unnest(values).table_valued(column("v", Text)).render_derived(name="k")
        each = select(*selected).select_from(source).where(key == listed.c.v, *where).limit(1).lateral("t")
        return select(*each.c).select_from(listed.join(each, true()))
    unpacked = select(func.unnest(values))
    among = key == func.any(func.array(unpacked.scalar_subquery())) if probe else key.in_(unpacked)
    return select(*selected).select_from(source).where(among, *where)


def _unique(source: Any, key: Any) -> bool:
    """`key` is a column of the table `source` that no two of its rows share."""
    if source is not getattr(key, "table", None):
        return False
    if key.unique or (key.primary_key and len(source.primary_key.columns) == 1):
        return True
    return any(index.unique and list(index.columns) == [key] for index in source.indexes) or any(
        isinstance(constraint, UniqueConstraint) and list(constraint.columns) == [key]
        for constraint in source.constraints)
