"""The `idbroker` command: one module per command group, each adding itself to the app.

`idbroker CMD …` imports only the module that registers CMD, so a command starts without importing every
other one (the web app, the OIDC provider…); `idbroker --help`, and `app` (tests), hold them all.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

MODULES = (
    "db", "imports", "link", "explain", "review", "export", "audit", "keys", "apps", "demo", "serve", "staff",
    "wecom", "worker", "contacts", "backup",
)  # fmt: skip
COMMAND_MODULES = {  # each top-level command and the module that registers it and all its subcommands (tests/cli)
    "db": ("db",),
    "import": ("imports",),
    "link": ("link",),
    "explain": ("explain",),
    "merge": ("review",),
    "unmerge": ("review",),
    "review": ("review",),
    "export": ("export",),
    "audit": ("audit",),
    "keys": ("keys",),
    "apps": ("apps",),
    "demo": ("demo",),
    "serve": ("serve",),
    "openapi": ("serve",),
    "staff": ("staff",),
    "wecom": ("wecom",),
    "worker": ("worker",),
    "contacts": ("contacts",),
    "backup": ("backup",),
}


def build(command: str | None = None) -> typer.Typer:
    """The app with every command, or only with the module of `command` when that is a known command."""
    app = typer.Typer(no_args_is_help=True, add_completion=False, help="idbroker: campus identity and privacy broker")

    @app.callback()
    def _commands() -> None:  # a group of commands even when the one module loaded registers a single command
        pass

    for name in COMMAND_MODULES.get(command or "", MODULES):
        importlib.import_module(f"idbroker.cli.{name}").register(app)
    return app


def main() -> None:
    """The console script (and `python -m idbroker.cli.main`)."""
    build(sys.argv[1] if len(sys.argv) > 1 else None)()


def __getattr__(name: str) -> Any:
    if name == "app":  # every command: what `typer.testing.CliRunner` and the documentation tools are given
        return build()
    raise AttributeError(name)


if __name__ == "__main__":
    main()
