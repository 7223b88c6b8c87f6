"""The job queue. `JobQueue` is the interface; `DatabaseJobQueue` keeps jobs in a table (the
embedded default), and a NATS JetStream implementation can satisfy the same contract for
deployments beyond one machine (platform/nats_queue.py); settings.job_queue picks one through
`job_queue(settings, uow_factory)`.

A job is claimed by a conditional update (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock
of BEGIN IMMEDIATE on SQLite), so two workers never run the same job. A claim is a lease: a
worker that dies leaves its job to be claimed again once the lease has run out. A failed job is
retried with exponential back-off and goes to the dead-letter state after its last attempt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, insert, or_, select, update

from tradewindow.platform.db import UnitOfWork, utcnow
from tradewindow.platform.ids import new_id
from tradewindow.platform.settings import Settings
from tradewindow.platform.tables import jobs

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"


@dataclass(frozen=True)
class Job:
    id: str
    queue: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    worker: str = ""      # who holds the claim: a worker whose lease ran out may not finish the job


class JobQueue(Protocol):
    def enqueue(self, queue: str, payload: dict[str, Any], *, dedup_key: str | None = None,
                run_after: datetime | None = None, max_attempts: int = 5) -> str: ...

    def claim(self, queue: str, worker: str, limit: int = 1) -> list[Job]: ...

    def complete(self, job: Job) -> bool: ...

    def fail(self, job: Job, error: str) -> str: ...

    def depth(self) -> dict[str, int]: ...


def backoff(attempts: int, unit: timedelta = timedelta(seconds=1)) -> timedelta:
    """Time before the next try: 2, 4, 8, ... units (a second; settings.retry_backoff_seconds),
    capped at one hour."""
    return min(unit * 2 ** min(attempts, 32), timedelta(hours=1))


class DatabaseJobQueue:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], lease: timedelta = timedelta(minutes=5),
                 retry_unit: timedelta = timedelta(seconds=1)):
        self._uow = uow_factory
        self.lease, self.retry_unit = lease, retry_unit     # retry_unit: see `backoff`

    def enqueue(self, queue: str, payload: dict[str, Any], *, dedup_key: str | None = None,
                run_after: datetime | None = None, max_attempts: int = 5,
                uow: UnitOfWork | None = None) -> str:
        """Add a job. Given the caller's `uow`, the job joins the caller's transaction, so it exists
        exactly when the change that asked for it was committed. A repeated dedup_key returns the
        first job's id."""
        uow = uow or self._uow()
        with uow.transaction() as conn:
            if dedup_key is not None:
                existing = conn.execute(select(jobs.c.id).where(jobs.c.dedup_key == dedup_key)).scalar()
                if existing:
                    return existing
            job_id = new_id()
            now = utcnow()
            conn.execute(insert(jobs).values(
                id=job_id, queue=queue, payload=payload, status=QUEUED, dedup_key=dedup_key,
                attempts=0, max_attempts=max_attempts, run_after=run_after or now, created_at=now,
            ))
            return job_id

    def claim(self, queue: str, worker: str, limit: int = 1) -> list[Job]:
        uow = self._uow()
        with uow.transaction() as conn:
            now = utcnow()
            claimable = or_(
                (jobs.c.status == QUEUED) & (jobs.c.run_after <= now),
                (jobs.c.status == RUNNING) & (jobs.c.locked_until < now),   # lease ran out
            )
            query = (select(jobs).where(jobs.c.queue == queue, claimable)
                     .order_by(jobs.c.run_after, jobs.c.id).limit(limit))
            if uow.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed = []
            for row in conn.execute(query).mappings().all():
                result = conn.execute(
                    update(jobs).where(jobs.c.id == row["id"], jobs.c.status == row["status"])
                    .values(status=RUNNING, locked_by=worker, locked_until=now + self.lease,
                            attempts=row["attempts"] + 1))
                if result.rowcount == 1:
                    claimed.append(Job(row["id"], row["queue"], row["payload"],
                                       row["attempts"] + 1, row["max_attempts"], worker))
            return claimed

    def complete(self, job: Job) -> bool:
        """Mark the job done; False (and nothing changed) when the claim was lost to another worker
        after the lease ran out: that worker's run counts, not this late one."""
        with self._uow().transaction() as conn:
            result = conn.execute(update(jobs).where(*self._still_held(job)).values(
                status=DONE, finished_at=utcnow(), locked_by=None, locked_until=None))
            return result.rowcount == 1

    @staticmethod
    def _still_held(job: Job) -> tuple:
        return (jobs.c.id == job.id, jobs.c.status == RUNNING, jobs.c.locked_by == job.worker)

    def fail(self, job: Job, error: str) -> str:
        """Record a failure; returns the job's new status (queued for a retry, or dead)."""
        status = DEAD if job.attempts >= job.max_attempts else QUEUED
        with self._uow().transaction() as conn:
            now = utcnow()
            result = conn.execute(update(jobs).where(*self._still_held(job)).values(
                status=status, last_error=error[:4000], locked_by=None, locked_until=None,
                run_after=now + backoff(job.attempts, self.retry_unit),
                finished_at=now if status == DEAD else None))
        return status if result.rowcount == 1 else RUNNING

    def retry_dead(self, job_id: str) -> bool:
        """An operator puts a dead job back in the queue after fixing its cause."""
        with self._uow().transaction() as conn:
            result = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == DEAD)
                                  .values(status=QUEUED, attempts=0, run_after=utcnow(),
                                          finished_at=None))
            return result.rowcount == 1

    def depth(self) -> dict[str, int]:
        with self._uow().read() as conn:
            rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all()
        return {status: count for status, count in rows}

    def holds(self, dedup_key: str) -> bool:
        """Whether a job with this dedup_key was ever enqueued (done ones included)."""
        with self._uow().read() as conn:
            return conn.execute(select(jobs.c.id).where(jobs.c.dedup_key == dedup_key)).first() is not None

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._uow().read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return dict(row) if row else None


