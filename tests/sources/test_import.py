"""`run_import`: idempotent, incremental, problems with file/row/reason, nothing half-written."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from factories import STUDENT_HEADER, national_id, student, write_csv
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.config import get_settings
from idbroker.directory.models import Person, SourceRecord
from idbroker.directory.protect import Protector
from idbroker.sources.importer import MassDeactivation, run_import
from idbroker.sources.mapping import MappingError
from idbroker.sources.models import ImportRun
from idbroker.sources.tables import UnreadableFile

ID_A = national_id(date(2001, 3, 4), 12)  # even: female
ID_B = national_id(date(2002, 7, 8), 21)  # odd: male


def rows() -> list[list[str]]:
    return [
        student(
            "1120210001",
            "李娜",
            "女",
            "2001-03-04",
            ID_A,
            "本科",
            "2021",
            "13800138000",
            "lina@example.edu.cn",
        ),
        student("1120210002", "王刚", "男", "2002-07-08", ID_B, "本科", "2021", "13900139000"),
    ]


def do_import(engine: Engine, path: Path, *, full: bool = True, source: str = "student") -> Any:
    with Session(engine) as session:
        report = run_import(
            session, source=source, location=str(path), settings=get_settings(), actor="test", full=full
        )
        session.commit()
    return report


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        records = conn.execute(
            text(
                "SELECT source, key, person_id, present, name, phone, national_id_hash, row_hash, last_seen "
                "FROM source_record ORDER BY source, key"
            )
        ).all()
        people = conn.execute(text("SELECT id, state, merged_into FROM person ORDER BY id")).all()
    return [tuple(r) for r in records] + [tuple(p) for p in people]


def test_the_same_file_twice_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "students.csv", STUDENT_HEADER, rows())
    first = do_import(engine, path)
    assert first.counts["new"] == 2 and first.counts["read"] == 2
    before = snapshot(engine)
    second = do_import(engine, path)
    assert second.counts == {
        "read": 2,
        "new": 0,
        "updated": 0,
        "unchanged": 2,
        "inactive": 0,
        "skipped": 0,
        "fields_set_aside": 0,
    }
    assert snapshot(engine) == before
    with Session(engine) as session:
        imports = session.scalars(select(AuditEvent).where(AuditEvent.action == "import")).all()
        assert len(imports) == 2  # every import is recorded, even one that changed nothing


def test_a_changed_row_updates_and_a_missing_one_becomes_inactive(engine: Engine, tmp_path: Path) -> None:
    do_import(engine, write_csv(tmp_path / "a.csv", STUDENT_HEADER, rows()))
    changed = rows()[:1]
    changed[0][8] = "13700137000"
    report = do_import(engine, write_csv(tmp_path / "b.csv", STUDENT_HEADER, changed))
    assert (report.counts["updated"], report.counts["inactive"], report.counts["unchanged"]) == (1, 1, 0)
    with Session(engine) as session:
        gone = session.scalars(select(SourceRecord).where(SourceRecord.key == "1120210002")).one()
        assert gone.present is False and gone.person_id is not None  # graduates keep their person
        assert session.get(Person, gone.person_id) is not None
        kept = session.scalars(select(SourceRecord).where(SourceRecord.key == "1120210001")).one()
        assert kept.phone == "+8613700137000"
    # a partial export leaves absent records alone; the record comes back when listed again
    report = do_import(engine, write_csv(tmp_path / "c.csv", STUDENT_HEADER, rows()[1:]), full=False)
    assert report.counts["inactive"] == 0
    with Session(engine) as session:
        assert session.scalars(select(SourceRecord.present).where(SourceRecord.key == "1120210002")).one() is True
        assert session.scalars(select(SourceRecord.present).where(SourceRecord.key == "1120210001")).one() is True


def test_rows_that_cannot_be_records_are_skipped_with_row_and_reason(engine: Engine, tmp_path: Path) -> None:
    good = rows()
    path = tmp_path / "messy.csv"
    lines = [
        ",".join(STUDENT_HEADER),
        ",".join(good[0]),
        ",".join(good[0]),
        ",李四,男",
        "," + ",".join(good[1][1:]),
        ",".join(good[1]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = do_import(engine, path)
    reasons = {(p.row, p.level): p.reason for p in report.problems}
    assert "already in row 2" in reasons[(3, "skipped")]
    assert "wrong number of columns" in reasons[(4, "skipped")]
    assert "no key" in reasons[(5, "skipped")]
    assert report.counts["new"] == 2 and report.counts["skipped"] == 3
    assert all(str(p).startswith("messy.csv, row ") for p in report.problems)


def test_a_bad_field_is_set_aside_and_the_person_still_exists(engine: Engine, tmp_path: Path) -> None:
    bad_id = ID_A[:-1] + ("0" if ID_A[-1] != "0" else "1")
    row = student("1120210009", "赵敏", "女", "2001-02-30", bad_id, "专科", "2021", "12345")
    report = do_import(engine, write_csv(tmp_path / "bad.csv", STUDENT_HEADER, [row]))
    assert report.counts["new"] == 1 and report.counts["fields_set_aside"] == 4
    fields = {p.field for p in report.problems if p.level == "set_aside"}
    assert fields == {"national_id", "birth_date", "level", "phone"}
    with Session(engine) as session:
        record = session.scalars(select(SourceRecord).where(SourceRecord.key == "1120210009")).one()
        assert record.person_id is not None
        assert record.national_id_hash is None and record.birth_date is None and record.phone is None
        aside = {a["field"]: a for a in record.set_aside}
        assert bad_id not in str(record.set_aside)  # kept only encrypted
        assert Protector.from_settings(get_settings()).decrypt(aside["national_id"]["value"], "set_aside") == bad_id


def test_national_ids_are_only_hashed_and_encrypted(engine: Engine, tmp_path: Path) -> None:
    do_import(engine, write_csv(tmp_path / "s.csv", STUDENT_HEADER, rows()))
    with engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM source_record")) for v in row)
        dump += " ".join(str(v) for row in conn.execute(text("SELECT * FROM audit_event")) for v in row)
    assert ID_A not in dump and ID_B not in dump
    with Session(engine) as session:
        record = session.scalars(select(SourceRecord).where(SourceRecord.key == "1120210001")).one()
        assert record.national_id_cipher is not None
        assert Protector.from_settings(get_settings()).decrypt(record.national_id_cipher) == ID_A


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_chinese_exports_in_every_encoding(engine: Engine, tmp_path: Path, encoding: str) -> None:
    do_import(engine, write_csv(tmp_path / "s.csv", STUDENT_HEADER, rows(), encoding=encoding))
    with Session(engine) as session:
        names = set(session.scalars(select(SourceRecord.name)))
    assert names == {"李娜", "王刚"}


def test_xlsx_export(engine: Engine, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(STUDENT_HEADER)
    for row in rows():
        sheet.append([int(row[0]), *row[1:3], date(2001, 3, 4) if row[0].endswith("1") else row[3], *row[4:]])
    book.save(tmp_path / "s.xlsx")
    report = do_import(engine, tmp_path / "s.xlsx")
    assert report.counts["new"] == 2 and not report.problems
    with Session(engine) as session:
        assert set(session.scalars(select(SourceRecord.key))) == {"1120210001", "1120210002"}


def test_a_file_that_cannot_be_read_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\x80\xff\x81" * 50)
    with pytest.raises(UnreadableFile), Session(engine) as session:
        run_import(session, source="student", location=str(path), settings=get_settings(), actor="test")
    missing_columns = write_csv(tmp_path / "wrong.csv", ["学号", "名字"], [["1", "x"]])
    with pytest.raises(MappingError, match="姓名"), Session(engine) as session:
        run_import(session, source="student", location=str(missing_columns), settings=get_settings(), actor="t")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ImportRun)) == 0
        assert session.scalar(select(func.count()).select_from(SourceRecord)) == 0


def test_an_export_that_would_deactivate_most_records_is_refused(engine: Engine, tmp_path: Path) -> None:
    do_import(engine, write_csv(tmp_path / "all.csv", STUDENT_HEADER, rows()))
    with pytest.raises(MassDeactivation, match="2 of 2"), Session(engine) as session:
        run_import(
            session,
            source="student",
            location=str(write_csv(tmp_path / "empty.csv", STUDENT_HEADER, [])),
            settings=get_settings(),
            actor="test",
        )
    with Session(engine) as session:
        assert set(session.scalars(select(SourceRecord.present))) == {True}


def test_a_large_export_parsed_in_worker_processes_imports_the_same(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import idbroker.sources.parallel as parallel

    many = [
        student(f"11202{n:05d}", name, "男", "2003-01-02", "", "本科", "2022", f"138{n:08d}")
        for n, name in enumerate(["周杰", "吴磊", "郑凯", "張帥"] * 15)
    ]
    path = write_csv(tmp_path / "many.csv", STUDENT_HEADER, many)
    monkeypatch.setattr(parallel, "PARALLEL_ABOVE", 10)
    monkeypatch.setattr(parallel, "CHUNK", 7)
    report = do_import(sqlite_engine, path)
    assert report.counts["new"] == 60
    with Session(sqlite_engine) as session:
        stored = session.execute(select(SourceRecord.key, SourceRecord.name_key, SourceRecord.phone)).all()
    expected = {(row[0], "张帅" if row[1] == "張帥" else row[1], f"+86{row[8]}") for row in many}
    assert set(stored) == expected


def test_a_file_of_bad_rows_keeps_the_first_problems_and_counts_the_rest(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("idbroker.sources.report.MAX_PROBLEMS_KEPT", 5)
    lines = [",".join(STUDENT_HEADER), *[",张三,男" for _ in range(12)], ",".join(rows()[0])]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = do_import(sqlite_engine, path)
    assert report.counts["skipped"] == 12 and report.counts["new"] == 1  # every row counted
    assert [p.row for p in report.problems] == [2, 3, 4, 5, 6]  # the first ones kept, in file order
    assert report.problems_omitted == 7
