"""Helpers for the bulk paths (EPCIS capture, e-commerce batches and stream batches)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.dialects.postgresql import ARRAY

from tradewindow.platform import jsontext
from tradewindow.platform.db import DUPLICATE_MESSAGE, NAIVE_MESSAGE, refuse_naive_times
from tradewindow.platform.errors import Conflict

# From this many rows on, a COPY beats one INSERT statement per row (executemany) on PostgreSQL.
BULK_ROWS = 20


# What makes an element of a PostgreSQL array literal need quotes, besides a comma (counted), NULL
# and the empty string (shorter than any that goes unquoted): braces, quotes, backslashes and the
# white space the server skips around elements.
_QUOTED_IN_ARRAYS = tuple('{}"\\ \t\n\r\v\f')


def array_text(values: Sequence[str]) -> str:
    """A list of strings as a PostgreSQL array literal, for COPY and for look-ups that send a long
    list as one parameter: EPCs and identity numbers need no quotes, which a few scans of the
    joined text in C show (a regular expression took ~6 ms for 13,000 EPCs, this ~0.5 ms; psycopg's
    list dumper searches each element in Python); anything else is quoted element by element."""
    joined = ",".join(values)
    if (values and min(map(len, values)) > 4 and joined.count(",") == len(values) - 1
            and not any(special in joined for special in _QUOTED_IN_ARRAYS)):
        return "{" + joined + "}"
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                json_written: bool = False) -> None:
    """Insert many rows of `table`, each a sequence of the values of `columns`, as an INSERT would
    store them: by COPY on PostgreSQL (a fraction of an INSERT's cost per row), elsewhere one
    INSERT executed for all rows (executemany) with the columns' own conversions. JSON columns
    take JSON values, or `JsonText`, or text already written as JSON for all when `json_written`;
    PostgreSQL arrays of text take lists of strings;
    date-times are timezone-aware datetimes or ISO 8601 text with its offset (anything else a
    ValueError, as UtcDateTime's, before anything is written). A row whose key is taken is a
    Conflict ("duplicate"), as an INSERT's (the unit of work's on SQLite)."""
    if not rows:
        return
    names = ", ".join(columns)
    is_json = [isinstance(table.c[name].type.dialect_impl(conn.dialect), JSON) for name in columns]
    if conn.dialect.name == "postgresql":
        encode = [] if json_written else [(i, jsontext.stored) for i, flag in enumerate(is_json) if flag]
        encode += [(i, array_text) for i, name in enumerate(columns)
                   if isinstance(table.c[name].type.dialect_impl(conn.dialect), ARRAY)]
        refuse_naive_times(table, columns, rows)    # COPY would read them in the server's time zone
        _copy(conn, table, names, rows, encode)
        return
    convert = [(i, f) for i, f in enumerate(None if flag and json_written else _bind(table.c[name].type, conn, flag)
                                            for name, flag in zip(columns, is_json, strict=True)) if f is not None]
    prepared = rows
    if convert:
        prepared = []
        for row in rows:
            values = list(row)
            for i, f in convert:
                values[i] = f(values[i])
            prepared.append(tuple(values))
    marks = ", ".join("?" if conn.dialect.paramstyle == "qmark" else "%s" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", prepared)


def insert_records(conn: Connection, table: Table, records: Sequence[dict]) -> None:
    """Rows given as dictionaries with the same keys: many at once by `insert_rows` (one COPY on
    PostgreSQL), a few by one INSERT statement."""
    if len(records) >= BULK_ROWS:
        columns = tuple(records[0])
        insert_rows(conn, table, columns, [tuple(r[c] for c in columns) for r in records])
    elif records:
        conn.execute(table.insert(), list(records))


def _copy(conn: Connection, table: Table, names: str, rows: Sequence[Sequence[Any]],
          encode: list[tuple[int, Callable[[Any], str]]]) -> None:
    import psycopg  # only where PostgreSQL is used

    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            write = copy.write_row
            if not encode:
                for row in rows:
                    write(row)
                return
            for row in rows:
                values = list(row)
                for i, text in encode:
                    if values[i] is not None:
                        values[i] = text(values[i])
                write(values)
    except psycopg.errors.IntegrityError as exc:      # as the unit of work answers an INSERT's
        raise Conflict(DUPLICATE_MESSAGE, "duplicate") from exc


def copy_line(values: Sequence[str | int | None]) -> bytes:
    """One row in the text format of PostgreSQL's COPY, encoded: exactly what psycopg's `write_row`
    sends for it, written by psycopg's own row formatter (in C: a fraction of the cost of writing
    it in Python): the values' text separated by tabs, `\\N` for None, backslashes, tabs, newlines
    and carriage returns in a value escaped, and the line's newline. Values are text (JSON as its
    text, a time as ISO 8601 text with its offset), integers or None: for a caller that writes
    rows long before it copies them (`copy_lines`), so that the COPY only joins and sends them.
    A datetime is written with its offset; a naive one is a ValueError, as UtcDateTime's (COPY
    would read it in the server's time zone). Text is the caller's to get right: a line knows no
    column types."""
    if _row_text is None:
        _load_row_text()
    line = bytearray()
    _row_text(values, _dumpers, line)   # type: ignore[misc]
    return bytes(line)


_row_text: Callable[[Sequence[Any], Any, bytearray], None] | None = None     # psycopg's formatter
_dumpers: Any = None            # its value dumpers (text, integers, None), as a connection's COPY has


def _load_row_text() -> None:
    global _row_text, _dumpers
    from psycopg import postgres
    from psycopg._copy_base import format_row_text  # write_row's; only where PostgreSQL is used
    from psycopg.adapt import AdaptersMap, Transformer
    from psycopg.types.datetime import DatetimeDumper

    class AwareDatetimeDumper(DatetimeDumper):
        """psycopg's, which writes a naive datetime as a `timestamp` (read in the server's time
        zone); asked only for naive ones (`upgrade`), so text and numbers pay nothing for it."""

        def upgrade(self, obj: datetime, format: Any) -> Any:
            if obj.tzinfo is None:
                raise ValueError(NAIVE_MESSAGE)
            return self

    adapters = AdaptersMap(postgres.adapters)
    adapters.register_dumper(datetime, AwareDatetimeDumper)
    _row_text, _dumpers = format_row_text, Transformer(adapters)


def insert_text_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Rows of `table` given as tuples of `columns`' values in their stored text (times as ISO 8601
    text with the offset, JSON as its text), integers or None, as a stream batch writes thousands:
    one COPY of `copy_line`s on PostgreSQL (no value converted per row: psycopg's conversion of
    datetimes and dictionaries was most of a stream worker's cost of writing), `insert_rows`
    elsewhere."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        copy_lines(conn, table, columns, [copy_line(row) for row in rows])
    else:
        insert_rows(conn, table, columns, rows, json_written=True)


def copy_lines(conn: Connection, table: Table, columns: Sequence[str], lines: Sequence[bytes]) -> None:
    """Rows of `table` written by `copy_line` (values of `columns`), stored by one COPY
    (PostgreSQL only) as they are; a taken key is a Conflict, as for `insert_rows`."""
    if not lines:
        return
    import psycopg  # only where PostgreSQL is used

    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(b"".join(lines))
    except psycopg.errors.IntegrityError as exc:      # as the unit of work answers an INSERT's
        raise Conflict(DUPLICATE_MESSAGE, "duplicate") from exc


def _bind(column_type: Any, conn: Connection, is_json: bool) -> Callable[[Any], Any] | None:
    """The column's conversion of a value to bind on this database (text of a date-time as COPY
    takes it, read first)."""
    convert = column_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    if convert is None or is_json:
        return convert
    try:
        takes_datetime = getattr(column_type, "impl_instance", column_type).python_type is datetime
    except NotImplementedError:
        takes_datetime = False
    if takes_datetime:
        return lambda value: convert(datetime.fromisoformat(value) if type(value) is str else value)
    return convert


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """A bulk run makes hundreds of thousands of small objects (records, facts, rows) that form no
    reference cycles: the cyclic garbage collector would walk the live ones again every few hundred
    allocations, up to a third of the run's CPU. Reference counting frees everything meanwhile; the
    collector resumes when the run is done. Nested use leaves it to the outermost."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