def job_queue(settings: Settings, uow_factory: Callable[[], UnitOfWork]) -> JobQueue:
    """The implementation settings.job_queue names: "database" (the embedded default) or "nats"
    (JetStream at settings.nats_url, platform/nats_queue.py)."""
    retry_unit = timedelta(seconds=settings.retry_backoff_seconds)
    if settings.job_queue == "database":
        return DatabaseJobQueue(uow_factory, retry_unit=retry_unit)
    if settings.job_queue == "nats":
        from tradewindow.platform.nats_queue import JetStreamJobQueue  # nats-py only where used

        return JetStreamJobQueue(settings.nats_url, lease=timedelta(seconds=settings.nats_ack_wait_seconds),
                                 retry_unit=retry_unit)
    raise ValueError(f"TRADEWINDOW_JOB_QUEUE={settings.job_queue!r}: use \"database\" or \"nats\".")


JobHandler = Callable[[UnitOfWork, dict[str, Any]], None]
_handlers: dict[str, JobHandler] = {}


def handles(queue: str) -> Callable[[JobHandler], JobHandler]:
    """Register the function that runs the jobs of a queue (contexts call this at import)."""
    def register(handler: JobHandler) -> JobHandler:
        _handlers[queue] = handler
        return handler
    return register


def registered_queues() -> dict[str, JobHandler]:
    return dict(_handlers)


# Periodic work (flagging late filings, publishing hash-chain heads, ...): contexts register a
# function and an interval at import; the worker runs each when it is due.
PeriodicTask = Callable[[UnitOfWork], object]
_periodic: dict[str, tuple[float, PeriodicTask]] = {}


def periodic(name: str, seconds: float) -> Callable[[PeriodicTask], PeriodicTask]:
    def register(task: PeriodicTask) -> PeriodicTask:
        _periodic[name] = (seconds, task)
        return task
    return register


def registered_periodic() -> dict[str, tuple[float, PeriodicTask]]:
    return dict(_periodic)
