"""The worker loop: claim a job, run its queue's handler in its own transaction, record the outcome.

Handlers are registered per queue (`register("sms", deliver_sms)`); a handler that raises `Retry` asks for
a later attempt, any other exception counts as a failure with back-off. A handler's effects and the job's
completion commit together, so a crash between them re-runs the job: handlers must be idempotent.

A claimed job is leased for `lease_seconds`; a worker that dies (`kill -9`, a lost machine) stops renewing
its lease, and once it runs out another worker takes the job. On PostgreSQL, where several workers run, a
live worker renews the lease of the job it runs every third of the lease, so a handler may run for longer
than the lease without a second worker starting it too. SQLite has one worker (`single_worker_lock`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.jobs.models import Job
from idbroker.jobs.queue import claim, complete, fail

Handler = Callable[[Session, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}
log = logging.getLogger("idbroker.jobs")


class Retry(Exception):
    """Try this job again later (after `after` seconds, or the default back-off)."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


def register(queue: str, handler: Handler) -> None:
    HANDLERS[queue] = handler


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_once(engine: Engine, queues: list[str], *, worker: str | None = None, lease_seconds: float = 60.0) -> int:
    """Claim and run at most one job; returns how many ran (0 or 1)."""
    worker = worker or worker_name()
    with Session(engine, expire_on_commit=False) as session:
        jobs = claim(session, queues, worker, lease_seconds=lease_seconds)
        session.commit()
    if not jobs:
        return 0
    job = jobs[0]
    handler = HANDLERS.get(job.queue)
    with LeaseRenewal(engine, job.id, worker, lease_seconds), Session(engine, expire_on_commit=False) as session:
        job = session.merge(job)
        try:
            if handler is None:
                raise LookupError(f"no handler for queue {job.queue!r}")
            handler(session, job.payload)
            complete(session, job)
            session.commit()
        except Retry as request:
            session.rollback()
            job = session.merge(job)
            fail(session, job, str(request), retry_after=request.after)
            session.commit()
        except Exception as exc:  # a failing handler must never stop the worker
            session.rollback()
            job = session.merge(job)
            log.warning("job %s on %s failed: %s", job.id, job.queue, type(exc).__name__)
            fail(session, job, f"{type(exc).__name__}: {exc}")
            session.commit()
    return 1


def run_forever(
    engine: Engine,
    queues: list[str],
    *,
    idle_sleep: float = 0.5,
    stop: Callable[[], bool] = lambda: False,
    lease_seconds: float = 60.0,
) -> None:
    worker = worker_name()
    while not stop():
        if not run_once(engine, queues, worker=worker, lease_seconds=lease_seconds):
            time.sleep(idle_sleep)


class LeaseRenewal:
    """While a job runs (PostgreSQL only): push its lease forward every third of the lease, from a thread."""

    def __init__(self, engine: Engine, job_id: int | None, worker: str, lease_seconds: float) -> None:
        self.engine, self.job_id, self.worker, self.lease_seconds = engine, job_id, worker, lease_seconds
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> LeaseRenewal:
        if self.engine.dialect.name == "postgresql" and self.job_id is not None:
            self.thread = threading.Thread(target=self._run, name=f"lease-{self.job_id}", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(self.lease_seconds / 3):
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        update(Job)
                        .where(Job.id == self.job_id, Job.locked_by == self.worker, Job.state == "running")  # type: ignore[arg-type]
                        .values(locked_until=utcnow() + timedelta(seconds=self.lease_seconds))
                    )
            except Exception:  # the database is away for a moment: the next round tries again
                log.warning("could not renew the lease of job %s", self.job_id, exc_info=True)


@contextmanager
def single_worker_lock(engine: Engine) -> Iterator[None]:
    """On a SQLite file, hold `<database>.worker.lock` while the worker runs: a second worker is refused
    (SQLite has one writer). Elsewhere, nothing: PostgreSQL workers share the queue with SKIP LOCKED."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = Path(f"{database}.worker.lock")
    with path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerRunning(
                f"another `idbroker worker` is running on {database} (SQLite has one writer: run one worker, "
                "or use PostgreSQL for several)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class WorkerRunning(RuntimeError):
    """A second worker on a SQLite database."""
