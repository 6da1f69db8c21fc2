"""Alembic environment: the schema exists only through these migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from idbroker.db import make_engine
from idbroker.models import metadata

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run_with(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `idbroker db upgrade`")
run_migrations_online()
