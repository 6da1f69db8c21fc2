"""The primary phone and email: chosen by policies/contacts.yaml, recomputed on every change, explainable."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from factories import national_id, staff, student
from plugins.contacts import import_rows, message_params
from sqlalchemy import Engine
from sqlmodel import Session

import idbroker.config
from idbroker.config import get_settings
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.helpdesk import correct_contact
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.primary import describe, primary_choices, primary_contacts
from idbroker.contacts.provenance import contacts_of
from idbroker.contacts.self_service import choose_primary, remove_contact
from idbroker.contacts.targets import parse_phone
from idbroker.contacts.verification.state import Outcome
from idbroker.contacts.verification.strategy_code import send_code, submit_code
from idbroker.directory.queries import people_by_number

NID = national_id(date(1992, 5, 17), 31)


def person_of(engine: Engine, number: str) -> str:
    with Session(engine) as session:
        (person,) = people_by_number(session, number)
        return person.id


def phone_of(engine: Engine, person: str) -> str | None:
    with Session(engine) as session:
        return primary_contacts(session, person).phone


def explained(engine: Engine, person: str, kind: str = "phone") -> str:
    with Session(engine) as session:
        return "\n".join(describe(primary_choices(session, person)[kind]))


def verify(engine: Engine, person: str, phone: str) -> None:
    settings = get_settings()
    with Session(engine) as session:
        target = parse_phone(phone, contacts_policy(settings))
        started = send_code(session, settings, person_id=person, target=target, ip=None)
        session.commit()
    code = message_params(engine, started.delivery_id)["code"]
    with Session(engine) as session:
        assert submit_code(session, settings, person_id=person, flow_id=started.flow_id, code=code).outcome == (
            Outcome.VERIFIED
        )
        session.commit()


def contact_id(engine: Engine, person: str, value: str) -> int:
    with Session(engine) as session:
        return next(v.id for v in contacts_of(session, person) if v.value == value)


def test_a_phone_twins_share_is_primary_for_neither_until_one_verifies_it(engine: Engine) -> None:
    parent = "13811112222"
    import_rows(
        engine,
        "student",
        [
            student(
                "1120200001", "王一", "男", "2002-03-04", national_id(date(2002, 3, 4), 11), "本科", "2020", parent
            ),
            student(
                "1120200002", "王二", "男", "2002-03-04", national_id(date(2002, 3, 4), 13), "本科", "2020", parent
            ),
        ],
    )
    one, two = person_of(engine, "1120200001"), person_of(engine, "1120200002")
    assert one != two
    assert phone_of(engine, one) is None and phone_of(engine, two) is None
    assert "another person also holds it" in explained(engine, one)
    verify(engine, one, parent)
    assert phone_of(engine, one) == "+86" + parent
    assert phone_of(engine, two) is None  # still shared, and 王二 never proved it


def test_a_reimport_never_overwrites_what_the_person_verified(engine: Engine) -> None:
    row = student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13812345678")
    import_rows(engine, "student", [row])
    person = person_of(engine, "1120101234")
    verify(engine, person, "13812345678")
    import_rows(
        engine, "student", [student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13712345678")]
    )
    assert phone_of(engine, person) == "+8613812345678"
    with Session(engine) as session:
        assert primary_contacts(session, person).phone_verified
        verified = {v.value: v for v in contacts_of(session, person)}["+8613812345678"]
        assert verified.verified_method == "sms_code" and verified.verified_at is not None
    assert "verified by the person" in explained(engine, person)


def test_the_persons_word_beats_the_helpdesk_which_beats_every_source(engine: Engine) -> None:
    import_rows(
        engine, "student", [student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13812345678")]
    )
    person = person_of(engine, "1120101234")
    with Session(engine) as session:
        correct_contact(session, person, "phone", "13612345678", actor="staff:helpdesk1", reason="called, ticket 42")
        session.commit()
    assert phone_of(engine, person) == "+8613612345678"
    assert "confirmed by the helpdesk" in explained(engine, person)
    verify(engine, person, "13512345678")
    assert phone_of(engine, person) == "+8613512345678"
    with Session(engine) as session:
        confirmed = {v.value: v for v in contacts_of(session, person)}["+8613612345678"]
        assert confirmed.confirmed and confirmed.confirmed.confirmed_reason == "called, ticket 42"
        assert [(c.source, c.actor) for c in confirmed.claims] == [("helpdesk", "staff:helpdesk1")]
        with pytest.raises(ContactRefused, match="reason"):
            correct_contact(session, person, "phone", "13612345678", actor="staff:helpdesk1", reason=" ")


@pytest.fixture
def source_order_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(get_settings().policies_dir, policies)
    path = policies / "contacts.yaml"
    text = path.read_text(encoding="utf-8")
    old = "rules: [verified_by_person, confirmed_by_helpdesk, still_listed, freshest, source_order]"
    assert old in text
    path.write_text(
        text.replace(old, "rules: [verified_by_person, confirmed_by_helpdesk, still_listed, source_order, freshest]")
    )
    monkeypatch.setenv("IDBROKER_POLICIES_DIR", str(policies))
    idbroker.config.get_settings.cache_clear()


def import_teacher_then_student(engine: Engine) -> str:
    import_rows(engine, "hr", [staff("6120170032", "张帅", "男", "1992-05-17", NID, "13912345678")])
    import_rows(
        engine, "student", [student("2120143257", "张帅", "男", "1992-05-17", NID, "硕士", "2014", "13812345678")]
    )
    return person_of(engine, "6120170032")


def test_among_sources_the_freshest_value_wins_by_default(engine: Engine) -> None:
    person = import_teacher_then_student(engine)
    assert phone_of(engine, person) == "+8613812345678"
    assert "given most recently by a source" in explained(engine, person)


def test_the_rules_are_the_policy_source_order_first(engine: Engine, source_order_first: None) -> None:
    person = import_teacher_then_student(engine)
    assert phone_of(engine, person) == "+8613912345678"  # hr comes before student in source_order
    assert "earlier in the source order" in explained(engine, person)


def test_a_value_from_a_record_no_longer_listed_loses_to_a_listed_one(engine: Engine) -> None:
    others = [
        student("1120109998", "别人", "女", "1991-01-01", "", "本科", "2010", "13700000001"),
        student("1120109999", "他人", "男", "1991-02-02", "", "本科", "2010", "13700000002"),
    ]
    import_rows(engine, "billing", [["1120101234", "张帅", "13612345678"]])
    zhang = student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13812345678")
    import_rows(engine, "student", [zhang, *others])
    person = person_of(engine, "1120101234")
    assert phone_of(engine, person) == "+8613812345678"  # the freshest
    import_rows(engine, "student", others)  # 张帅 graduated: no longer in the full export
    assert phone_of(engine, person) == "+8613612345678"
    assert "still listed by a source" in explained(engine, person)


def test_a_fixed_line_is_never_the_primary_phone(engine: Engine) -> None:
    import_rows(engine, "hr", [staff("6120170032", "张帅", "男", "1992-05-17", NID, "010-62782114")])
    person = person_of(engine, "6120170032")
    assert phone_of(engine, person) is None
    assert "not a mobile number" in explained(engine, person)
    with Session(engine) as session:
        assert [v.phone_type for v in contacts_of(session, person)] == ["fixed_line"]


def test_choosing_a_verified_value_and_removing_a_stale_one(engine: Engine) -> None:
    import_rows(
        engine, "student", [student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13812345678")]
    )
    person = person_of(engine, "1120101234")
    verify(engine, person, "13612345678")
    verify(engine, person, "13512345678")
    assert phone_of(engine, person) == "+8613512345678"  # the latest word
    older = contact_id(engine, person, "+8613612345678")
    with Session(engine) as session:
        choose_primary(session, get_settings(), person, older)
        session.commit()
    assert phone_of(engine, person) == "+8613612345678"
    stale = contact_id(engine, person, "+8613812345678")
    with Session(engine) as session, pytest.raises(ContactRefused, match="verify"):
        choose_primary(session, get_settings(), person, stale)
    with Session(engine) as session:
        remove_contact(session, get_settings(), person, older)
        session.commit()
    assert phone_of(engine, person) == "+8613512345678"
    with Session(engine) as session:
        remove_contact(session, get_settings(), person, stale)
        session.commit()
    import_rows(engine, "billing", [["1120101234", "张帅", "13812345678"]])  # a source says it again…
    with Session(engine) as session:
        assert {v.value: v.removed for v in contacts_of(session, person)}["+8613812345678"]  # …still removed
    assert phone_of(engine, person) == "+8613512345678"


def test_another_persons_contact_cannot_be_chosen_or_removed(engine: Engine) -> None:
    import_rows(
        engine,
        "student",
        [
            student("1120101234", "张帅", "男", "1992-05-17", NID, "本科", "2010", "13812345678"),
            student("1120101235", "李娜", "女", "1993-02-03", "", "本科", "2010", "13712345678"),
        ],
    )
    owner, other = person_of(engine, "1120101234"), person_of(engine, "1120101235")
    verify(engine, owner, "13612345678")
    theirs = contact_id(engine, owner, "+8613612345678")
    with Session(engine) as session:
        for action in (choose_primary, remove_contact):
            with pytest.raises(ContactRefused) as caught:
                action(session, get_settings(), other, theirs)
            assert caught.value.status == 404
    assert phone_of(engine, owner) == "+8613612345678"
