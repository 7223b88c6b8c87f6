"""Contract of the job queue (platform.jobs.JobQueue), run against DatabaseJobQueue on SQLite and
PostgreSQL and against JetStreamJobQueue on a real nats-server (tests/support/nats.py): the
`queue` fixture is both. Tests of what only the database queue has — its stored rows, joining the
caller's transaction, an operator's retry_dead, a "done" count, back-off skipped by rewriting
run_after — take `db_queue` (or build a DatabaseJobQueue) and are database-only by construction.
And the worker that runs the jobs, on either queue."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from tradewindow.platform import jobs as jobs_module
from tradewindow.platform.db import UnitOfWork, utcnow
from tradewindow.platform.jobs import (
    DEAD,
    DONE,
    QUEUED,
    RUNNING,
    DatabaseJobQueue,
    JobQueue,
    backoff,
    handles,
    job_queue,
)
from tradewindow.platform.nats_queue import JetStreamJobQueue
from tradewindow.platform.settings import Settings
from tradewindow.platform.tables import jobs
from tradewindow.platform.worker import Worker


def make_nats_queue(nats_server, lease: timedelta = timedelta(minutes=5)) -> JetStreamJobQueue:
    """A queue on its own streams, so tests never see each other's jobs."""
    tag = uuid.uuid4().hex[:12]
    return JetStreamJobQueue(nats_server.url, name=f"T{tag}", subjects=f"t{tag}", lease=lease)


@pytest.fixture
def nats_queue(nats_server) -> Iterator[JetStreamJobQueue]:
    queue = make_nats_queue(nats_server)
    yield queue
    queue.delete_streams()
    queue.close()


@pytest.fixture(params=["database", "nats"])
def queue(request: pytest.FixtureRequest, db) -> JobQueue:
    """Each implementation of the contract: the database table (on SQLite and PostgreSQL) and
    JetStream (collected once: tests/conftest.py drops its PostgreSQL-engine twin)."""
    if request.param == "database":
        return DatabaseJobQueue(lambda: UnitOfWork(db))
    return request.getfixturevalue("nats_queue")


@pytest.fixture
def db_queue(db) -> DatabaseJobQueue:
    """Database-only tests: what the table queue has and JetStream has not."""
    return DatabaseJobQueue(lambda: UnitOfWork(db))


def test_settings_pick_the_implementation(db, nats_server):
    assert isinstance(job_queue(Settings(job_queue="database"), lambda: UnitOfWork(db)), DatabaseJobQueue)
    picked = job_queue(Settings(job_queue="nats", nats_url=nats_server.url), lambda: UnitOfWork(db))
    assert isinstance(picked, JetStreamJobQueue)
    picked.close()


# --- the contract: both implementations ---------------------------------------------------------

def test_an_enqueued_job_is_claimed_once_and_completed(queue):
    job_id = queue.enqueue("mail", {"to": "trader", "n": 1})
    assert queue.depth() == {QUEUED: 1}
    [job] = queue.claim("mail", "worker-a")
    assert (job.id, job.queue, job.payload, job.attempts) == (job_id, "mail", {"to": "trader", "n": 1}, 1)
    assert queue.claim("mail", "worker-b") == []      # held by worker-a
    assert queue.depth() == {RUNNING: 1}
    assert queue.complete(job) is True
    assert queue.claim("mail", "worker-a") == []
    assert {k: v for k, v in queue.depth().items() if k != DONE} == {}


def test_claim_takes_only_jobs_of_its_queue_in_order_up_to_the_limit(queue):
    first = queue.enqueue("mail", {"n": 1})
    second = queue.enqueue("mail", {"n": 2})
    third = queue.enqueue("mail", {"n": 3})
    queue.enqueue("other", {"n": 4})
    assert [j.id for j in queue.claim("mail", "w", limit=2)] == [first, second]
    assert [j.id for j in queue.claim("mail", "w", limit=10)] == [third]
    assert queue.claim("mail", "w") == []
    assert [j.payload for j in queue.claim("other", "w")] == [{"n": 4}]


def test_a_job_is_not_claimed_before_its_run_after(queue):
    queue.enqueue("mail", {}, run_after=utcnow() + timedelta(hours=1))
    assert queue.claim("mail", "w") == []
    assert queue.claim("mail", "w") == []


def test_a_repeated_dedup_key_returns_the_first_job(queue):
    first = queue.enqueue("mail", {"n": 1}, dedup_key="declaration:42:accepted")
    again = queue.enqueue("mail", {"n": 2}, dedup_key="declaration:42:accepted")
    assert again == first
    assert queue.depth() == {QUEUED: 1}
    [job] = queue.claim("mail", "w", limit=5)
    assert (job.id, job.payload) == (first, {"n": 1})


