"""platform.bulk.insert_rows: many rows stored as INSERTs would store them (COPY on PostgreSQL,
executemany elsewhere), read back equal on both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tradewindow.platform.bulk import BULK_ROWS, array_text, copy_line, copy_lines, insert_records, insert_rows
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import Conflict
from tradewindow.platform.jsontext import JsonText
from tradewindow.platform.tables import audit_log

COLUMNS = ("id", "at", "actor_user_id", "actor_name", "action", "object_type", "object_id", "before", "after")
SHANGHAI = timezone(timedelta(hours=8))


def test_rows_come_back_as_given_whatever_form_their_times_and_json_take(db):
    at = datetime(2026, 11, 11, 0, 5, 1, 123456, tzinfo=SHANGHAI)
    rows = [("A1", at, None, "system", "x.done", "thing", "1", {"n": 1, "text": "雪\t\\ \n"}, None),
            ("A2", at.isoformat(), "U1", "alice", "x.done", "thing", "2", None, JsonText('{"b": [1, 2]}'))]
    with UnitOfWork(db).transaction() as conn:
        insert_rows(conn, audit_log, COLUMNS, rows)
    with db.connect() as conn:
        stored = {r.id: r for r in conn.execute(select(audit_log).where(audit_log.c.id.in_(["A1", "A2"])))}
    assert stored["A1"].at == stored["A2"].at == at.astimezone(UTC)
    assert stored["A1"].before == {"n": 1, "text": "雪\t\\ \n"} and stored["A1"].after is None
    assert stored["A2"].before is None and stored["A2"].after == {"b": [1, 2]}
    assert stored["A2"].actor_user_id == "U1"


def test_json_written_takes_every_json_value_as_text(db):
    with UnitOfWork(db).transaction() as conn:
        insert_rows(conn, audit_log, COLUMNS, [("J1", datetime.now(UTC), None, "s", "a", "t", "1", '["r"]', None)],
                    json_written=True)
    with db.connect() as conn:
        assert conn.execute(select(audit_log.c.before).where(audit_log.c.id == "J1")).scalar_one() == ["r"]


def test_a_taken_key_is_a_conflict_and_nothing_of_the_call_is_stored(db):
    row = ("D1", datetime.now(UTC), None, "s", "a", "t", "1", None, None)
    with UnitOfWork(db).transaction() as conn:
        insert_rows(conn, audit_log, COLUMNS, [row])
    with pytest.raises(Conflict) as refused, UnitOfWork(db).transaction() as conn:
        insert_rows(conn, audit_log, COLUMNS, [("D2", *row[1:]), row])
    assert refused.value.code == "duplicate"
    with db.connect() as conn:
        assert conn.execute(select(audit_log.c.id).where(audit_log.c.id.in_(["D1", "D2"]))).scalars().all() == ["D1"]


@pytest.mark.parametrize("count", [1, BULK_ROWS], ids=["a few by INSERT", "many by COPY"])
def test_json_text_is_stored_as_the_value_it_spells_however_many_rows(db, count):
    records = [{"id": f"T{n}", "at": datetime.now(UTC), "actor_user_id": None, "actor_name": "s", "action": "a",
                "object_type": "t", "object_id": str(n), "before": JsonText('{"b": [1, 2]}'), "after": None}
               for n in range(count)]
    with UnitOfWork(db).transaction() as conn:
        insert_records(conn, audit_log, records)
    with db.connect() as conn:
        stored = conn.execute(select(audit_log.c.before).where(audit_log.c.id.like("T%"))).scalars().all()
    assert stored == [{"b": [1, 2]}] * count


NAIVE = datetime(2026, 11, 11, 0, 5, 1)


@pytest.mark.parametrize("at", [NAIVE, NAIVE.isoformat()], ids=["datetime", "ISO text"])
def test_a_time_without_its_offset_is_refused_before_anything_is_written(db, at):
    """PostgreSQL would read it in the server's time zone (COPY into timestamptz): silently wrong.
    Refused as the UtcDateTime column refuses it on the ordinary path, before the COPY starts, so
    the transaction goes on."""
    aware = ("N1", datetime.now(UTC), None, "s", "a", "t", "1", None, None)
    with UnitOfWork(db).transaction() as conn:
        with pytest.raises(ValueError, match="naive datetime given; use timezone-aware UTC"):
            insert_rows(conn, audit_log, COLUMNS, [aware, ("N2", at, *aware[2:])])
        insert_rows(conn, audit_log, COLUMNS, [("N3", *aware[1:])])
    with db.connect() as conn:
        assert conn.execute(select(audit_log.c.id).where(audit_log.c.id.like("N%"))).scalars().all() == ["N3"]


def test_copy_line_refuses_a_naive_datetime_and_writes_an_aware_one():
    with pytest.raises(ValueError, match="naive datetime given; use timezone-aware UTC"):
        copy_line(("X", NAIVE, None))
    at = NAIVE.replace(tzinfo=SHANGHAI)
    assert copy_line(("X", at, None)) == f"X\t{at}\t\\N\n".encode()


# Any text PostgreSQL stores (no NUL character): backslashes, tabs, newlines, carriage returns, "\\N".
TEXT = st.one_of(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=26),
                 st.sampled_from(["\\N", "\\", "a\tb", "\r\n", "\\t", "雪", "\x0b\x0c\x08"]))
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)
TIMES = st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1),
                     timezones=st.sampled_from([UTC, SHANGHAI, timezone(timedelta(hours=-5, minutes=-30))]))


@pytest.mark.postgres   # COPY text lines are PostgreSQL's
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.one_of(st.none(), TEXT), min_size=4, max_size=4), at=TIMES,   # 26 characters: the id's
       before=st.one_of(st.none(), JSON), after=st.one_of(st.none(), JSON))
def test_a_row_written_by_copy_line_is_stored_as_psycopgs_write_row_stores_it(db, texts, at, before, after):
    actor_user_id, actor_name, object_type, object_id = texts
    values = (at.isoformat(), actor_user_id, actor_name or "", "x.done", object_type or "", object_id or "",
              None if before is None else orjson_text(before), None if after is None else orjson_text(after))
    with UnitOfWork(db).transaction() as conn:
        insert_rows(conn, audit_log, COLUMNS, [("ROW", *values)], json_written=True)   # psycopg's write_row
        copy_lines(conn, audit_log, COLUMNS, [copy_line(("LINE", *values))])
    with UnitOfWork(db).transaction() as conn:
        stored = {r.id: r for r in conn.execute(select(audit_log).where(audit_log.c.id.in_(["ROW", "LINE"])))}
        conn.execute(audit_log.delete().where(audit_log.c.id.in_(["ROW", "LINE"])))
    assert stored["LINE"]._asdict() | {"id": "ROW"} == stored["ROW"]._asdict()
    assert stored["LINE"].before == before and stored["LINE"].at == at


def orjson_text(value: object) -> str:
    return orjson.dumps(value).decode()


@given(values=st.lists(st.one_of(st.none(), TEXT, st.integers()), min_size=1, max_size=6))
def test_copy_line_escapes_what_copy_reads_as_separators(values):
    """COPY's text format, as PostgreSQL reads it back (backslash sequences, `\\N`)."""
    line = copy_line(values).decode()
    assert line.endswith("\n") and line.count("\n") == 1 and line.count("\t") == len(values) - 1
    unescape = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r", "\\b": "\b", "\\f": "\f", "\\v": "\v"}
    read = [None if field == "\\N" else re.sub(r"\\[\\tnrbfv]", lambda m: unescape[m[0]], field)
            for field in line[:-1].split("\t")]
    assert read == [None if v is None else str(v) for v in values]


@pytest.mark.postgres   # array literals are PostgreSQL's
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12),
                          st.sampled_from(["NULL", "nUll", "null ", "urn:epc:id:sgtin:1.2.3", "a,b", "{x}",
                                           "ur n:x", 'q"uote', "back\\slash", "", " lead", "tab\tbed"])),
                max_size=8))
def test_postgresql_reads_an_array_text_back_as_the_same_strings(db, values):
    with db.connect() as conn:
        assert conn.exec_driver_sql("SELECT %s::text[]", (array_text(values),)).scalar_one() == values
