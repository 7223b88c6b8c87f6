"""The unit of work: one transaction around one business action, so a change, its audit record
and its event are committed together or not at all."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import func, insert, select, text

from tradewindow.platform.db import UnitOfWork, make_engine, utcnow
from tradewindow.platform.errors import Conflict
from tradewindow.platform.ids import new_id
from tradewindow.platform.tables import jobs, outbox_events


def add_job(conn, dedup_key: str | None = None) -> str:
    job_id = new_id()
    conn.execute(insert(jobs).values(id=job_id, queue="test", payload={}, status="queued",
                                     dedup_key=dedup_key, attempts=0, max_attempts=1,
                                     run_after=utcnow(), created_at=utcnow()))
    return job_id


def job_count(uow) -> int:
    with uow.read() as conn:
        return conn.execute(select(func.count()).select_from(jobs)).scalar_one()


def test_a_committed_transaction_keeps_its_writes(uow):
    with uow.transaction() as conn:
        add_job(conn)
    assert job_count(uow) == 1


def test_a_nested_transaction_joins_the_outer_one(uow):
    with uow.transaction() as outer:
        add_job(outer)
        with uow.transaction() as inner:
            assert inner is outer
            add_job(inner)
        with uow.read() as reading:
            assert reading is outer
            assert reading.execute(select(func.count()).select_from(jobs)).scalar_one() == 2
    assert job_count(uow) == 2


def test_an_exception_rolls_back_the_outer_and_the_nested_writes(uow):
    with pytest.raises(ZeroDivisionError), uow.transaction() as outer:
        add_job(outer)
        with uow.transaction() as inner:
            add_job(inner)
            uow.emit("test.happened", "thing", "T1")
        1 / 0  # noqa: B018 - the business action fails after the nested service succeeded
    assert job_count(uow) == 0
    with uow.read() as conn:
        assert conn.execute(select(func.count()).select_from(outbox_events)).scalar_one() == 0


def test_an_exception_in_the_nested_transaction_rolls_back_everything(uow):
    with pytest.raises(KeyError), uow.transaction() as outer:
        add_job(outer)
        with uow.transaction():
            raise KeyError("nested service refused")
    assert job_count(uow) == 0


def test_the_unit_of_work_is_usable_again_after_a_failure(uow):
    with pytest.raises(RuntimeError), uow.transaction():
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="no transaction open"):
        uow.conn  # noqa: B018
    with uow.transaction() as conn:
        add_job(conn)
    assert job_count(uow) == 1


def test_a_unique_violation_becomes_a_duplicate_conflict_and_nothing_is_kept(uow):
    with uow.transaction() as conn:
        add_job(conn, dedup_key="LRN-1")
    with pytest.raises(Conflict) as refused, uow.transaction() as conn:
        add_job(conn, dedup_key="LRN-2")        # written first, then rolled back with the rest
        add_job(conn, dedup_key="LRN-1")
    assert refused.value.status == 409
    assert refused.value.code == "duplicate"
    assert [p.path for p in refused.value.problems] == [""]
    with uow.read() as conn:
        assert conn.execute(select(jobs.c.dedup_key)).scalars().all() == ["LRN-1"]


def test_writing_inside_a_read_only_unit_of_work_is_refused(uow):
    with uow.read(), pytest.raises(RuntimeError, match="read-only"), uow.transaction():
        pass


def test_there_is_no_connection_outside_a_transaction(uow):
    with pytest.raises(RuntimeError, match="no transaction open"):
        uow.conn  # noqa: B018


# --- SQLite, the embedded default ----------------------------------------------------------------

@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'pragmas.db'}")
    yield engine
    engine.dispose()


def test_sqlite_gets_wal_a_busy_timeout_and_foreign_keys(sqlite_engine):
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_sqlite_creates_the_directory_of_its_file(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'tw.db'}")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert (tmp_path / "new" / "dir" / "tw.db").exists()


def test_sqlite_enforces_foreign_keys(sqlite_engine):
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id TEXT PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT REFERENCES parent(id))")
    uow = UnitOfWork(sqlite_engine)
    with pytest.raises(Conflict), uow.transaction() as conn:
        conn.exec_driver_sql("INSERT INTO child VALUES ('c', 'no such parent')")


def test_a_sqlite_writer_takes_the_write_lock_when_it_begins(sqlite_engine, tmp_path):
    """BEGIN IMMEDIATE: a second writer waits at its start instead of failing half-way."""
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(tmp_path / "var" / "pragmas.db", timeout=0, isolation_level=None)
    try:
        # The writer has not written anything yet, and still the other writer cannot begin.
        with UnitOfWork(sqlite_engine).transaction(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        with UnitOfWork(sqlite_engine).read():             # readers do not block writers
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
