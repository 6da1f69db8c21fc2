"""Verification codes: 6 digits, keyed hash only, 10 minutes, one per purpose, burned after 5 wrong tries;
each wrong, expired, replayed or foreign code gets its own answer and changes no contact."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import student
from plugins.contacts import import_rows, message_params
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from idbroker.config import get_settings
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.models import ContactPoint, MessageDelivery, VerificationFlow
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.primary import primary_contacts
from idbroker.contacts.provenance import contacts_of
from idbroker.contacts.targets import parse_email, parse_phone
from idbroker.contacts.verification.state import Outcome
from idbroker.contacts.verification.strategy_code import send_code, submit_code
from idbroker.directory.queries import people_by_number

NEW_PHONE = "13912345678"


@pytest.fixture
def people(engine: Engine) -> tuple[str, str]:
    import_rows(
        engine,
        "student",
        [
            student("1120101234", "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678"),
            student("1120101235", "李娜", "女", "1993-02-03", "", "本科", "2010", "13712345678"),
        ],
    )
    with Session(engine) as session:
        return people_by_number(session, "1120101234")[0].id, people_by_number(session, "1120101235")[0].id


def send(engine: Engine, person: str, phone: str = NEW_PHONE, ip: str | None = "10.1.2.3") -> tuple[str, str]:
    """Send a code to `phone` for `person`; returns (flow id, the code the message carries)."""
    settings = get_settings()
    with Session(engine) as session:
        started = send_code(
            session, settings, person_id=person, target=parse_phone(phone, contacts_policy(settings)), ip=ip
        )
        session.commit()
    return started.flow_id, message_params(engine, started.delivery_id)["code"]


def submit(engine: Engine, person: str, flow_id: str, code: str) -> Outcome:
    with Session(engine) as session:
        result = submit_code(session, get_settings(), person_id=person, flow_id=flow_id, code=code)
        session.commit()
    return result.outcome


def verified_values(engine: Engine, person: str) -> set[str]:
    with Session(engine) as session:
        return {v.value for v in contacts_of(session, person) if v.verified_at}


def shift(engine: Engine, **by: timedelta) -> None:
    """Move the flows' times (`created_at=`, `expires_at=`) as if time had passed."""
    with Session(engine) as session:
        for flow in session.exec(select(VerificationFlow)):
            for name, delta in by.items():
                setattr(flow, name, getattr(flow, name) + delta)
            session.add(flow)
        session.commit()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_the_right_code_verifies_and_the_new_phone_becomes_primary(engine: Engine, people: tuple[str, str]) -> None:
    person, _ = people
    flow_id, code = send(engine, person)
    assert len(code) == 6 and code.isdigit()
    with Session(engine) as session:
        flow = session.get(VerificationFlow, flow_id)
        assert flow is not None and flow.code_hash and code not in flow.code_hash
        assert NEW_PHONE not in flow.target_cipher and flow.expires_at - flow.created_at == timedelta(minutes=10)
    assert submit(engine, person, flow_id, code) == Outcome.VERIFIED
    with Session(engine) as session:
        views = {v.value: v for v in contacts_of(session, person)}
        phone = views["+86" + NEW_PHONE]
        assert phone.verified_method == "sms_code" and [c.source for c in phone.claims] == ["self_service"]
        assert primary_contacts(session, person).phone == "+86" + NEW_PHONE
        assert primary_contacts(session, person).phone_verified


def test_wrong_codes_burn_the_code_after_five_tries_and_change_nothing(engine: Engine, people: tuple[str, str]) -> None:
    person, _ = people
    flow_id, code = send(engine, person)
    outcomes = [submit(engine, person, flow_id, wrong(code)) for _ in range(100)]  # 100 wrong codes in a row
    assert outcomes[:4] == [Outcome.WRONG] * 4
    assert set(outcomes[4:]) == {Outcome.BURNED}
    assert submit(engine, person, flow_id, code) == Outcome.BURNED  # even the right one, now
    assert verified_values(engine, person) == set()
    with Session(engine) as session:
        assert session.get(VerificationFlow, flow_id).wrong_tries == 5  # type: ignore[union-attr]
        assert primary_contacts(session, person).phone == "+8613812345678"


