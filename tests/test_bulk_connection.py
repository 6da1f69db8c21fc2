"""`idbroker.db.bulk_connection`: the unit of work of `idbroker import` and `idbroker link`. On SQLite foreign
keys are checked once, before the commit, instead of row by row; a violation still stores nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.db import bulk_connection, bulk_insert, driver_row
from idbroker.directory.models import Person, SourceRecord

PEOPLE = Person.__table__  # type: ignore[attr-defined]
RECORDS = SourceRecord.__table__  # type: ignore[attr-defined]


def _record_rows(session: Session, person_id: str, keys: list[str]) -> tuple[list[str], list[tuple[object, ...]]]:
    now = utcnow()
    fixed = {"source": "billing", "present": True, "first_seen": now, "last_seen": now, "extra": {}, "set_aside": []}
    columns, as_row = driver_row(session, RECORDS, ["key", "row_hash", "person_id"], fixed)
    return columns, [as_row({"key": key, "row_hash": key, "person_id": person_id}) for key in keys]


def _count(engine: Engine, table: object) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(table)))  # type: ignore[arg-type]


def test_rows_pointing_at_people_written_in_the_same_unit_are_committed(engine: Engine) -> None:
    with bulk_connection(engine) as connection, Session(connection) as session:
        now = utcnow()
        columns, as_row = driver_row(session, PEOPLE, ["id"], {"state": "active", "created_at": now, "updated_at": now})
        bulk_insert(session, PEOPLE, columns, [as_row({"id": "p" * 26})])
        bulk_insert(session, RECORDS, *_record_rows(session, "p" * 26, ["a1", "a2"]))
        session.commit()
    assert _count(engine, RECORDS) == 2


def test_a_row_pointing_at_nobody_fails_the_commit_and_stores_nothing(engine: Engine) -> None:
    with pytest.raises(IntegrityError), bulk_connection(engine) as connection, Session(connection) as session:
        bulk_insert(session, RECORDS, *_record_rows(session, "nobody" * 4, ["b1", "b2", "b3"]))
        session.commit()
    assert _count(engine, RECORDS) == 0


def test_the_bulk_connection_never_serves_anyone_else(sqlite_engine: Engine) -> None:
    with bulk_connection(sqlite_engine) as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    for _ in range(3):  # whatever the pool hands out next checks foreign keys row by row again
        with sqlite_engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