def test_a_failed_job_is_not_claimed_again_before_its_back_off(queue):
    queue.enqueue("mail", {}, max_attempts=3)
    [job] = queue.claim("mail", "w")
    assert queue.fail(job, "SMTP server refused") == QUEUED
    assert queue.claim("mail", "w") == []


def test_a_job_goes_dead_after_its_last_attempt(queue):
    queue.enqueue("mail", {"n": 1}, max_attempts=1)
    [job] = queue.claim("mail", "w")
    assert queue.fail(job, "attempt 1 failed") == DEAD
    assert queue.claim("mail", "w") == []
    assert {k: v for k, v in queue.depth().items() if k != DONE} == {DEAD: 1}


def test_depth_counts_queued_and_running_jobs(queue):
    for n in range(3):
        queue.enqueue("mail", {"n": n})
    [job] = queue.claim("mail", "w")
    queue.complete(job)
    queue.claim("mail", "w")
    # JetStream forgets a finished job (work-queue retention): "done" is the database's alone.
    assert {k: v for k, v in queue.depth().items() if k != DONE} == {QUEUED: 1, RUNNING: 1}


def test_an_expired_lease_on_jetstream_lets_another_worker_reclaim_the_job(nats_server):
    """The ack wait is JetStream's lease (the database's is tested below)."""
    short = make_nats_queue(nats_server, lease=timedelta(seconds=1))
    try:
        job_id = short.enqueue("mail", {})
        [first] = short.claim("mail", "worker-that-dies")
        assert short.claim("mail", "worker-b") == []
        time.sleep(1.3)
        [second] = short.claim("mail", "worker-b")
        assert (second.id, second.attempts, first.attempts) == (job_id, 2, 1)
        assert short.complete(second) is True
    finally:
        short.delete_streams()
        short.close()


def test_concurrent_workers_on_jetstream_claim_every_job_exactly_once(nats_queue):
    total, workers = 200, 8
    enqueued = {nats_queue.enqueue("parcels", {"n": n}) for n in range(total)}
    counts = _claim_concurrently(lambda: nats_queue, workers)
    assert set(counts) == enqueued
    assert [job_id for job_id, n in counts.items() if n != 1] == []
    assert nats_queue.depth() == {}


def _claim_concurrently(make_queue, workers: int) -> Counter:
    claimed: list[list[str]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(index: int) -> None:
        queue = make_queue()
        try:
            start.wait()
            while True:
                batch = queue.claim("parcels", f"worker-{index}", limit=3)
                claimed[index].extend(job.id for job in batch)
                for job in batch:
                    queue.complete(job)
                if not batch and queue.depth().get(QUEUED, 0) == 0:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert sum(1 for batch in claimed if batch) > 1   # the work was actually shared
    return Counter(job_id for batch in claimed for job_id in batch)


# --- database-only: the stored rows, transactions, leases by time, retry_dead --------------------


def make_due_now(db, job_id: str) -> None:
    """Let the back-off pass without waiting for it."""
    with db.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id)
                     .values(run_after=utcnow() - timedelta(seconds=1)))


def test_the_database_stores_each_step_of_a_job(db_queue):
    job_id = db_queue.enqueue("mail", {"to": "trader", "n": 1})
    assert db_queue.get(job_id)["status"] == QUEUED

    [job] = db_queue.claim("mail", "worker-a")
    assert (job.id, job.queue, job.payload, job.attempts) == (job_id, "mail", {"to": "trader", "n": 1}, 1)
    stored = db_queue.get(job_id)
    assert (stored["status"], stored["locked_by"]) == (RUNNING, "worker-a")
    assert stored["locked_until"] > utcnow()

    db_queue.complete(job)
    stored = db_queue.get(job_id)
    assert (stored["status"], stored["locked_by"], stored["locked_until"]) == (DONE, None, None)
    assert stored["finished_at"] is not None
    assert db_queue.claim("mail", "worker-a") == []


def test_the_database_claims_in_run_after_order(db_queue):
    first = db_queue.enqueue("mail", {"n": 1})
    second = db_queue.enqueue("mail", {"n": 2})
    third = db_queue.enqueue("mail", {"n": 3})
    db_queue.enqueue("other", {"n": 4})
    assert [j.id for j in db_queue.claim("mail", "w", limit=2)] == [first, second]
    assert [j.id for j in db_queue.claim("mail", "w", limit=10)] == [third]
    assert db_queue.claim("mail", "w") == []


