"""CLI: `idbroker serve` runs the web app under uvicorn (one or several worker processes); `idbroker openapi`
writes its OpenAPI document."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from idbroker.cli.db import fail, open_engine
from idbroker.cli.keys import require_keys

GRACEFUL_SHUTDOWN_SECONDS = 30
# uvicorn kills a worker that does not answer its supervisor's ping within this (default 5 s): on a busy host
# importing the app takes longer than that, and a restart loop followed
WORKER_HEALTHCHECK_SECONDS = 30


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (more than one needs PostgreSQL).")] = 1,
    reload: Annotated[bool, typer.Option("--reload", help="Restart on code changes (development only).")] = False,
) -> None:
    """Run the HTTP service (health: /health/live, /health/ready; metrics: /metrics; API docs: /docs).

    Logs are JSON lines on stderr (`IDBROKER_LOG_LEVEL`); uvicorn's own access log is off (it would write
    query strings: CAS tickets, codes). SIGTERM finishes the requests in flight (up to 30 s) and stops.
    """
    import uvicorn

    from idbroker.config import get_settings
    from idbroker.logs import logging_config

    if reload and workers > 1:
        raise fail("--reload runs a single process: drop --workers or --reload")
    require_keys()  # a missing or short key stops here, before any process accepts a request
    engine = open_engine()  # the settings and the database URL are checked before anything starts
    backend = engine.dialect.name
    engine.dispose()
    if workers > 1 and backend == "sqlite":
        raise fail(
            "SQLite has one writer: `idbroker serve --workers N` needs PostgreSQL "
            "(IDBROKER_DATABASE_URL=postgresql+psycopg://…); on SQLite serve with one worker"
        )
    settings = get_settings()
    with metrics_directory(settings.metrics_dir, workers):
        uvicorn.run(
            "idbroker.web.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            log_config=logging_config(settings.log_level),
            access_log=False,
            proxy_headers=False,  # the app believes X-Forwarded-* from IDBROKER_TRUSTED_PROXIES only (web/client.py)
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )


@contextmanager
def metrics_directory(configured: Path | None, workers: int) -> Iterator[None]:
    """With several workers, the directory where each writes its request metrics for /metrics to add up
    (prometheus_client's multiprocess mode): `IDBROKER_METRICS_DIR`, emptied first, or a temporary one."""
    if workers == 1:
        yield
        return
    directory = configured or Path(tempfile.mkdtemp(prefix="idbroker-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # the counts of an earlier run's processes
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # inherited by the worker processes
    try:
        yield
    finally:
        if configured is None:
            shutil.rmtree(directory, ignore_errors=True)


def openapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write (default: openapi/openapi.json).")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the file is out of date.")] = False,
) -> None:
    """Write the OpenAPI document generated from the app (checked in; a test fails when it drifts)."""
    from idbroker.openapi_doc import OPENAPI_PATH, render_openapi

    path = output or OPENAPI_PATH
    document = render_openapi()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != document:
            raise fail(f"{path} is out of date: run `idbroker openapi`")
        typer.echo(f"{path} is up to date")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("openapi")(openapi)
