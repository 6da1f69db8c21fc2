"""Every value knows every source that gave it and when; imports, merges and un-merges keep that true."""

from __future__ import annotations

from datetime import date

import pytest
from factories import national_id, staff, student
from plugins.contacts import import_rows
from sqlalchemy import Engine, func, select
from sqlmodel import Session

import idbroker.config
from idbroker.contacts.models import ContactClaim
from idbroker.contacts.primary import primary_contacts
from idbroker.contacts.provenance import contacts_of
from idbroker.directory.queries import people_by_number
from idbroker.jobs.models import Job
from idbroker.jobs.worker import run_once
from idbroker.linking.merge import merge_people, unmerge

NID = national_id(date(1992, 5, 17), 31)


def person_of(engine: Engine, number: str) -> str:
    with Session(engine) as session:
        (person,) = people_by_number(session, number)
        return person.id


def views(engine: Engine, person_id: str) -> dict[str, object]:
    with Session(engine) as session:
        return {v.value: v for v in contacts_of(session, person_id)}


def test_each_value_lists_every_source_that_gave_it_and_when(engine: Engine) -> None:
    import_rows(
        engine,
        "student",
        [student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13812345678", "zs@example.edu.cn")],
    )
    import_rows(engine, "hr", [staff("6120170032", "张帅", "男", "1992-05-17", NID, "139 1234 5678")])
    import_rows(engine, "billing", [["1120101234", "张帅", "+86 138-1234-5678"]])
    person = person_of(engine, "6120170032")
    found = views(engine, person)
    assert set(found) == {"+8613812345678", "+8613912345678", "zs@example.edu.cn"}
    shared = found["+8613812345678"]
    assert sorted((c.source, c.record_key) for c in shared.claims) == [
        ("billing", "1120101234"),
        ("student", "1120101234"),
    ]
    assert all(c.current and c.first_said and c.last_said >= c.first_said for c in shared.claims)
    assert [c.source for c in found["+8613912345678"].claims] == ["hr"]
    assert found["+8613912345678"].phone_type == "mobile"
    assert found["+8613812345678"].verified_at is None  # nobody proved anything yet


def test_a_changed_export_ends_the_old_claim_and_keeps_it_as_history(engine: Engine) -> None:
    row = student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13812345678")
    import_rows(engine, "student", [row])
    person = person_of(engine, "1120101234")
    with Session(engine) as session:
        assert primary_contacts(session, person).phone == "+8613812345678"
    import_rows(
        engine, "student", [student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13712345678")]
    )
    found = views(engine, person)
    old, new = found["+8613812345678"], found["+8613712345678"]
    assert [c.current for c in old.claims] == [False] and old.claims[0].until is not None
    assert [c.current for c in new.claims] == [True]
    with Session(engine) as session:
        assert primary_contacts(session, person).phone == "+8613712345678"


def test_an_unchanged_reimport_adds_no_claims_but_says_them_again(engine: Engine) -> None:
    row = student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13812345678")
    import_rows(engine, "student", [row])
    person = person_of(engine, "1120101234")
    before = views(engine, person)["+8613812345678"].claims[0]
    import_rows(engine, "student", [row])
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ContactClaim)) == 1
    after = views(engine, person)["+8613812345678"].claims[0]
    assert after.first_said == before.first_said and after.last_said > before.last_said


def test_merge_gathers_values_and_unmerge_gives_each_person_theirs_back(engine: Engine) -> None:
    import_rows(
        engine, "student", [student("1120101234", "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678")]
    )
    import_rows(engine, "hr", [staff("6120170032", "张帅", "男", "1993-01-02", "", "13912345678")])
    a, b = person_of(engine, "1120101234"), person_of(engine, "6120170032")
    assert a != b
    with Session(engine) as session:
        operation = merge_people(session, a, b, actor="test", reason="same person, checked by phone").id
        session.commit()
    assert set(views(engine, a)) == {"+8613812345678", "+8613912345678"}
    assert set(views(engine, b)) == set(views(engine, a))  # the absorbed ID shows its survivor
    with Session(engine) as session:
        unmerge(session, operation, actor="test", reason="not the same person")  # type: ignore[arg-type]
        session.commit()
    assert set(views(engine, a)) == {"+8613812345678"}
    assert set(views(engine, b)) == {"+8613912345678"}
    with Session(engine) as session:
        assert primary_contacts(session, a).phone == "+8613812345678"
        assert primary_contacts(session, b).phone == "+8613912345678"


def test_a_large_import_is_collected_by_the_worker_in_batches(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDBROKER_CONTACTS_INLINE_COLLECT_LIMIT", "2")
    idbroker.config.get_settings.cache_clear()
    rows = [
        student(f"11202{i:05d}", f"学生{i}", "男", "2002-01-01", "", "本科", "2020", f"137000{i:05d}") for i in range(5)
    ]
    import_rows(engine, "student", rows)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ContactClaim)) == 0  # too many: left to the worker
        assert [job.queue for job in session.exec(select(Job)).scalars()] == ["contacts.collect"]
    assert run_once(engine, ["contacts.collect"]) == 1
    person = person_of(engine, "1120200003")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ContactClaim)) == 5
        assert primary_contacts(session, person).phone == "+8613700000003"
