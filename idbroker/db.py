"""The engine and sessions. SQLite gets WAL, a busy timeout and write-ahead `BEGIN IMMEDIATE`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Engine, Table, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from idbroker.config import get_settings


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE below applies.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # Take the write lock at the start: a transaction that reads then writes never fails midway.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back on any error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def bulk_update_by_id(session: Session, table: Table, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """`UPDATE table SET col = … WHERE id = …` for many rows at driver speed.

    Each row is the new values in `columns` order, then the id; values must already be in the form the
    column's type sends to the driver (use `driver_value`), so no per-row processing happens here.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    assignments = []
    for name in columns:
        cast = "::json" if dialect.name == "postgresql" and isinstance(table.c[name].type, JSON) else ""
        assignments.append(f"{name} = {marker}{cast}")
    sql = f"UPDATE {table.name} SET {', '.join(assignments)} WHERE id = {marker}"  # noqa: S608 (names from the schema)
    session.connection().exec_driver_sql(sql, rows)


def driver_value(session: Session, column: Column[Any], value: Any) -> Any:
    """A value as SQLAlchemy would send it to the driver for this column (JSON text, datetime string…)."""
    processor = column.type.bind_processor(session.get_bind().dialect)
    if processor is not None:
        return processor(value)
    if isinstance(column.type, JSON):  # psycopg adapts JSON itself; as raw SQL it needs the text
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value
