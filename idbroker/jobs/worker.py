"""The worker loop: claim a job, run its queue's handler in its own transaction, record the outcome.

Handlers are registered per queue (`register("sms", deliver_sms)`); a handler that raises `Retry` asks for
a later attempt, any other exception counts as a failure with back-off. A handler's effects and the job's
completion commit together, so a crash between them re-runs the job: handlers must be idempotent.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

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
    with Session(engine, expire_on_commit=False) as session:
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
    engine: Engine, queues: list[str], *, idle_sleep: float = 0.5, stop: Callable[[], bool] = lambda: False
) -> None:
    worker = worker_name()
    while not stop():
        if not run_once(engine, queues, worker=worker):
            time.sleep(idle_sleep)
