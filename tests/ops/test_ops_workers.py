"""Several `idbroker worker` processes on PostgreSQL drain one queue, each job run exactly once; a job that
outlives the lease stays with its (live) worker; a worker killed with SIGKILL mid-job loses its job to another
once the lease runs out. On SQLite one worker runs and a second is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from job_probe import QUEUE
from ops_support import environment, json_lines, reap, start, stop, wait_until
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.jobs.models import Job
from idbroker.jobs.queue import enqueue

PROBE = [sys.executable, str(Path(__file__).resolve().parent / "probe_worker.py")]
LEASE_SECONDS = 1.5
FAST_JOBS = 150


def started(log: Path) -> bool:
    return log.exists() and any(e["msg"] == "worker started" for e in json_lines(log))


def unfinished(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).where(Job.queue == QUEUE, Job.state != "done")) or 0)


def runs(path: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()]  # type: ignore[misc]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_three_workers_run_each_job_once_and_a_killed_workers_job_runs_again(engine: Engine, tmp_path: Path) -> None:
    ran, marker = tmp_path / "runs.txt", tmp_path / "hung.pid"
    env = environment(engine.url.render_as_string(hide_password=False), job_lease_seconds=LEASE_SECONDS)
    logs = [tmp_path / f"worker{n}.log" for n in range(3)]
    workers = [start(env, "--queue", QUEUE, log=log, command=PROBE) for log in logs]
    try:
        wait_until(lambda: all(started(log) for log in logs), "three workers to start", timeout=90)
        with Session(engine) as session:  # all at once, while every worker is waiting for work
            for n in range(FAST_JOBS):
                enqueue(session, QUEUE, {"n": n, "log": str(ran), "seconds": 0.01})
            enqueue(session, QUEUE, {"n": 1000, "log": str(ran), "kind": "hang", "marker": str(marker)})
            enqueue(session, QUEUE, {"n": 1001, "log": str(ran), "seconds": 3 * LEASE_SECONDS})
            session.commit()
        wait_until(marker.exists, "a worker to start the hanging job")
        hung = int(marker.read_text())
        victim = next(worker for worker in workers if worker.pid == hung)
        os.kill(hung, signal.SIGKILL)  # mid-job
        assert victim.wait(timeout=10) == -signal.SIGKILL
        wait_until(lambda: unfinished(engine) == 0, "every job to be done", timeout=90)
        statuses = [stop(worker) for worker in workers if worker is not victim]
    finally:
        for worker in workers:
            reap(worker)
    assert statuses == [0, 0]  # SIGTERM: the job in hand finishes, then a clean exit

    done = runs(ran)
    counts = Counter(n for n, _ in done)
    assert sorted(counts) == [*range(FAST_JOBS), 1000, 1001] and set(counts.values()) == {1}  # each exactly once
    assert len({pid for n, pid in done if n < FAST_JOBS}) >= 2  # the workers shared the queue
    by_n = dict(done)
    assert by_n[1000] != hung  # the killed worker's job was finished by another
    with Session(engine) as session:
        attempts = {job.payload["n"]: job.attempts for job in session.scalars(select(Job).where(Job.queue == QUEUE))}
    assert attempts[1000] == 2  # taken again once the dead worker's lease ran out
    assert attempts[1001] == 1  # longer than the lease, but its live worker kept renewing it
    assert {attempts[n] for n in range(FAST_JOBS)} == {1}
    for log in logs:
        json_lines(log)  # the workers log JSON lines too


def test_one_worker_runs_on_sqlite_and_a_second_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    ran = tmp_path / "runs.txt"
    env = environment(sqlite_engine.url.render_as_string(hide_password=False))
    log = tmp_path / "worker.log"
    first = start(env, "--queue", QUEUE, log=log, command=PROBE)
    try:
        wait_until(lambda: started(log), "the worker to start", timeout=90)
        second = subprocess.run(
            [*PROBE, "--queue", QUEUE], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert second.returncode == 1
        assert "another `idbroker worker` is running" in second.stderr and "SQLite has one writer" in second.stderr
        with Session(sqlite_engine) as session:
            for n in range(20):
                enqueue(session, QUEUE, {"n": n, "log": str(ran)})
            session.commit()
        wait_until(lambda: unfinished(sqlite_engine) == 0, "the worker to drain the queue", timeout=60)
        assert stop(first) == 0
    finally:
        reap(first)
    assert sorted(n for n, _ in runs(ran)) == list(range(20))
