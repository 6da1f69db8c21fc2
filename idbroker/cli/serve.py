"""CLI: `idbroker serve` runs the web app under uvicorn; `idbroker openapi` writes its OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from idbroker.cli.db import fail


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option("--reload", help="Restart on code changes (development only).")] = False,
) -> None:
    """Run the HTTP service (health: /health/live, /health/ready; API docs: /docs)."""
    import uvicorn

    if reload and workers > 1:
        raise fail("--reload runs a single process: drop --workers or --reload")
    uvicorn.run("idbroker.web.app:create_app", factory=True, host=host, port=port, workers=workers, reload=reload)


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