def test_expired_replayed_superseded_and_malformed_codes_each_get_their_answer(
    engine: Engine, people: tuple[str, str]
) -> None:
    person, _ = people
    flow_id, code = send(engine, person)
    shift(engine, expires_at=timedelta(minutes=-11))
    assert submit(engine, person, flow_id, code) == Outcome.EXPIRED
    assert submit(engine, person, flow_id, "12345") == Outcome.MALFORMED
    assert submit(engine, person, flow_id, "１２３４５６x") == Outcome.MALFORMED

    first_id, first_code = send(engine, person, "13912340001")
    second_id, second_code = send(engine, person, "13912340002")  # one active code per purpose
    assert submit(engine, person, first_id, first_code) == Outcome.SUPERSEDED
    assert submit(engine, person, second_id, second_code) == Outcome.VERIFIED
    assert submit(engine, person, second_id, second_code) == Outcome.USED  # replayed
    assert verified_values(engine, person) == {"+8613912340002"}


def test_a_code_for_another_persons_challenge_is_refused_and_leaves_it_alone(
    engine: Engine, people: tuple[str, str]
) -> None:
    owner, intruder = people
    flow_id, code = send(engine, owner)
    assert submit(engine, intruder, flow_id, code) == Outcome.NOT_FOUND
    assert submit(engine, intruder, flow_id, wrong(code)) == Outcome.NOT_FOUND
    assert submit(engine, intruder, "no-such-flow", code) == Outcome.NOT_FOUND
    assert verified_values(engine, intruder) == set()
    with Session(engine) as session:
        assert session.get(VerificationFlow, flow_id).wrong_tries == 0  # type: ignore[union-attr]
    assert submit(engine, owner, flow_id, code) == Outcome.VERIFIED


def test_a_person_with_too_many_wrong_codes_is_locked_for_the_day(engine: Engine, people: tuple[str, str]) -> None:
    person, _ = people
    limit = contacts_policy(get_settings()).verification.failures_per_day  # 20 (NIST: cap failures per account)
    settings = get_settings()
    with Session(engine) as session:  # a pending email code (another purpose) waits meanwhile
        started = send_code(session, settings, person_id=person, target=parse_email("zs@example.edu.cn"), ip=None)
        session.commit()
    email_flow, email_code = started.flow_id, message_params(engine, started.delivery_id)["code"]
    for number in range(limit // 5):
        flow_id, code = send(engine, person, f"139123400{number:02d}")
        assert [submit(engine, person, flow_id, wrong(code)) for _ in range(5)][-1] == Outcome.BURNED
        shift(engine, created_at=timedelta(hours=-1))  # an hour passes: only the daily count matters
    assert submit(engine, person, email_flow, email_code) == Outcome.LOCKED
    with pytest.raises(ContactRefused, match="too many wrong codes today"):
        send(engine, person, "13912348888")
    assert verified_values(engine, person) == set()


def test_codes_and_numbers_never_reach_the_audit_log_or_the_database_in_clear(
    engine: Engine, people: tuple[str, str]
) -> None:
    person, _ = people
    flow_id, code = send(engine, person)
    submit(engine, person, flow_id, wrong(code))
    submit(engine, person, flow_id, code)
    with engine.connect() as connection:
        audit = " ".join(str(row) for row in connection.execute(text("SELECT actor, action, details FROM audit_event")))
        flows = " ".join(str(row) for row in connection.execute(text("SELECT * FROM verification_flow")))
        deliveries = " ".join(str(row) for row in connection.execute(text("SELECT * FROM message_delivery")))
    assert "contact.verification.start" in audit and "contact.verified" in audit
    assert "contact.verification.refused" in audit
    for secret in (code, NEW_PHONE):
        assert secret not in audit and secret not in flows and secret not in deliveries
    with Session(engine) as session:
        point = session.exec(select(ContactPoint).where(ContactPoint.value == "+86" + NEW_PHONE)).one()
        assert point.verified_flow_id == flow_id
        assert session.exec(select(MessageDelivery)).one().recipient_hint == "139****5678"
