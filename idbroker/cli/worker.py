"""CLI: `idbroker worker` — run queued jobs (deliveries, callbacks, syncs) until stopped.

Several workers run side by side on PostgreSQL, one `idbroker worker` command each (e.g. a systemd template
unit `idbroker-worker@N`): they claim jobs with `FOR UPDATE SKIP LOCKED`, so no job runs twice, and a job
whose worker died is taken by another once its lease (`IDBROKER_JOB_LEASE_SECONDS`) runs out. On a SQLite
database one worker runs: a second is refused. SIGTERM or SIGINT lets the job in hand finish, then stops.
"""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer

from idbroker.cli.db import fail, open_engine
from idbroker.cli.keys import require_keys
from idbroker.jobs.handlers import load_handlers
from idbroker.jobs.worker import WorkerRunning, run_forever, run_once, single_worker_lock, worker_name
from idbroker.logs import setup_logging

log = logging.getLogger("idbroker.worker")


def worker_command(
    queue: Annotated[list[str] | None, typer.Option("--queue", help="Only these queues (default: all)")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run the jobs that are due, then stop")] = False,
) -> None:
    """Claim and run jobs from the database queue. Run several on PostgreSQL (one command each); one on SQLite."""
    known = load_handlers()
    queues = queue or known
    unknown = sorted(set(queues) - set(known))
    if unknown:
        typer.secho(f"unknown queue(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}", err=True, fg="red")
        raise typer.Exit(1)
    if not queues:
        typer.echo("no job queues are registered yet")
        return
    settings = require_keys()  # a missing or short key stops here, before any job is claimed
    engine = open_engine()
    lease_seconds = settings.job_lease_seconds
    if once:
        ran = 0
        while run_once(engine, queues, lease_seconds=lease_seconds):
            ran += 1
        typer.echo(f"ran {ran} jobs")
        return
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    try:
        with single_worker_lock(engine):
            setup_logging(settings.log_level)
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            log.info("worker started", extra={"worker": worker_name(), "queues": queues})
            run_forever(engine, queues, stop=lambda: stopping, lease_seconds=lease_seconds)
            log.info("worker stopped", extra={"worker": worker_name()})
    except WorkerRunning as exc:
        raise fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_command)
