"""Sending limits per number, person, address and number block; bad numbers and addresses refused clearly;
nothing said about whether a number belongs to someone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import student
from plugins.contacts import import_rows
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.config import get_settings
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.models import MessageDelivery, VerificationFlow
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.targets import parse_email, parse_phone
from idbroker.contacts.verification.strategy_code import send_code
from idbroker.directory.queries import people_by_number


@pytest.fixture
def people(engine: Engine) -> list[str]:
    rows = [
        student(f"11201{i:05d}", f"学生{i}", "男", "2002-01-01", "", "本科", "2020", f"137000{i:05d}")
        for i in range(40)
    ]
    import_rows(engine, "student", rows)
    with Session(engine) as session:
        return [people_by_number(session, f"11201{i:05d}")[0].id for i in range(40)]


def send(engine: Engine, person: str, phone: str, ip: str | None = None) -> object:
    settings = get_settings()
    with Session(engine) as session:
        started = send_code(
            session, settings, person_id=person, target=parse_phone(phone, contacts_policy(settings)), ip=ip
        )
        session.commit()
    return started


def refusal(engine: Engine, person: str, phone: str, ip: str | None = None) -> ContactRefused:
    with pytest.raises(ContactRefused) as caught:
        send(engine, person, phone, ip)
    assert caught.value.status == 429 and caught.value.retry_after
    return caught.value


def age_flows(engine: Engine, by: timedelta) -> None:
    with Session(engine) as session:
        for flow in session.exec(select(VerificationFlow)).scalars():
            flow.created_at = flow.created_at - by
            session.add(flow)
        session.commit()


def sent(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(MessageDelivery)) or 0


def test_per_number_one_a_minute_five_an_hour_ten_a_day_whoever_asks(engine: Engine, people: list[str]) -> None:
    number = "13900001111"
    send(engine, people[0], number)
    first = refusal(engine, people[0], number)
    other = refusal(engine, people[1], number)  # another person: the same answer, nothing about the owner
    assert (first.code, first.reason) == (other.code, other.reason) == (first.code, first.reason)
    assert first.code == "limit_target" and "1/minute" in first.reason
    for _ in range(4):
        age_flows(engine, timedelta(minutes=2))
        send(engine, people[0], number)
    age_flows(engine, timedelta(minutes=2))
    assert "5/hour" in refusal(engine, people[2], number).reason
    for _ in range(5):
        age_flows(engine, timedelta(hours=1, minutes=1))
        send(engine, people[3], number)
    age_flows(engine, timedelta(hours=1, minutes=1))
    assert "10/day" in refusal(engine, people[4], number).reason
    assert sent(engine) == 10


def test_per_person_and_per_address_limits(engine: Engine, people: list[str]) -> None:
    for i in range(3):
        send(engine, people[0], f"1390000200{i}")
    assert refusal(engine, people[0], "13900002009").code == "limit_person"
    for i in range(10):  # ten different people behind one address
        send(engine, people[5 + i], f"1380{i:03d}7777", ip="203.0.113.9")
    assert refusal(engine, people[20], "13911117777", ip="203.0.113.9").code == "limit_ip"
    send(engine, people[20], "13911117777", ip="203.0.113.10")  # another address is not affected


def test_sms_pumping_over_sequential_numbers_is_stopped(engine: Engine, people: list[str]) -> None:
    """Many people, many addresses, consecutive numbers: the number-block limit holds at 20 an hour."""
    accepted, refused = 0, []
    for i in range(40):
        try:
            send(engine, people[i], f"13800000{i:03d}", ip=f"198.51.100.{i}")
            accepted += 1
        except ContactRefused as exc:
            refused.append(exc.code)
    assert accepted == contacts_policy(get_settings()).limits.per_block[0].count == 20
    assert set(refused) == {"limit_block"} and sent(engine) == 20


def test_the_answer_is_the_same_for_a_number_someone_holds_and_one_nobody_holds(
    engine: Engine, people: list[str]
) -> None:
    held = send(engine, people[0], "13700000007")  # another student's number, from the student export
    free = send(engine, people[1], "13600000007")
    assert type(held) is type(free)
    assert (held.channel, held.method) == (free.channel, free.method)  # type: ignore[attr-defined]
    assert held.expires_at - free.expires_at < timedelta(seconds=5)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("12345", "phone_invalid"),
        ("138-1234-567x", "phone_invalid"),
        ("", "phone_invalid"),
        ("+1 202 555 0123", "phone_foreign"),
        ("+44 7911 123456", "phone_foreign"),
        ("010-6278 2114", "phone_not_mobile"),
    ],
)
def test_malformed_foreign_and_fixed_line_numbers_are_refused(raw: str, code: str) -> None:
    with pytest.raises(ContactRefused) as caught:
        parse_phone(raw, contacts_policy(get_settings()))
    assert caught.value.code == code and caught.value.status == 400
    assert raw.strip() == "" or raw not in caught.value.reason


def test_spellings_of_one_mobile_are_one_number() -> None:
    policy = contacts_policy(get_settings())
    assert {parse_phone(raw, policy).value for raw in ("+86 138 1234 5678", "138-1234-5678", "8613812345678")} == {
        "+8613812345678"
    }


@pytest.mark.parametrize(
    "raw",
    [
        "zhang\u200bsan@example.edu.cn",  # zero-width space
        "zhang\u202esan@example.edu.cn",  # right-to-left override
        "zh\u0430ng@example.edu.cn",  # Cyrillic а that looks like a Latin a
        "ｚｈａｎｇ@example.edu.cn",  # full-width letters
        "张三@example.edu.cn",  # a non-ASCII local part
        "zhang san@example.edu.cn",
        "zhang@@example.edu.cn",
        "zhang@localhost",
    ],
)
def test_emails_with_odd_unicode_are_refused(raw: str) -> None:
    with pytest.raises(ContactRefused) as caught:
        parse_email(raw)
    assert caught.value.code in ("email_invalid", "email_unusual") and raw not in caught.value.reason


def test_plain_addresses_are_normalised() -> None:
    assert parse_email(" Zhang.San@Example.EDU.cn ").value == "zhang.san@example.edu.cn"
    assert parse_email("zhang＠example.edu.cn").value == "zhang@example.edu.cn"  # a full-width ＠ from a Chinese IME
    assert parse_email("a@例子.中国").value == "a@xn--fsqu00a.xn--fiqs8s"


def test_requests_at_once_for_one_number_do_not_pass_its_limit(engine: Engine, people: list[str]) -> None:
    import threading

    outcomes: list[str] = []

    def attempt(person: str) -> None:
        try:
            send(engine, person, "13900003333")
            outcomes.append("sent")
        except ContactRefused as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt, args=(person,)) for person in people[:6]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["limit_target"] * 5 + ["sent"]
    assert sent(engine) == 1
