"""The university's own example: four numbers of one 张帅 end as one person; another 张帅 stays apart."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from factories import (
    CAS_HEADER,
    HR_HEADER,
    STUDENT_HEADER,
    cas,
    national_id,
    staff,
    student,
    write_csv,
)
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.audit.verify import verify_chain
from idbroker.config import get_settings
from idbroker.directory.models import Person, SourceRecord
from idbroker.directory.queries import people_by_number
from idbroker.sources.importer import run_import

BIRTH = date(1992, 5, 17)
HIS_ID = national_id(BIRTH, 123)
OTHER_ID = national_id(date(1992, 11, 2), 457, region="320102")


def campus_files(tmp_path: Path) -> dict[str, Path]:
    students = [
        student("1120101234", "张帅", "男", "1992-05-17", HIS_ID, "本科", "2010", "13800001111", status="毕业"),
        # the master's record: a traditional-character spelling, a stale phone written another way, no ID
        student("2120143257", "張帥", "男", "1992/5/17", "", "硕士", "2014", "+86 139-0000-2222", status="毕业"),
        # the PhD record: a mistyped national ID (wrong check digit) is set aside, never compared
        student(
            "3120190289",
            "张帅",
            "男",
            "19920517",
            HIS_ID[:-2] + str((int(HIS_ID[-2]) + 1) % 10) + HIS_ID[-1],
            "博士",
            "2019",
            "8613900002222",
            "zs2019@example.edu.cn",
            status="毕业",
        ),
        # another 张帅, born the same year, with another national ID and the same college
        student("1120104321", "张帅", "男", "1992-11-02", OTHER_ID, "本科", "2010", "13700003333"),
    ]
    teachers = [
        staff("6120170032", "Zhang Shuai", "男", "1992-05-17", HIS_ID, "139 0000 2222", "zs2019@example.edu.cn")
    ]
    accounts = [
        cas("1120101234", "张帅", "13800001111"),
        cas("2120143257", "张帅", "13900002222"),
        cas("3120190289", "张帅", "13900002222", "zs2019@example.edu.cn"),
        cas("6120170032", "张帅", "13900002222", "zs2019@example.edu.cn", "faculty"),
        cas("1120104321", "张帅", "13700003333"),
    ]
    return {
        "student": write_csv(tmp_path / "student.csv", STUDENT_HEADER, students),
        "hr": write_csv(tmp_path / "hr.csv", HR_HEADER, teachers, encoding="gb18030"),
        "cas": write_csv(tmp_path / "cas.csv", CAS_HEADER, accounts),
    }


def load(engine: Engine, files: dict[str, Path]) -> None:
    for source in ("student", "hr", "cas"):
        with Session(engine) as session:
            run_import(session, source=source, location=str(files[source]), settings=get_settings(), actor="test")
            session.commit()


def test_four_numbers_are_one_person_and_the_homonym_is_another(engine: Engine, tmp_path: Path) -> None:
    load(engine, campus_files(tmp_path))
    with Session(engine) as session:
        people = {n: people_by_number(session, n) for n in ("1120101234", "2120143257", "3120190289", "6120170032")}
        assert all(len(found) == 1 for found in people.values()), people
        ids = {found[0].id for found in people.values()}
        assert len(ids) == 1
        (zhang,) = ids
        other = people_by_number(session, "1120104321")
        assert len(other) == 1 and other[0].id != zhang
        holdings = session.execute(
            select(SourceRecord.source, SourceRecord.key).where(SourceRecord.person_id == zhang)
        ).all()
        assert sorted(holdings) == sorted(
            [
                ("student", "1120101234"),
                ("student", "2120143257"),
                ("student", "3120190289"),
                ("hr", "6120170032"),
                ("cas", "1120101234"),
                ("cas", "2120143257"),
                ("cas", "3120190289"),
                ("cas", "6120170032"),
            ]
        )
        # the internal ID is opaque: no number of theirs is in it
        assert not any(number in zhang for number in people)
        assert session.scalar(select(func.count()).select_from(Person).where(Person.state == "active")) == 2
        assert verify_chain(session).ok


def test_the_order_of_imports_does_not_change_who_is_who(engine: Engine, tmp_path: Path) -> None:
    files = campus_files(tmp_path)
    for source in ("cas", "hr", "student"):
        with Session(engine) as session:
            run_import(session, source=source, location=str(files[source]), settings=get_settings(), actor="test")
            session.commit()
    with Session(engine) as session:
        ids = {people_by_number(session, n)[0].id for n in ("1120101234", "2120143257", "3120190289", "6120170032")}
        assert len(ids) == 1
        assert people_by_number(session, "1120104321")[0].id not in ids
