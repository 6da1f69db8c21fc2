"""`idbroker.db.DriverStatement`: a Core statement run on the driver reads and writes exactly what the ORM
does (aware datetimes, booleans, NULLs), and a driver error is SQLAlchemy's, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from idbroker.db import DriverStatement
from idbroker.directory.models import Person

PEOPLE = Person.__table__  # type: ignore[attr-defined]
READ = DriverStatement(
    select(PEOPLE.c.id, PEOPLE.c.state, PEOPLE.c.merged_into, PEOPLE.c.created_at).where(PEOPLE.c.id == bindparam("id"))
)
WRITE = DriverStatement(
    insert(PEOPLE).values(
        id=bindparam("id"),
        state="active",
        merged_into=None,
        created_at=bindparam("at", type_=PEOPLE.c.created_at.type),
        updated_at=bindparam("at2", type_=PEOPLE.c.updated_at.type),
    )
)


def test_values_round_trip_as_the_orm_reads_them(engine: Engine) -> None:
    at = datetime(2026, 11, 25, 23, 30, 1, 123456, tzinfo=timezone(timedelta(hours=8)))
    with Session(engine) as session:
        _, count = WRITE.run(session, {"id": "p" * 32, "at": at, "at2": at})
        assert count == 1
        session.commit()
    with Session(engine) as session:
        rows, _ = READ.run(session, {"id": "p" * 32})
        orm = session.get(Person, "p" * 32)
        assert orm is not None
        assert rows == [("p" * 32, "active", None, orm.created_at)]
        assert rows[0][3] == at and rows[0][3].tzinfo == UTC  # stored in UTC, read back aware
        assert READ.run(session, {"id": "nobody"})[0] == []


def test_a_driver_error_is_sqlalchemys_and_changes_nothing(engine: Engine) -> None:
    at = datetime.now(UTC)
    with Session(engine) as session:
        WRITE.run(session, {"id": "q" * 32, "at": at, "at2": at})
        session.commit()
    with Session(engine) as session, pytest.raises(IntegrityError):
        WRITE.run(session, {"id": "q" * 32, "at": at, "at2": at})
    with Session(engine) as session:
        assert len(READ.run(session, {"id": "q" * 32})[0]) == 1
