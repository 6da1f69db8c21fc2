"""Directory events: the feed that apps and WeChat Work follow sees people created, changed, merged, left."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from factories import STUDENT_HEADER, national_id, student, write_csv
from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.config import get_settings
from idbroker.directory.events import DirectoryEvent, events_after
from idbroker.directory.queries import people_by_number
from idbroker.linking.merge import merge_people, unmerge
from idbroker.sources.importer import run_import


def kinds(session: Session, after: int = 0) -> list[tuple[str, str]]:
    return [(e.kind, e.person_id) for e in events_after(session, after)]


def test_events_follow_the_life_of_a_person(engine: Engine, tmp_path: Path) -> None:
    settings = get_settings()
    rows = [
        student(
            "1120200001", "孔明", "男", "2002-02-02", national_id(date(2002, 2, 2), 5), "本科", "2020", "13800000011"
        ),
        student(
            "1120200002", "孔亮", "男", "2002-03-03", national_id(date(2002, 3, 3), 7), "本科", "2020", "13800000012"
        ),
    ]
    with Session(engine) as session:
        run_import(
            session,
            source="student",
            location=str(write_csv(tmp_path / "a.csv", STUDENT_HEADER, rows)),
            settings=settings,
            actor="t",
        )
        session.commit()
        a, b = (people_by_number(session, n)[0].id for n in ("1120200001", "1120200002"))
        assert sorted(kinds(session)) == sorted([("person.created", a), ("person.created", b)])
        cursor = max(e.id for e in session.scalars(select(DirectoryEvent)))  # type: ignore[type-var]
        rows[0][8] = "13900000011"
        run_import(
            session,
            source="student",
            location=str(write_csv(tmp_path / "b.csv", STUDENT_HEADER, rows[:1] + rows[1:])),
            settings=settings,
            actor="t",
        )
        session.commit()
        assert kinds(session, cursor) == [("person.updated", a)]
        cursor = max(e.id for e in session.scalars(select(DirectoryEvent)))  # type: ignore[type-var]
        op = merge_people(session, a, b, actor="t", reason="test")
        unmerge(session, op.id, actor="t", reason="test")  # type: ignore[arg-type]
        session.commit()
        assert kinds(session, cursor) == [("person.merged", a), ("person.unmerged", b)]
        cursor = max(e.id for e in session.scalars(select(DirectoryEvent)))  # type: ignore[type-var]
        run_import(
            session,
            source="student",
            location=str(write_csv(tmp_path / "c.csv", STUDENT_HEADER, rows[:1])),
            settings=settings,
            actor="t",
        )
        session.commit()
        assert kinds(session, cursor) == [("person.left", b)]
