"""The SMTP server and the SMS gateway down, then back: `idbroker worker` retries and delivers, once each.

Both are real and the test's own: aiosmtpd, stopped and started again on the same port, and Kannel
(bearerbox, smsbox and the fake SMSC), all three stopped and started again on the same ports. Messages are
queued while both are down; the worker (a real `idbroker worker` process) tries, fails, backs off and tries
again; once the gateways return, every message arrives exactly once and the audit log verifies.

The issue says "down for a minute", and so is it here: `FAULT_OUTAGE_SECONDS` (default 60; set it lower
for a quick local loop). The policy's back-off is shortened to 2 s doubling to at most 4 s, so the outage
outlasts the first back-off many times over, and every message fails many tries before it gets through.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import POLICIES_DIR
from fault_support import assert_audit_verifies, environment, log_tail, start, stop, wait_until
from plugins.contacts import SmtpServer, _Collector
from plugins.wecom import set_env
from services import kannel as kannel_service
from services.availability import ServiceUnavailable, free_port, missing
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.contacts.delivery import queue_message
from idbroker.contacts.models import MessageDelivery

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = float(os.environ.get("FAULT_OUTAGE_SECONDS", "60"))
BACKOFF = {"attempts": 20, "backoff_seconds": 2, "backoff_cap_seconds": 4, "lease_seconds": 30}
PHONES = [f"+86139{n:08d}" for n in range(1, 5)]
EMAILS = [f"fault{n}@example.edu.cn" for n in range(1, 5)]


class RestartableSmtp:
    """aiosmtpd on a fixed loopback port that can be stopped and started again; messages kept across."""

    def __init__(self) -> None:
        self.server = SmtpServer("127.0.0.1", free_port())
        self.controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(_Collector(self.server), hostname=self.server.host, port=self.server.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def own_kannel() -> Iterator[kannel_service.Kannel]:
    reason = kannel_service.missing_reason()
    if reason:
        missing(reason)
    try:
        gateway = kannel_service.start_kannel()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield gateway
    finally:
        gateway.stop()
        shutil.rmtree(gateway.directory, ignore_errors=True)


@pytest.fixture
def own_smtp() -> Iterator[RestartableSmtp]:
    smtp = RestartableSmtp()
    smtp.start()
    try:
        yield smtp
    finally:
        smtp.stop()


def deliveries(engine: Engine) -> list[MessageDelivery]:
    with Session(engine) as session:
        return list(session.scalars(select(MessageDelivery).order_by(MessageDelivery.id)))  # type: ignore[arg-type]


def test_messages_queued_while_smtp_and_kannel_are_down_arrive_once_when_they_return(
    engine: Engine,
    own_kannel: kannel_service.Kannel,
    own_smtp: RestartableSmtp,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES_DIR, policies)
    contacts = yaml.safe_load((policies / "contacts.yaml").read_text(encoding="utf-8"))
    contacts["delivery"] = BACKOFF
    (policies / "contacts.yaml").write_text(yaml.safe_dump(contacts, allow_unicode=True), encoding="utf-8")
    settings = set_env(
        monkeypatch,
        policies_dir=policies,
        sms_provider="kannel",
        kannel_sendsms_url=own_kannel.sendsms_url,
        kannel_username=kannel_service.USERNAME,
        kannel_password=kannel_service.PASSWORD,
        kannel_dlr_mask=0,  # no delivery reports: nothing listens for them here
        email_provider="smtp",
        smtp_host=own_smtp.server.host,
        smtp_port=own_smtp.server.port,
        smtp_security="none",
        smtp_from="idbroker@example.edu.cn",
    )
    env = environment(engine)
    own_kannel.forget()

    own_kannel.down()
    own_smtp.stop()
    with Session(engine) as session:
        for n, phone in enumerate(PHONES):
            params = {"code": f"{n + 1:06d}", "minutes": "10"}
            queue_message(
                session, settings, person_id=None, channel="sms", to=phone, template="phone_code", params=params
            )
        for n, address in enumerate(EMAILS):
            params = {"code": f"{n + 11:06d}", "minutes": "10"}
            queue_message(
                session, settings, person_id=None, channel="email", to=address, template="email_code", params=params
            )
        session.commit()
    went_down = time.monotonic()
    worker = start(env, "worker", "--queue", "contacts.deliver", log=tmp_path / "worker.log")
    try:
        wait_until(
            lambda: all(d.attempts >= 2 and d.state == "queued" for d in deliveries(engine)),
            "every message to fail and be retried while the gateways are down",
            timeout=60,
        )
        failing = deliveries(engine)
        assert all("unreachable" in (d.last_error or "") for d in failing), [d.last_error for d in failing]
        remaining = OUTAGE_SECONDS - (time.monotonic() - went_down)
        if remaining > 0:
            time.sleep(remaining)
        assert own_kannel.read_messages() == [] and own_smtp.server.messages == []

        own_kannel.up()
        own_smtp.start()
        wait_until(
            lambda: all(d.state == "sent" for d in deliveries(engine)),
            "every message to be sent after the gateways returned",
            timeout=2 * BACKOFF["backoff_cap_seconds"] + 30,
        )
        time.sleep(2)  # room for a duplicate to show up, if the worker were to send one
    finally:
        stop(worker)

    sent = deliveries(engine)
    assert all(d.attempts >= 3 and d.params_cipher is None and d.last_error is None for d in sent), log_tail(
        tmp_path / "worker.log"
    )
    arrived_sms = Counter(m.to for m in own_kannel.read_messages())
    assert arrived_sms == Counter(PHONES)  # each message once, none twice
    codes = {m.to: m.text for m in own_kannel.read_messages()}
    assert all(f"{n + 1:06d}" in codes[phone] for n, phone in enumerate(PHONES))
    arrived_mail = Counter(m["To"] for m in own_smtp.server.messages)
    assert arrived_mail == Counter(EMAILS)
    with Session(engine) as session:
        recorded = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "contact.delivery.sent")
        )
    assert recorded == len(PHONES) + len(EMAILS)
    assert_audit_verifies(env)
