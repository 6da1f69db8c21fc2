"""The job queue in the database.

`claim` hands a ready job (or one whose worker's lease ran out — the worker died) to exactly one worker:
on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so two workers never take one job; on SQLite the write lock
taken at `BEGIN IMMEDIATE` serialises claims (one worker runs there). Failures back off exponentially
until `max_attempts`, then the job is `dead` and kept for an operator.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.jobs.models import Job

JOBS = Job.__table__  # type: ignore[attr-defined]
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0


def enqueue(
    session: Session,
    queue: str,
    payload: dict[str, Any],
    *,
    delay: float = 0.0,
    dedupe_key: str | None = None,
    max_attempts: int = 8,
) -> Job | None:
    """Add a job in the caller's transaction; with `dedupe_key`, a second enqueue of the same key is a no-op."""
    job = Job(
        queue=queue,
        payload=payload,
        run_after=utcnow() + timedelta(seconds=delay),
        dedupe_key=dedupe_key,
        max_attempts=max_attempts,
    )
    if dedupe_key is None:
        session.add(job)
        session.flush()
        return job
    # INSERT … ON CONFLICT DO NOTHING: two processes enqueueing one key at once never meet a unique violation
    dialect = session.get_bind().dialect.name
    insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {column.name: getattr(job, column.name) for column in JOBS.columns if column.name != "id"}
    statement = insert_of(JOBS).values(values).on_conflict_do_nothing(index_elements=["dedupe_key"])
    job_id = session.scalar(statement.returning(JOBS.c.id))
    return None if job_id is None else session.get(Job, job_id)


def claim(
    session: Session, queues: list[str], worker: str, *, lease_seconds: float = 60.0, limit: int = 1
) -> list[Job]:
    """Take up to `limit` runnable jobs for `worker`, leasing them for `lease_seconds`."""
    now = utcnow()
    runnable = or_(
        (Job.state == "ready") & (Job.run_after <= now),  # type: ignore[arg-type, operator]
        (Job.state == "running") & (Job.locked_until < now),  # type: ignore[arg-type, operator]
    )
    query = select(Job).where(Job.queue.in_(queues), runnable).order_by(Job.run_after, Job.id).limit(limit)  # type: ignore[attr-defined, arg-type]
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    jobs = list(session.scalars(query))
    for job in jobs:
        job.state, job.locked_by = "running", worker
        job.locked_until = now + timedelta(seconds=lease_seconds)
        job.attempts += 1
        session.add(job)
    session.flush()
    return jobs


def complete(session: Session, job: Job) -> None:
    job.state, job.finished_at, job.locked_by, job.locked_until = "done", utcnow(), None, None
    session.add(job)


def fail(session: Session, job: Job, error: str, *, retry_after: float | None = None) -> None:
    """Record a failure: back off and retry, or give up once `max_attempts` is reached."""
    job.last_error = error[:500]
    job.locked_by, job.locked_until = None, None
    if job.attempts >= job.max_attempts:
        job.state, job.finished_at = "dead", utcnow()
    else:
        delay = (
            retry_after
            if retry_after is not None
            else min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (job.attempts - 1))
        )
        job.state, job.run_after = "ready", utcnow() + timedelta(seconds=delay)
    session.add(job)


def depth(session: Session) -> dict[str, int]:
    """Jobs waiting per queue (ready or running): the queue-depth metric."""
    rows = session.execute(
        select(Job.queue, func.count()).where(Job.state.in_(["ready", "running"])).group_by(Job.queue)  # type: ignore[attr-defined]
    )
    return {queue: count for queue, count in rows}
