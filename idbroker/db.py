"""The engine and sessions. SQLite gets WAL, a busy timeout and write-ahead `BEGIN IMMEDIATE`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Engine, Table, create_engine, event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.expression import Executable
from sqlmodel import Session

from idbroker.config import get_settings


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        _configure_sqlite(engine, get_settings().sqlite_cache_mib)
        return engine
    # hide_parameters: an error's text never carries the bound values (phones, names) into a log
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)


def _configure_sqlite(engine: Engine, cache_mib: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE below applies.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")  # negative: in KiB
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


def _marker(session: Session, table: Table, name: str) -> str:
    """The driver's placeholder for one column's value (JSON given as text needs a cast on PostgreSQL)."""
    dialect = session.get_bind().dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    return marker + ("::json" if dialect.name == "postgresql" and isinstance(table.c[name].type, JSON) else "")


@contextmanager
def bulk_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for one bulk unit of work (`idbroker import`, `idbroker link`).

    On SQLite, foreign keys are checked once, over the whole database, just before the commit, instead of
    once per written row: a row-by-row check costs a parent lookup each (10 of the 30 seconds of writing a
    million records' people), the whole check one or two seconds. A violation fails the commit exactly as a
    row-by-row check would fail the statement, and nothing is stored. The connection is never pooled again.
    PostgreSQL checks row by row, as always.
    """
    with engine.connect() as connection:
        if not is_sqlite(engine):
            yield connection
            return
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # outside a transaction, or SQLite ignores it
        event.listen(connection, "commit", _check_foreign_keys)
        try:
            yield connection
        finally:
            connection.invalidate()  # foreign keys stay off on it: it must not serve anyone else


def _check_foreign_keys(connection: Connection) -> None:
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    violations = dbapi_connection.execute("PRAGMA foreign_key_check").fetchall()
    if violations:
        table, rowid, parent, _ = violations[0]
        raise IntegrityError(
            "PRAGMA foreign_key_check",
            None,
            sqlite3.IntegrityError(f"{len(violations)} foreign key violations, first: {table} row {rowid} → {parent}"),
        )