def test_the_database_keeps_a_job_queued_before_its_run_after(db_queue):
    job_id = db_queue.enqueue("mail", {}, run_after=utcnow() + timedelta(hours=1))
    assert db_queue.claim("mail", "w") == []
    assert db_queue.get(job_id)["status"] == QUEUED


def test_the_database_keeps_the_first_payload_of_a_dedup_key(db_queue):
    first = db_queue.enqueue("mail", {"n": 1}, dedup_key="declaration:42:accepted")
    again = db_queue.enqueue("mail", {"n": 2}, dedup_key="declaration:42:accepted")
    assert again == first
    assert db_queue.depth() == {QUEUED: 1}
    assert db_queue.get(first)["payload"] == {"n": 1}


def test_a_job_enqueued_in_a_rolled_back_transaction_does_not_exist(db_queue, uow):
    with pytest.raises(RuntimeError, match="change failed"), uow.transaction():
        job_id = db_queue.enqueue("mail", {}, uow=uow)
        raise RuntimeError("change failed")
    assert db_queue.get(job_id) is None
    assert db_queue.depth() == {}


def test_the_database_records_who_holds_a_claim(db_queue):
    job_id = db_queue.enqueue("mail", {})
    assert [j.id for j in db_queue.claim("mail", "worker-a")] == [job_id]
    assert db_queue.claim("mail", "worker-b") == []
    assert db_queue.get(job_id)["locked_by"] == "worker-a"


def test_an_expired_lease_lets_another_worker_reclaim_the_job(db):
    short = DatabaseJobQueue(lambda: UnitOfWork(db), lease=timedelta(milliseconds=600))
    job_id = short.enqueue("mail", {})
    [first] = short.claim("mail", "worker-that-dies")
    assert short.claim("mail", "worker-b") == []      # lease still running
    time.sleep(0.7)   # the lease is long enough that a loaded machine does not end it early
    [second] = short.claim("mail", "worker-b")
    assert (second.id, second.attempts) == (job_id, 2)
    assert short.get(job_id)["locked_by"] == "worker-b"
    assert first.attempts == 1


def test_a_worker_whose_lease_ran_out_cannot_finish_or_fail_the_reclaimed_job(db):
    short = DatabaseJobQueue(lambda: UnitOfWork(db), lease=timedelta(milliseconds=600))
    job_id = short.enqueue("mail", {})
    [late] = short.claim("mail", "slow-worker")
    time.sleep(0.7)   # the lease is long enough that a loaded machine does not end it early
    [current] = short.claim("mail", "worker-b")
    assert short.fail(late, "timed out") == "running"
    assert short.complete(late) is False
    assert short.get(job_id)["status"] == "running"
    assert short.complete(current) is True
    assert short.get(job_id)["status"] == "done"


def test_the_database_records_a_failure_and_its_back_off(db_queue):
    job_id = db_queue.enqueue("mail", {}, max_attempts=3)
    [job] = db_queue.claim("mail", "w")
    before = utcnow()
    assert db_queue.fail(job, "SMTP server refused") == QUEUED
    stored = db_queue.get(job_id)
    assert (stored["status"], stored["attempts"], stored["last_error"]) == (QUEUED, 1, "SMTP server refused")
    assert stored["run_after"] >= before + backoff(1)
    assert stored["locked_by"] is None
    assert db_queue.claim("mail", "w") == []             # not before the back-off has passed


def test_back_off_doubles_and_is_capped_at_an_hour():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff(30) == timedelta(hours=1)


def test_the_back_off_unit_is_a_setting(monkeypatch):
    assert [backoff(n, timedelta(milliseconds=1)) for n in (1, 9)] == [timedelta(milliseconds=2),
                                                                      timedelta(milliseconds=512)]
    assert backoff(10_000, timedelta(milliseconds=1)) == timedelta(hours=1)
    monkeypatch.setenv("TRADEWINDOW_RETRY_BACKOFF_SECONDS", "0.001")
    assert job_queue(Settings(), lambda: None).retry_unit == timedelta(milliseconds=1)


