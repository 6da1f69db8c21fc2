"""Incremental linking: a new record is linked against the people its keys reach, not the whole directory."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from factories import CAS_HEADER, STUDENT_HEADER, cas, national_id, student, write_csv
from sqlalchemy import Engine
from sqlmodel import Session

from idbroker.config import get_settings
from idbroker.directory.queries import people_by_number
from idbroker.sources.importer import run_import


def test_one_new_record_loads_only_its_neighbourhood(engine: Engine, tmp_path: Path) -> None:
    rows = [
        student(
            f"11202{n:05d}",
            name,
            "男",
            f"2003-01-{n % 28 + 1:02d}",
            national_id(date(2003, 1, n % 28 + 1), 2 * n + 1),
            "本科",
            "2022",
            f"138{n:08d}",
        )
        for n, name in enumerate(["周杰", "吴磊", "郑凯", "冯伟", "陈晨", "褚明", "卫东", "蒋涛"] * 25)
    ]
    settings = get_settings()
    with Session(engine) as session:
        run_import(
            session,
            source="student",
            location=str(write_csv(tmp_path / "s.csv", STUDENT_HEADER, rows)),
            settings=settings,
            actor="test",
        )
        session.commit()
    one = write_csv(tmp_path / "one.csv", CAS_HEADER, [cas("1120200007", "蒋涛", "13800000007")])
    with Session(engine) as session:
        report = run_import(session, source="cas", location=str(one), settings=settings, actor="test", full=False)
        session.commit()
        assert report.link is not None
        assert report.link["joined"] == 1 and report.link["new_people"] == 0
        assert 1 <= report.link["people_loaded"] <= 3  # the account's and the phone's owner, not 200 people
        (person,) = people_by_number(session, "1120200007")
        assert {r for r in person.id} and len({p.id for p in people_by_number(session, "1120200007")}) == 1
