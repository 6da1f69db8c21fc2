"""Deliveries through real Kannel, real SMTP and the cloud SMS stand-in: states, retries, fallback, rates."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from factories import student
from plugins.contacts import SMTP_PASSWORD, SMTP_USER, CloudSms, SmtpServer, deliver, import_rows
from services.availability import free_port
from services.kannel import Kannel
from sqlalchemy import Engine, select
from sqlmodel import Session

import idbroker.config
from idbroker.config import get_settings
from idbroker.contacts.delivery import attempt, queue_message, rates
from idbroker.contacts.models import MessageDelivery
from idbroker.contacts.senders.gateway import Outgoing, Permanent
from idbroker.contacts.senders.smtp import SmtpSender
from idbroker.contacts.senders.templates import render
from idbroker.contacts.update_link import send_update_link
from idbroker.directory.queries import people_by_number
from idbroker.jobs.models import Job


@pytest.fixture
def person(engine: Engine) -> str:
    import_rows(
        engine,
        "student",
        [student("1120101234", "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678", "zs@example.edu.cn")],
    )
    with Session(engine) as session:
        return people_by_number(session, "1120101234")[0].id


def queue(engine: Engine, person: str, channel: str = "sms", to: str = "+8613900001234", **params: str) -> int:
    template = {"sms": "phone_code", "email": "email_code"}[channel]
    with Session(engine) as session:
        delivery = queue_message(
            session,
            get_settings(),
            person_id=person,
            channel=channel,
            to=to,
            template=template,
            params={"code": "246810", "minutes": "10", **params},
        )
        session.commit()
        return delivery.id  # type: ignore[return-value]


def state(engine: Engine, delivery_id: int) -> MessageDelivery:
    with Session(engine) as session:
        found = session.get(MessageDelivery, delivery_id)
        assert found is not None
        return found


def try_now(engine: Engine, delivery_id: int) -> str:
    with Session(engine) as session:
        found = session.get(MessageDelivery, delivery_id)
        assert found is not None
        found.next_attempt_at = found.next_attempt_at - timedelta(hours=1)  # the back-off has passed
        session.add(found)
        session.commit()
    with Session(engine) as session:
        return attempt(session, get_settings(), delivery_id).state


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"IDBROKER_{name.upper()}", value)
    idbroker.config.get_settings.cache_clear()


def test_a_code_goes_through_kannel_in_chinese_to_the_fake_smsc(
    engine: Engine, person: str, use_kannel: Kannel
) -> None:
    delivery_id = queue(engine, person, to="+8613900001234", code="135790")
    assert deliver(engine) >= 1  # the worker's way: the job claims and sends
    (message,) = use_kannel.wait_for("+8613900001234")
    assert "135790" in message.text and "验证码" in message.text and message.text.startswith("【示例大学】")
    assert message.kind == "ucs-2"
    found = state(engine, delivery_id)
    assert (found.state, found.provider, found.attempts) == ("sent", "kannel", 1)
    assert found.params_cipher is None  # the code is erased once it is out


def test_an_unreachable_gateway_is_retried_with_back_off_then_fails(
    engine: Engine, person: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, sms_provider="kannel", kannel_sendsms_url=f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms")
    delivery_id = queue(engine, person)
    deliver(engine)
    first = state(engine, delivery_id)
    assert (first.state, first.attempts) == ("queued", 1) and "unreachable" in (first.last_error or "")
    waits = [(first.next_attempt_at - first.sent_at).total_seconds() if first.sent_at else None]
    assert waits == [None]
    delays = []
    for _ in range(3):
        before = state(engine, delivery_id)
        try_now(engine, delivery_id)
        after = state(engine, delivery_id)
        delays.append(round((after.next_attempt_at - before.next_attempt_at - timedelta(hours=-1)).total_seconds()))
    assert delays[0] < delays[1] < delays[2]  # back-off doubles (10 s, 20 s, 40 s … after each try)
    assert try_now(engine, delivery_id) == "failed"  # the fifth try was the last
    assert state(engine, delivery_id).failed_at is not None
    with Session(engine) as session:
        job = session.exec(select(Job)).scalars().one()
        assert job.queue == "contacts.deliver"


def test_wrong_kannel_credentials_fail_at_once(
    engine: Engine, person: str, use_kannel: Kannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, kannel_password="not-the-password")
    delivery_id = queue(engine, person)
    with Session(engine) as session:
        assert attempt(session, get_settings(), delivery_id).state == "failed"
    found = state(engine, delivery_id)
    assert found.attempts == 1 and "Authorization failed" in (found.last_error or "")


def test_an_update_link_falls_back_to_email_when_the_sms_fails(
    engine: Engine, person: str, use_smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(
        monkeypatch,
        sms_provider="kannel",
        kannel_password="wrong",
        kannel_sendsms_url=f"http://127.0.0.1:{free_port()}/x",
    )
    with Session(engine) as session:
        sent = send_update_link(session, person, "sms", actor="staff:helpdesk1")
        session.commit()
    for _ in range(5):
        try_now(engine, sent.delivery_id)
    assert state(engine, sent.delivery_id).state == "failed"
    with Session(engine) as session:
        replacement = (
            session.exec(
                select(MessageDelivery).where(MessageDelivery.fallback_of == sent.delivery_id)  # type: ignore[arg-type]
            )
            .scalars()
            .one()
        )
        assert replacement.channel == "email" and replacement.recipient_hint == "z***@example.edu.cn"
    deliver(engine)
    (mail,) = use_smtp.wait_for("zs@example.edu.cn")
    assert "/me/update/" in mail.get_content() and "更新" in mail["Subject"]


def test_codes_never_fall_back_to_another_channel(
    engine: Engine, person: str, use_smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, sms_provider="kannel", kannel_sendsms_url=f"http://127.0.0.1:{free_port()}/x")
    delivery_id = queue(engine, person)
    for _ in range(5):
        try_now(engine, delivery_id)
    assert state(engine, delivery_id).state == "failed"
    with Session(engine) as session:
        assert len(session.exec(select(MessageDelivery)).scalars().all()) == 1
    assert use_smtp.messages == []


def test_an_email_code_over_starttls_with_authentication(
    engine: Engine, person: str, smtp_tls_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(
        monkeypatch,
        email_provider="smtp",
        smtp_host=smtp_tls_server.host,
        smtp_port=str(smtp_tls_server.port),
        smtp_security="starttls",
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_ca_file=str(smtp_tls_server.ca_file),
        smtp_from="idbroker@example.edu.cn",
    )
    delivery_id = queue(engine, person, "email", "zs@example.edu.cn", code="864209", minutes="10")
    deliver(engine)
    (mail,) = smtp_tls_server.wait_for("zs@example.edu.cn")
    assert "864209" in mail.get_content() and mail["Subject"] == "示例大学统一身份：邮箱验证码"
    assert state(engine, delivery_id).state == "sent"


def test_smtp_refusals_are_permanent(smtp_tls_server: SmtpServer, smtp_server: SmtpServer) -> None:
    message = render(get_settings(), "email_code", "email", {"code": "1", "minutes": "1"})
    outgoing = Outgoing(1, "zs@example.edu.cn", message)
    wrong_password = SmtpSender(
        smtp_tls_server.host,
        smtp_tls_server.port,
        "a@example.edu.cn",
        "starttls",
        SMTP_USER,
        "nope",
        smtp_tls_server.ca_file,
    )
    with pytest.raises(Permanent, match="authentication"):
        wrong_password.send(outgoing)
    untrusted = SmtpSender(
        smtp_tls_server.host, smtp_tls_server.port, "a@example.edu.cn", "starttls", SMTP_USER, SMTP_PASSWORD
    )
    with pytest.raises(Permanent, match="certificate"):
        untrusted.send(outgoing)
    no_tls_offered = SmtpSender(smtp_server.host, smtp_server.port, "a@example.edu.cn", "starttls")
    with pytest.raises(Permanent, match="STARTTLS"):
        no_tls_offered.send(outgoing)
    assert smtp_tls_server.messages == [] and smtp_server.messages == []


def test_the_cloud_sms_api_gets_a_signed_request_with_the_registered_template(
    engine: Engine, person: str, use_cloud_sms: CloudSms
) -> None:
    delivery_id = queue(engine, person, to="+8613900005678", code="112233")
    deliver(engine)
    (message,) = use_cloud_sms.standin.messages
    assert (message.phone, message.template_code, message.params) == (
        "13900005678",
        "SMS_000000001",
        {"code": "112233"},
    )
    assert message.out_id == str(delivery_id) and message.text.startswith("【示例大学】")
    found = state(engine, delivery_id)
    assert found.state == "sent" and found.provider == "cloud" and found.provider_ref == message.biz_id


def test_cloud_outages_are_retried_and_refusals_are_not(
    engine: Engine, person: str, use_cloud_sms: CloudSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cloud_sms.standin.fail_next = 1
    retried = queue(engine, person, to="+8613900005679")
    deliver(engine)
    assert state(engine, retried).state == "queued"
    assert try_now(engine, retried) == "sent"
    set_env(monkeypatch, cloud_sms_access_key_secret="not-the-secret")
    refused = queue(engine, person, to="+8613900005680")
    deliver(engine)
    found = state(engine, refused)
    assert found.state == "failed" and "SignatureDoesNotMatch" in (found.last_error or "")


def test_delivery_rates_per_channel_and_day(
    engine: Engine, person: str, use_kannel: Kannel, use_smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        queue(engine, person, to=f"+861390000{i:04d}")
    queue(engine, person, "email", "zs@example.edu.cn")
    deliver(engine)
    set_env(monkeypatch, kannel_password="wrong")
    queue(engine, person, to="+8613900009999")
    deliver(engine)
    with Session(engine) as session:
        found = {r.channel: r for r in rates(session, days=7)}
    sms, email = found["sms"], found["email"]
    assert (sms.total, sms.sent, sms.failed) == (4, 3, 1) and sms.handed_over == 0.75
    assert (email.total, email.sent) == (1, 1) and email.handed_over == 1.0
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", sms.as_dict()["day"])
