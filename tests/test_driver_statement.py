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


def test_bulk_insert_and_update_write_what_the_orm_writes(engine: Engine) -> None:
    """`driver_row` + `bulk_insert` (the importer's, the linker's and the event log's bulk path) and
    `bulk_update_by_id` store values the ORM reads back exactly as it would have written them."""
    from datetime import date

    from idbroker.db import bulk_insert, bulk_update_by_id, driver_row, driver_value
    from idbroker.directory.models import SourceRecord

    records = SourceRecord.__table__  # type: ignore[attr-defined]
    at = datetime(2026, 12, 7, 9, 30, 1, 5, tzinfo=timezone(timedelta(hours=8)))
    values = [
        {"key": "k1", "birth_date": date(2001, 2, 3), "extra": {}, "set_aside": [], "row_hash": "h1"},
        {
            "key": "k2",
            "birth_date": None,
            "extra": {"宿舍": "7-301"},
            "set_aside": [{"field": "phone"}],
            "row_hash": "h2",
        },
    ]
    with Session(engine) as session:
        fixed = {"source": "billing", "present": True, "first_seen": at, "last_seen": at}
        columns, as_row = driver_row(session, records, ["key", "birth_date", "extra", "set_aside", "row_hash"], fixed)
        bulk_insert(session, records, columns, [as_row(v) for v in values])
        session.commit()
    with Session(engine) as session:
        billing = select(SourceRecord).where(SourceRecord.source == "billing")  # type: ignore[arg-type]
        stored = {r.key: r for r in session.scalars(billing)}
        assert stored["k1"].birth_date == date(2001, 2, 3) and stored["k2"].birth_date is None
        assert stored["k1"].extra == {} and stored["k1"].set_aside == []
        assert stored["k2"].extra == {"宿舍": "7-301"} and stored["k2"].set_aside == [{"field": "phone"}]
        assert stored["k1"].present is True and stored["k2"].first_seen == at and stored["k2"].first_seen.tzinfo == UTC
        k1_id, k2_id = stored["k1"].id, stored["k2"].id
        evidence = driver_value(session, records.c.link_evidence, {"outcome": "new"})
        linked = driver_value(session, records.c.linked_at, at)
        bulk_update_by_id(session, records, ["link_score", "linked_at", "link_evidence"],
                          [(12.5, linked, evidence, k1_id)])  # fmt: skip
        session.commit()
    with Session(engine) as session:
        k1 = session.get(SourceRecord, k1_id)
        assert k1 is not None
        assert (k1.link_score, k1.linked_at, k1.link_evidence) == (12.5, at, {"outcome": "new"})
        assert session.get(SourceRecord, k2_id).link_evidence is None  # type: ignore[union-attr]
