"""CLI: `idbroker worker` — run queued jobs (deliveries, callbacks, syncs) until stopped."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from idbroker.cli.db import open_engine
from idbroker.jobs.handlers import load_handlers
from idbroker.jobs.worker import run_forever, run_once


def worker_command(
    queue: Annotated[list[str] | None, typer.Option("--queue", help="Only these queues (default: all)")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run the jobs that are due, then stop")] = False,
) -> None:
    """Claim and run jobs from the database queue. Several workers may run at once on PostgreSQL."""
    known = load_handlers()
    queues = queue or known
    unknown = sorted(set(queues) - set(known))
    if unknown:
        typer.secho(f"unknown queue(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}", err=True, fg="red")
        raise typer.Exit(1)
    if not queues:
        typer.echo("no job queues are registered yet")
        return
    engine = open_engine()
    if once:
        ran = 0
        while run_once(engine, queues):
            ran += 1
        typer.echo(f"ran {ran} jobs")
        return
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    typer.echo(f"worker on {', '.join(queues)}")
    run_forever(engine, queues, stop=lambda: stopping)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_command)
