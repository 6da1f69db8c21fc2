"""The SMS path end to end through Kannel: messages per second the broker hands over, beside Kannel alone.

    .venv/bin/python bench/contacts_kannel.py [--messages 2000]

Kannel from Debian (bearerbox, smsbox and the fake SMSC, started as the test suite starts them) on loopback,
a fresh SQLite database. `--messages` verification codes are queued (each a delivery row with its encrypted
number and code, and a job), then one worker (`idbroker.jobs.worker.run_once`, as `idbroker worker` runs it)
hands them over: claim the job, claim the message, decrypt, render the Chinese template, `GET /cgi-bin/sendsms`
(coding=2, charset=UTF-8, dlr-url), record the outcome with its audit event. Beside it, in the same run, the
same number of `sendsms` requests straight from one HTTP client: what Kannel itself accepts. Finally the time
until the fake SMSC has received every message (Kannel's own pace). Times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the Kannel starter of the test suite


def key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    from services import kannel as kannel_service

    reason = kannel_service.missing_reason()
    if reason:
        raise SystemExit(f"bench/contacts_kannel.py: {reason}")
    directory = Path(tempfile.mkdtemp(prefix="idbroker-bench-kannel-"))
    gateway = kannel_service.start_kannel()
    try:
        os.environ.update(
            {
                "IDBROKER_DATABASE_URL": f"sqlite:///{directory / 'bench.db'}",
                "IDBROKER_NATIONAL_ID_HASH_KEY": key(),
                "IDBROKER_ENCRYPTION_KEY": key(),
                "IDBROKER_POLICIES_DIR": str(ROOT / "policies"),
                "IDBROKER_SMS_PROVIDER": "kannel",
                "IDBROKER_KANNEL_SENDSMS_URL": gateway.sendsms_url,
                "IDBROKER_KANNEL_USERNAME": kannel_service.USERNAME,
                "IDBROKER_KANNEL_PASSWORD": kannel_service.PASSWORD,
                "IDBROKER_KANNEL_DLR_MASK": "0",  # no broker listening for reports in this bench
            }
        )
        run(gateway, args.messages)
    finally:
        gateway.stop()
        shutil.rmtree(directory, ignore_errors=True)


def run(gateway: object, count: int) -> None:
    from services.kannel import PASSWORD, USERNAME
    from sqlmodel import Session, func, select

    from idbroker.config import get_settings
    from idbroker.contacts.delivery import QUEUE, queue_message
    from idbroker.contacts.models import MessageDelivery
    from idbroker.db import make_engine
    from idbroker.jobs.worker import run_once
    from idbroker.migrate import upgrade

    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    numbers = [f"+86139{i:08d}" for i in range(count)]
    started = time.perf_counter()
    with Session(engine) as session:
        for number in numbers:
            code = f"{secrets.randbelow(10**6):06d}"
            queue_message(
                session,
                settings,
                person_id=None,
                channel="sms",
                to=number,
                template="phone_code",
                params={"code": code, "minutes": "10"},
            )
        session.commit()
    queued = time.perf_counter() - started

    before = len(gateway.read_messages())  # type: ignore[attr-defined]
    started = time.perf_counter()
    while run_once(engine, [QUEUE]):
        pass
    broker = time.perf_counter() - started
    with Session(engine) as session:
        sent = session.scalar(select(func.count()).where(MessageDelivery.state == "sent"))

    text = "【示例大学】您的验证码是123456，10分钟内有效，用于验证您的手机号。如非本人操作，请忽略本短信。"
    started = time.perf_counter()
    with httpx.Client() as client:
        for i in range(count):
            params = {"username": USERNAME, "password": PASSWORD, "to": f"+86138{i:08d}", "text": text}
            params.update({"coding": "2", "charset": "UTF-8"})
            response = client.get(gateway.sendsms_url, params=params)  # type: ignore[attr-defined]
            assert response.status_code == 202, response.text
    direct = time.perf_counter() - started

    started = time.perf_counter()
    deadline = started + 600
    while len(gateway.read_messages()) - before < 2 * count and time.perf_counter() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.2)
    arrived = len(gateway.read_messages()) - before  # type: ignore[attr-defined]
    drained = time.perf_counter() - started

    print(f"Kannel 1.4.5 (bearerbox + smsbox + fake SMSC) on loopback; SQLite; {count} messages each")
    print(f"{os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"queue {count} codes (one transaction)          {queued:7.2f} s  {count / queued:8.0f} msg/s")
    print(f"broker worker hands over ({sent} sent)        {broker:7.2f} s  {count / broker:8.0f} msg/s")
    print(f"sendsms straight from one client (baseline) {direct:7.2f} s  {count / direct:8.0f} msg/s")
    print(f"fake SMSC received {arrived} of {2 * count} after a further {drained:.1f} s")
    engine.dispose()


if __name__ == "__main__":
    main()
