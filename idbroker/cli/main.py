"""The `idbroker` command: one module per command group, each adding itself to this app."""

from __future__ import annotations

import typer

from idbroker.cli import (
    apps,
    audit,
    backup,
    contacts,
    db,
    demo,
    explain,
    export,
    imports,
    keys,
    link,
    review,
    serve,
    staff,
    wecom,
    worker,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="idbroker: campus identity and privacy broker")

for module in (
    db,
    imports,
    link,
    explain,
    review,
    export,
    audit,
    keys,
    apps,
    demo,
    serve,
    staff,
    wecom,
    worker,
    contacts,
    backup,
):
    module.register(app)


if __name__ == "__main__":
    app()
