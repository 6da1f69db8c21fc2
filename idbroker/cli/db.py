"""CLI: `idbroker db upgrade|current` — migrate the database and show where its schema is.

Also the database plumbing the other command groups share: `open_engine()` and `database_errors()`, which
turn the expected failures (bad settings, an unreachable database, an unmigrated schema) into one clear
line on stderr and exit status 1, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from idbroker.config import Settings, get_settings
from idbroker.db import make_engine
from idbroker.migrate import current_revision, head_revision, upgrade

db_app = typer.Typer(no_args_is_help=True, help="Migrate the database and show its schema revision.")


def fail(message: str) -> typer.Exit:
    """Print `message` on stderr; the caller raises the returned exit (status 1)."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def load_settings() -> Settings:
    """The settings; invalid ones end the command with every problem named."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(f"invalid settings: {problems}") from None


def open_engine() -> Engine:
    """The engine of the configured database (`IDBROKER_DATABASE_URL`); bad settings end the command."""
    settings = load_settings()
    try:
        return make_engine(settings.database_url)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise fail(f"invalid IDBROKER_DATABASE_URL: {exc}") from None


def safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def database_errors(engine: Engine) -> Iterator[None]:
    """Expected database failures become a message naming the database (never its password)."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise fail(
            f"database error on {safe_url(engine)}: {detail}\n"
            "check that the database is running and migrated (`idbroker db upgrade`)"
        ) from None
    except CommandError as exc:
        raise fail(f"migration error: {exc}") from None


@db_app.command("upgrade")
def upgrade_command(
    revision: Annotated[str, typer.Argument(help="Target revision (default: the latest, `head`).")] = "head",
) -> None:
    """Migrate the database to REVISION (creating it first if it is a new SQLite file)."""
    engine = open_engine()
    with database_errors(engine):
        upgrade(engine, revision)
        current = current_revision(engine)
    engine.dispose()
    state = "at head" if current == head_revision() else f"head is {head_revision()}"
    typer.echo(f"database {safe_url(engine)} upgraded to revision {current} ({state})")


@db_app.command("current")
def current_command() -> None:
    """Print the database's schema revision and whether it is at head."""
    engine = open_engine()
    with database_errors(engine):
        current = current_revision(engine)
    engine.dispose()
    head = head_revision()
    if current == head:
        typer.echo(f"revision {current} (at head)")
    else:
        typer.echo(f"revision {current or 'none'} (not at head {head}: run `idbroker db upgrade`)")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