def bulk_insert(session: Session, table: Table, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """`INSERT INTO table (columns) VALUES …` for many rows at driver speed; values as `driver_converter` gives."""
    if not rows:
        return
    markers = ", ".join(_marker(session, table, name) for name in columns)
    quoted = [session.get_bind().dialect.identifier_preparer.quote(name) for name in columns]
    names = ", ".join(quoted)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({markers})"  # noqa: S608 (names from the schema)
    session.connection().exec_driver_sql(sql, rows)


def bulk_update_by_id(session: Session, table: Table, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """`UPDATE table SET col = … WHERE id = …` for many rows at driver speed.

    Each row is the new values in `columns` order, then the id; values must already be in the form the
    column's type sends to the driver (use `driver_value`), so no per-row processing happens here.
    """
    if not rows:
        return
    assignments = [f"{name} = {_marker(session, table, name)}" for name in columns]
    sql = f"UPDATE {table.name} SET {', '.join(assignments)} WHERE id = {_marker(session, table, 'id')}"  # noqa: S608
    session.connection().exec_driver_sql(sql, rows)


def driver_value(session: Session, column: Column[Any], value: Any) -> Any:
    """A value as SQLAlchemy would send it to the driver for this column (JSON text, datetime string…)."""
    dialect = session.get_bind().dialect
    return _adapted(driver_converter(dialect, column)(value), dialect.name == "sqlite")


def dialect_named(drivername: str) -> Dialect:
    """A dialect without an engine (`sqlite`, `postgresql+psycopg`): for converting values in a worker process."""
    return make_url(f"{drivername}://").get_dialect()()  # type: ignore[no-any-return]


def driver_converter(dialect: Dialect, column: Column[Any]) -> Callable[[Any], Any]:
    """What turns this column's values into what SQLAlchemy would send to the driver: one lookup, many rows."""
    processor = column.type.bind_processor(dialect)
    if isinstance(column.type, JSON):  # psycopg adapts JSON itself; as raw SQL it needs the text
        return _empty_once(processor or _json_text)
    return processor or _same


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _same(value: Any) -> Any:
    return value


def _adapted(value: Any, sqlite: bool) -> Any:
    """A value as the sqlite3 driver itself would adapt it (a datetime → its text), done once, not per row."""
    return sqlite3.adapt(value, sqlite3.PrepareProtocol, value) if sqlite else value


def _empty_once(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A JSON converter that serialises the empty object and list once (most rows of a bulk write hold one)."""
    empty_object, empty_list = convert({}), convert([])

    def converted(value: Any) -> Any:
        if value == {} and isinstance(value, dict):
            return empty_object
        if value == [] and isinstance(value, list):
            return empty_list
        return convert(value)

    return converted


def driver_row(
    session: Session, table: Table, columns: list[str], fixed: Mapping[str, Any] | None = None
) -> tuple[list[str], Callable[[Mapping[str, Any]], tuple[Any, ...]]]:
    """The columns of a bulk write and what turns a mapping of their values into a row in that order.

    `fixed` values are the same in every row (a time, a run id): converted once, appended to every row.
    """
    steps = [(name, driver_converter(session.get_bind().dialect, table.c[name])) for name in columns]
    tail = tuple(driver_value(session, table.c[name], value) for name, value in (fixed or {}).items())

    def row(values: Mapping[str, Any]) -> tuple[Any, ...]:
        return (*[convert(values[name]) for name, convert in steps], *tail)

    return [*columns, *(fixed or {})], row


class DriverStatement:
    """A fixed SQLAlchemy Core statement run straight on the DBAPI cursor of the session's connection.

    SQLAlchemy compiles it once per dialect, and the columns' own types still convert every value both ways
    (aware datetimes, booleans, JSON), so what is written and read is exactly what the ORM writes and reads.
    What is skipped is SQLAlchemy's per-execution machinery — about 30 µs a statement, most of a statement's
    cost on the apps' release path (`bench/oidc_profile.py`). A driver error is raised as SQLAlchemy's
    (`sqlalchemy.exc.DBAPIError` and its subclasses), and a lost connection is invalidated, as for any other
    statement. For statements with fixed parameters only (no expanding `IN`).
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def run(self, session: Session, params: dict[str, Any] | None = None) -> tuple[list[tuple[Any, ...]], int]:
        """Execute in the session's transaction: (the rows, processed; the row count)."""
        return self._execute(session, params or {}, many=False)

    def run_many(self, session: Session, params: list[dict[str, Any]]) -> None:
        """Execute once per parameter set, in one driver call (`executemany`; psycopg pipelines it)."""
        if params:
            self._execute(session, params, many=True)

    def _execute(self, session: Session, params: Any, *, many: bool) -> tuple[list[tuple[Any, ...]], int]:
        connection = session.connection()
        dialect = connection.dialect
        compiled = self._by_dialect.get(dialect.name) or self._compile(dialect)
        arguments = [compiled.arguments(p) for p in params] if many else compiled.arguments(params)
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            if many:
                cursor.executemany(compiled.sql, arguments)
            else:
                cursor.execute(compiled.sql, arguments)
            raw = cursor.fetchall() if cursor.description else []
            count = cursor.rowcount
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
            if lost:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                compiled.sql, arguments, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
            ) from exc
        finally:
            cursor.close()
        converted = [(at, p) for at, p in enumerate(compiled.results) if p is not None]
        if not converted:
            return [tuple(row) for row in raw], count
        if len(converted) == 1:  # the common case (a date, a datetime): one conversion per row
            at, convert = converted[0]
            return [(*row[:at], convert(row[at]), *row[at + 1 :]) for row in raw], count
        rows = []
        for row in raw:
            values = list(row)
            for at, convert in converted:
                values[at] = convert(values[at])
            rows.append(tuple(values))
        return rows, count

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        assert not any(bind.expanding for bind in compiled.binds.values()), "expanding parameters are not supported"
        names = list(compiled.positiontup or []) if dialect.paramstyle in ("qmark", "numeric", "format") else None
        made = _Compiled(
            sql=compiled.string,
            positional=names,
            defaults={name: bind.value for name, bind in compiled.binds.items() if not bind.required},
            binds={
                name: processor
                for name, bind in compiled.binds.items()
                if (processor := bind.type._cached_bind_processor(dialect)) is not None
            },
            results=[
                column.type._cached_result_processor(dialect, None)
                for column in getattr(self.statement, "selected_columns", ())
            ],
        )
        self._by_dialect[dialect.name] = made
        return made


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: list[str] | None  # parameter names in order for a positional paramstyle (SQLite's `?`)
    defaults: dict[str, Any]  # literal values compiled into the statement as parameters
    binds: dict[str, Any]  # parameter name → the type's bind processor
    results: list[Any]  # per result column: the type's result processor, or None

    def arguments(self, params: dict[str, Any]) -> Any:
        values = {**self.defaults, **params} if self.defaults else params
        if self.binds:
            values = {name: (self.binds[name](v) if name in self.binds else v) for name, v in values.items()}
        if self.positional is not None:
            return tuple(values[name] for name in self.positional)
        return values


# Reads made ahead for a group of requests (`idbroker.web.grouped`): set-based statements fill them at the start of
# the group's transaction, and each is taken by as many requests as it was read for (`uses`), then read afresh.
_AHEAD = "idbroker.read_ahead"
NOT_READ: Any = object()
"""What `take_ahead` gives when nothing (more) was read ahead under that key."""


def put_ahead(session: Session, key: tuple[Any, ...], value: Any, *, uses: int = 1) -> None:
    session.info.setdefault(_AHEAD, {})[key] = [value, uses]


def take_ahead(session: Session, key: tuple[Any, ...]) -> Any:
    """The value read ahead under `key` in this session, or `NOT_READ` (never read, or all its uses taken)."""
    ahead = session.info.get(_AHEAD)
    entry = ahead.get(key) if ahead else None
    if entry is None:
        return NOT_READ
    entry[1] -= 1
    if entry[1] <= 0:
        del ahead[key]  # type: ignore[index]
    return entry[0]


def forget_ahead(session: Session) -> None:
    """Drop what is left (at the end of a group: nothing read ahead outlives its transaction)."""
    session.info.pop(_AHEAD, None)
