"""Contract of the job queue (platform.jobs.JobQueue), run against DatabaseJobQueue on SQLite and
PostgreSQL; a NATS JetStream implementation will have to pass the same tests. And the worker that
runs the jobs."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import update

from tradewindow.platform import jobs as jobs_module
from tradewindow.platform.db import UnitOfWork, utcnow
from tradewindow.platform.jobs import DEAD, DONE, QUEUED, RUNNING, DatabaseJobQueue, backoff, handles
from tradewindow.platform.tables import jobs
from tradewindow.platform.worker import Worker


@pytest.fixture
def queue(db) -> DatabaseJobQueue:
    return DatabaseJobQueue(lambda: UnitOfWork(db))


def make_due_now(db, job_id: str) -> None:
    """Let the back-off pass without waiting for it."""
    with db.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id)
                     .values(run_after=utcnow() - timedelta(seconds=1)))


def test_an_enqueued_job_is_claimed_run_and_completed(queue):
    job_id = queue.enqueue("mail", {"to": "trader", "n": 1})
    assert queue.get(job_id)["status"] == QUEUED

    [job] = queue.claim("mail", "worker-a")
    assert (job.id, job.queue, job.payload, job.attempts) == (job_id, "mail", {"to": "trader", "n": 1}, 1)
    stored = queue.get(job_id)
    assert (stored["status"], stored["locked_by"]) == (RUNNING, "worker-a")
    assert stored["locked_until"] > utcnow()

    queue.complete(job)
    stored = queue.get(job_id)
    assert (stored["status"], stored["locked_by"], stored["locked_until"]) == (DONE, None, None)
    assert stored["finished_at"] is not None
    assert queue.claim("mail", "worker-a") == []


def test_claim_takes_only_jobs_of_its_queue_in_order_up_to_the_limit(queue):
    first = queue.enqueue("mail", {"n": 1})
    second = queue.enqueue("mail", {"n": 2})
    third = queue.enqueue("mail", {"n": 3})
    queue.enqueue("other", {"n": 4})
    assert [j.id for j in queue.claim("mail", "w", limit=2)] == [first, second]
    assert [j.id for j in queue.claim("mail", "w", limit=10)] == [third]
    assert queue.claim("mail", "w") == []


def test_a_job_is_not_claimed_before_its_run_after(queue):
    job_id = queue.enqueue("mail", {}, run_after=utcnow() + timedelta(hours=1))
    assert queue.claim("mail", "w") == []
    assert queue.get(job_id)["status"] == QUEUED


def test_a_repeated_dedup_key_returns_the_first_job(queue):
    first = queue.enqueue("mail", {"n": 1}, dedup_key="declaration:42:accepted")
    again = queue.enqueue("mail", {"n": 2}, dedup_key="declaration:42:accepted")
    assert again == first
    assert queue.depth() == {QUEUED: 1}
    assert queue.get(first)["payload"] == {"n": 1}


def test_a_job_enqueued_in_a_rolled_back_transaction_does_not_exist(queue, uow):
    with pytest.raises(RuntimeError, match="change failed"), uow.transaction():
        job_id = queue.enqueue("mail", {}, uow=uow)
        raise RuntimeError("change failed")
    assert queue.get(job_id) is None
    assert queue.depth() == {}


def test_a_claimed_job_is_not_claimed_again_by_another_worker(queue):
    job_id = queue.enqueue("mail", {})
    assert [j.id for j in queue.claim("mail", "worker-a")] == [job_id]
    assert queue.claim("mail", "worker-b") == []
    assert queue.get(job_id)["locked_by"] == "worker-a"


def test_an_expired_lease_lets_another_worker_reclaim_the_job(db):
    short = DatabaseJobQueue(lambda: UnitOfWork(db), lease=timedelta(milliseconds=50))
    job_id = short.enqueue("mail", {})
    [first] = short.claim("mail", "worker-that-dies")
    assert short.claim("mail", "worker-b") == []      # lease still running
    time.sleep(0.1)
    [second] = short.claim("mail", "worker-b")
    assert (second.id, second.attempts) == (job_id, 2)
    assert short.get(job_id)["locked_by"] == "worker-b"
    assert first.attempts == 1


def test_a_worker_whose_lease_ran_out_cannot_finish_or_fail_the_reclaimed_job(db):
    short = DatabaseJobQueue(lambda: UnitOfWork(db), lease=timedelta(milliseconds=50))
    job_id = short.enqueue("mail", {})
    [late] = short.claim("mail", "slow-worker")
    time.sleep(0.1)
    [current] = short.claim("mail", "worker-b")
    assert short.fail(late, "timed out") == "running"
    assert short.complete(late) is False
    assert short.get(job_id)["status"] == "running"
    assert short.complete(current) is True
    assert short.get(job_id)["status"] == "done"


def test_a_failed_job_is_retried_after_a_back_off(queue):
    job_id = queue.enqueue("mail", {}, max_attempts=3)
    [job] = queue.claim("mail", "w")
    before = utcnow()
    assert queue.fail(job, "SMTP server refused") == QUEUED
    stored = queue.get(job_id)
    assert (stored["status"], stored["attempts"], stored["last_error"]) == (QUEUED, 1, "SMTP server refused")
    assert stored["run_after"] >= before + backoff(1)
    assert stored["locked_by"] is None
    assert queue.claim("mail", "w") == []             # not before the back-off has passed


def test_back_off_doubles_and_is_capped_at_an_hour():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff(30) == timedelta(hours=1)


def test_a_job_goes_dead_after_its_last_attempt_and_an_operator_can_requeue_it(queue, db):
    job_id = queue.enqueue("mail", {"n": 1}, max_attempts=3)
    statuses = []
    for _ in range(3):
        make_due_now(db, job_id)
        [job] = queue.claim("mail", "w")
        statuses.append(queue.fail(job, f"attempt {job.attempts} failed"))
    assert statuses == [QUEUED, QUEUED, DEAD]
    stored = queue.get(job_id)
    assert (stored["status"], stored["attempts"], stored["last_error"]) == (DEAD, 3, "attempt 3 failed")
    assert stored["finished_at"] is not None

    make_due_now(db, job_id)
    assert queue.claim("mail", "w") == []             # the dead stay dead
    assert queue.depth() == {DEAD: 1}

    assert queue.retry_dead(job_id) is True
    assert queue.retry_dead(job_id) is False          # only a dead job can be requeued
    [job] = queue.claim("mail", "w")
    assert (job.id, job.attempts) == (job_id, 1)


def test_retry_dead_refuses_a_job_that_is_not_dead(queue):
    job_id = queue.enqueue("mail", {})
    assert queue.retry_dead(job_id) is False
    assert queue.retry_dead("01ARZ3NDEKTSV4RRFFQ69G5FAV") is False


def test_depth_counts_jobs_by_status(queue):
    for n in range(3):
        queue.enqueue("mail", {"n": n})
    [job] = queue.claim("mail", "w")
    queue.complete(job)
    queue.claim("mail", "w")
    assert queue.depth() == {QUEUED: 1, RUNNING: 1, DONE: 1}


def test_concurrent_workers_claim_every_job_exactly_once(db):
    """On PostgreSQL this exercises FOR UPDATE SKIP LOCKED, on SQLite BEGIN IMMEDIATE."""
    total, workers = 200, 8
    setup = DatabaseJobQueue(lambda: UnitOfWork(db))
    enqueued = {setup.enqueue("parcels", {"n": n}) for n in range(total)}
    claimed: list[list[str]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(index: int) -> None:
        uow = UnitOfWork(db)                        # each worker its own unit of work
        queue = DatabaseJobQueue(lambda: uow)
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
    counts = Counter(job_id for batch in claimed for job_id in batch)
    assert set(counts) == enqueued
    assert [job_id for job_id, n in counts.items() if n != 1] == []
    assert setup.depth() == {DONE: total}
    assert sum(1 for batch in claimed if batch) > 1   # the work was actually shared


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