def test_a_dead_job_can_be_requeued_by_an_operator(db_queue, db):
    job_id = db_queue.enqueue("mail", {"n": 1}, max_attempts=3)
    statuses = []
    for _ in range(3):
        make_due_now(db, job_id)
        [job] = db_queue.claim("mail", "w")
        statuses.append(db_queue.fail(job, f"attempt {job.attempts} failed"))
    assert statuses == [QUEUED, QUEUED, DEAD]
    stored = db_queue.get(job_id)
    assert (stored["status"], stored["attempts"], stored["last_error"]) == (DEAD, 3, "attempt 3 failed")
    assert stored["finished_at"] is not None

    make_due_now(db, job_id)
    assert db_queue.claim("mail", "w") == []             # the dead stay dead
    assert db_queue.depth() == {DEAD: 1}

    assert db_queue.retry_dead(job_id) is True
    assert db_queue.retry_dead(job_id) is False          # only a dead job can be requeued
    [job] = db_queue.claim("mail", "w")
    assert (job.id, job.attempts) == (job_id, 1)


def test_retry_dead_refuses_a_job_that_is_not_dead(db_queue):
    job_id = db_queue.enqueue("mail", {})
    assert db_queue.retry_dead(job_id) is False
    assert db_queue.retry_dead("01ARZ3NDEKTSV4RRFFQ69G5FAV") is False


def test_the_database_depth_counts_done_jobs_too(db_queue):
    for n in range(3):
        db_queue.enqueue("mail", {"n": n})
    [job] = db_queue.claim("mail", "w")
    db_queue.complete(job)
    db_queue.claim("mail", "w")
    assert db_queue.depth() == {QUEUED: 1, RUNNING: 1, DONE: 1}


def test_concurrent_workers_claim_every_job_exactly_once(db):
    """On PostgreSQL this exercises FOR UPDATE SKIP LOCKED, on SQLite BEGIN IMMEDIATE."""
    total, workers = 200, 8
    setup = DatabaseJobQueue(lambda: UnitOfWork(db))
    enqueued = {setup.enqueue("parcels", {"n": n}) for n in range(total)}

    def own_queue() -> DatabaseJobQueue:
        uow = UnitOfWork(db)                        # each worker its own unit of work
        return DatabaseJobQueue(lambda: uow)

    counts = _claim_concurrently(own_queue, workers)
    assert set(counts) == enqueued
    assert [job_id for job_id, n in counts.items() if n != 1] == []
    assert setup.depth() == {DONE: total}


# --- the worker ----------------------------------------------------------------------------------

@pytest.fixture
def handler_queue():
    """A queue name with a handler the test registers; removed again so the registry stays clean."""
    name = "test.worker"
    yield name
    jobs_module._handlers.pop(name, None)


def test_the_worker_runs_due_jobs_with_their_registered_handler(db, handler_queue):
    seen = []

    @handles(handler_queue)
    def record(uow: UnitOfWork, payload: dict) -> None:
        assert isinstance(uow, UnitOfWork)
        seen.append(payload)

    assert jobs_module.registered_queues()[handler_queue] is record
    worker = Worker(db, name="worker-test")
    first = worker.queue.enqueue(handler_queue, {"n": 1})
    second = worker.queue.enqueue(handler_queue, {"n": 2})
    assert worker.run_once() >= 2
    assert sorted(p["n"] for p in seen) == [1, 2]
    assert {worker.queue.get(first)["status"], worker.queue.get(second)["status"]} == {DONE}
    worker.run_once()                               # nothing is due any more: nothing runs twice
    assert len(seen) == 2


def test_the_worker_records_a_failing_job_and_keeps_going(db, handler_queue):
    @handles(handler_queue)
    def explode(uow: UnitOfWork, payload: dict) -> None:
        if payload["n"] == 1:
            raise ValueError("the carrier's system is down")

    worker = Worker(db, name="worker-test")
    failing = worker.queue.enqueue(handler_queue, {"n": 1}, max_attempts=2)
    fine = worker.queue.enqueue(handler_queue, {"n": 2})
    worker.run_once()
    stored = worker.queue.get(failing)
    assert (stored["status"], stored["attempts"]) == (QUEUED, 1)
    assert stored["last_error"] == "ValueError: the carrier's system is down"
    assert worker.queue.get(fine)["status"] == DONE

    make_due_now(db, failing)
    worker.run_once()
    assert worker.queue.get(failing)["status"] == DEAD


def test_the_worker_runs_jobs_from_jetstream(db, nats_queue, handler_queue):
    seen = []

    @handles(handler_queue)
    def record(uow: UnitOfWork, payload: dict) -> None:
        if payload["n"] == 2:
            raise ValueError("the carrier's system is down")
        seen.append(payload)

    worker = Worker(db, name="worker-test", queue=nats_queue)
    nats_queue.enqueue(handler_queue, {"n": 1})
    nats_queue.enqueue(handler_queue, {"n": 2}, max_attempts=1)
    assert worker.run_once() >= 2
    assert seen == [{"n": 1}]
    assert nats_queue.depth() == {DEAD: 1}
