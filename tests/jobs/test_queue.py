"""The job queue: one worker per job, retries with back-off, a dead worker's job picked up again."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.jobs.models import Job
from idbroker.jobs.queue import claim, enqueue
from idbroker.jobs.worker import HANDLERS, Retry, register, run_once


def test_two_workers_never_take_the_same_job(engine: Engine) -> None:
    with Session(engine) as session:
        for n in range(40):
            enqueue(session, "test", {"n": n})
        session.commit()
    taken: list[list[int]] = [[], []]

    def work(slot: int) -> None:
        while True:
            with Session(engine) as session:
                jobs = claim(session, ["test"], f"w{slot}", limit=3)
                session.commit()
                if not jobs:
                    return
                taken[slot].extend(job.payload["n"] for job in jobs)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken[0] + taken[1]) == list(range(40))
    assert not set(taken[0]) & set(taken[1])


def test_failures_back_off_and_a_dead_workers_job_runs_again(engine: Engine) -> None:
    calls: list[dict[str, Any]] = []

    def flaky(_session: Session, payload: dict[str, Any]) -> None:
        calls.append(payload)
        if len(calls) == 1:
            raise Retry("gateway busy", after=0)

    register("flaky", flaky)
    try:
        with Session(engine) as session:
            enqueue(session, "flaky", {"n": 1})
            session.commit()
        assert run_once(engine, ["flaky"]) == 1  # fails, retried
        assert run_once(engine, ["flaky"]) == 1  # succeeds
        with Session(engine) as session:
            job = session.scalars(select(Job)).one()
            assert (job.state, job.attempts, job.last_error) == ("done", 2, "gateway busy")
            # a worker that claimed a job and died: its lease runs out and another worker takes it
            enqueue(session, "flaky", {"n": 2})
            session.commit()
            (orphan,) = claim(session, ["flaky"], "dead-worker", lease_seconds=60)
            orphan_id = orphan.id
            session.commit()
            session.execute(update(Job).where(Job.id == orphan_id).values(locked_until=utcnow() - timedelta(seconds=1)))
            session.commit()
        assert run_once(engine, ["flaky"]) == 1
        with Session(engine) as session:
            assert session.get(Job, orphan_id).state == "done"  # type: ignore[union-attr]
    finally:
        HANDLERS.pop("flaky", None)


def test_a_dedupe_key_enqueues_once(engine: Engine) -> None:
    with Session(engine) as session:
        assert enqueue(session, "test", {}, dedupe_key="k") is not None
        assert enqueue(session, "test", {}, dedupe_key="k") is None
        session.commit()
        assert len(session.scalars(select(Job)).all()) == 1
