"""platform.db.rows_keyed_by: the rows whose indexed key is one of many values, each row once, on
both databases; on PostgreSQL every value its own index probe, whatever the planner estimates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Column, Engine, Index, Integer, MetaData, String, Table, Text, event, insert, text

from tradewindow.platform.db import KEYS_PER_STATEMENT, UnitOfWork, rows_keyed_by

# A table of the test's own: a unique key, a key many rows share (compared byte by byte on
# PostgreSQL, as logistics' EPCs), a number and a JSON document.
_own = MetaData()
things = Table(
    "test_keyed_things", _own,
    Column("key", Text, primary_key=True),
    Column("shared", Text().with_variant(Text(collation="C"), "postgresql"), nullable=False),
    Column("n", Integer, nullable=False),
    Column("doc", JSON(none_as_null=True)),
    Index("ix_test_keyed_things_shared", "shared"),
)
marks = Table(
    "test_keyed_marks", _own,
    Column("key", String(50), primary_key=True),
    Column("mark", Text, nullable=False),
)


@pytest.fixture
def tables(db: Engine) -> Iterator[Engine]:
    _own.drop_all(db)
    _own.create_all(db)
    yield db
    _own.drop_all(db)


def _store(engine: Engine, rows: list[dict]) -> None:
    with UnitOfWork(engine).transaction() as conn:
        conn.execute(things.delete())
        if rows:
            conn.execute(insert(things), rows)


def _keyed(engine: Engine, *args, **kwargs) -> list:
    with engine.connect() as conn:
        return list(rows_keyed_by(conn, *args, **kwargs))


def test_each_row_whose_key_is_given_comes_once_with_its_columns_by_name(tables):
    _store(tables, [{"key": f"K{n}", "shared": f"S{n % 3}", "n": n, "doc": {"n": [n, "雪"]}} for n in range(10)])
    found = _keyed(tables, things, things.c.key, ["K1", "K7", "K1", "nothing", "K7"], things.c.key, things.c.doc)
    assert sorted((row.key, row.doc) for row in found) == [("K1", {"n": [1, "雪"]}), ("K7", {"n": [7, "雪"]})]
    # A key many rows share: all of them, and only those meeting the further conditions.
    found = _keyed(tables, things, things.c.shared, ["S1", "S2", "S1"], things.c.n, where=[things.c.n > 2])
    assert sorted(row.n for row in found) == [4, 5, 7, 8]
    # Every column of the table when none is named; a JSON null comes back as None.
    _store(tables, [{"key": "A", "shared": "S", "n": 1, "doc": None}])
    (row,) = _keyed(tables, things, things.c.key, ["A"])
    assert tuple(row) == ("A", "S", 1, None)


def test_no_values_read_nothing(tables):
    _store(tables, [{"key": "A", "shared": "S", "n": 1, "doc": None}])
    assert _keyed(tables, things, things.c.key, []) == []
    assert _keyed(tables, things, things.c.key, iter(())) == []


def test_more_values_than_one_statement_takes_on_sqlite_all_come(tables):
    count = KEYS_PER_STATEMENT * 2 + 7
    _store(tables, [{"key": f"K{n:05}", "shared": "S", "n": n, "doc": None} for n in range(count)])
    found = _keyed(tables, things, things.c.key, (f"K{n:05}" for n in reversed(range(count))), things.c.n)
    assert sorted(row.n for row in found) == list(range(count))


@pytest.mark.parametrize("probe", [True, False], ids=["probed", "hashed"])
def test_tables_joined_are_read_the_same_way(tables, probe):
    _store(tables, [{"key": f"K{n}", "shared": "S", "n": n, "doc": {"n": n}} for n in range(5)])
    with UnitOfWork(tables).transaction() as conn:
        conn.execute(insert(marks), [{"key": "K1", "mark": "one"}, {"key": "K3", "mark": "three"}])
    joined = things.join(marks, marks.c.key == things.c.key)
    found = _keyed(tables, joined, things.c.key, ["K1", "K2", "K3", "K3"], things.c.n, marks.c.mark,
                   things.c.doc.label("document"), probe=probe)
    assert sorted((row.n, row.mark, row.document) for row in found) == [(1, "one", {"n": 1}), (3, "three", {"n": 3})]


# Any text PostgreSQL stores (no NUL), with what an array literal must quote or escape: quotes,
# commas, backslashes, braces, blanks, the empty string and NULL spelt in any case.
KEYS = st.one_of(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12),
                 st.sampled_from(["", "NULL", "null", "Null", " ", '"', "\\", ",", "{}", "a,b", 'x"y', "\\N",
                                  "{NULL}", " NULL ", "a b", "\t", "雪"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=st.lists(KEYS, max_size=12, unique=True), asked=st.lists(KEYS, max_size=20), probe=st.booleans())
def test_any_values_find_exactly_the_rows_with_those_keys(tables, stored, asked, probe):
    _store(tables, [{"key": k, "shared": k, "n": n, "doc": {"k": k}} for n, k in enumerate(stored)])
    found = _keyed(tables, things, things.c.key, asked, things.c.key, things.c.doc, probe=probe)
    assert sorted(row.key for row in found) == sorted(set(stored) & set(asked))
    assert all(row.doc == {"k": row.key} for row in found)
    shared = _keyed(tables, things, things.c.shared, asked, things.c.key, probe=probe)
    assert sorted(row.key for row in shared) == sorted(set(stored) & set(asked))


@pytest.mark.postgres   # the planner is PostgreSQL's
@pytest.mark.parametrize("column", ["key", "shared"], ids=["unique key", "shared key, byte-wise"])
def test_each_value_is_an_index_probe_even_on_a_small_analysed_table(tables, column):
    """The regressions this guards: for a few hundred values the planner read (or hashed) a table
    of some thousands of rows whole, and kept doing so as it grew."""
    _store(tables, [{"key": f"K{n:05}", "shared": f"S{n:05}", "n": n, "doc": {"n": n}} for n in range(3000)])
    with tables.begin() as conn:
        conn.execute(text("ANALYZE test_keyed_things"))
    prefix = "K" if column == "key" else "S"
    values = [f"{prefix}{n:05}" for n in range(0, 3000, 7)]        # 429 values
    ran: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        ran.append((statement, parameters))

    with tables.connect() as conn:
        event.listen(conn, "before_cursor_execute", seen)
        found = list(rows_keyed_by(conn, things, things.c[column], values, things.c.n, things.c.doc,
                                   where=[things.c.n >= 0]))
        event.remove(conn, "before_cursor_execute", seen)
        assert sorted(row.n for row in found) == list(range(0, 3000, 7))
        ((statement, parameters),) = ran
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())
    assert "Index Scan" in plan or "Index Only Scan" in plan, plan
    assert "Seq Scan on test_keyed_things" not in plan and "Hash" not in plan, plan


@pytest.mark.postgres   # psycopg's prepared statements and the server's plan cache
def test_a_look_up_run_again_and_again_is_planned_for_the_table_as_it_is_now(tables):
    """The regression this guards: psycopg prepares a statement run five times on a connection,
    and the server then kept a generic plan made while the table was small (read it whole,
    comparing each row with every value), long after it had grown."""
    _store(tables, [{"key": f"K{n:05}", "shared": f"S{n:05}", "n": n} for n in range(20)])
    with tables.begin() as conn:
        conn.execute(text("ANALYZE test_keyed_things"))
    values = [f"S{n:05}" for n in range(0, 20_000, 50)]
    with tables.connect() as conn:
        for _ in range(15):   # prepared at the 5th; the server weighs a generic plan from the 6th after
            list(rows_keyed_by(conn, things, things.c.shared, values, things.c.n))
        conn.execute(insert(things), [{"key": f"K{n:05}", "shared": f"S{n:05}", "n": n} for n in range(20, 20_000)])
        found = list(rows_keyed_by(conn, things, things.c.shared, values, things.c.n))
        plans = conn.execute(text("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                                  "WHERE statement LIKE '%test_keyed_things%' AND statement LIKE '%unnest%'")).all()
        conn.rollback()
    assert sorted(row.n for row in found) == list(range(0, 20_000, 50))
    assert plans, "psycopg prepares a statement it runs this often"
    assert all(generic == 0 and custom >= 1 for generic, custom in plans), plans
