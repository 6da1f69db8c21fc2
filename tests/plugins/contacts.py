"""Fixtures for contacts: a real SMTP server, real Kannel with its fake SMSC, the cloud SMS stand-in, people.

- `smtp_server` — aiosmtpd on a free loopback port collecting every message (`messages`, `wait_for(to)`);
  `smtp_tls_server` — the same requiring STARTTLS and AUTH (`USERNAME`/`PASSWORD`), with its CA file.
- `kannel` (session) — bearerbox + smsbox + fakesmsc from Debian's `kannel` packages on free loopback ports
  (`services.kannel.Kannel`: `sendsms_url`, `read_messages()`, `wait_for(to)` — UCS-2 decoded, parts joined).
- `cloud_sms` — the Aliyun SendSms stand-in (`standins.cloud_sms.CloudSmsStandIn`) on a live port, reset per test.
- `use_kannel`, `use_smtp`, `use_cloud_sms` — point the broker's settings (environment) at them.
- `import_rows(engine, source, rows)` — a real `run_import` of CSV rows (tests.factories); `deliver(engine)` —
  run the due delivery jobs the way `idbroker worker` does.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from factories import BILLING_HEADER, CAS_HEADER, HR_HEADER, STUDENT_HEADER, write_csv
from services import kannel as kannel_service
from services.availability import ServiceUnavailable, free_port, missing
from sqlalchemy import Engine
from sqlmodel import Session
from standins.cloud_sms import CloudSmsStandIn
from standins.server_thread import ServerThread

import idbroker.config
from idbroker.config import get_settings
from idbroker.contacts.delivery import QUEUE
from idbroker.jobs.worker import run_once
from idbroker.sources.importer import run_import

HEADERS = {"student": STUDENT_HEADER, "hr": HR_HEADER, "cas": CAS_HEADER, "billing": BILLING_HEADER}
SMTP_USER = "idbroker"
SMTP_PASSWORD = "smtp-test-secret"  # a throwaway server on loopback


# --- SMTP --------------------------------------------------------------------------------------------------


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path | None = None
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, to: str, *, count: int = 1, timeout: float = 10.0) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [m for m in self.messages if m["To"] == to]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} message(s) arrived for that address, expected {count}")
            time.sleep(0.02)


class _Collector:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.server.lock:
            self.server.messages.append(message)  # type: ignore[arg-type]
            self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _start_smtp(*, tls: bool) -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    server = SmtpServer("127.0.0.1", free_port())
    options: dict[str, Any] = {}
    if tls:
        directory = Path(tempfile.mkdtemp(prefix="idbroker-smtp-"))
        cert, key = _self_signed(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server.ca_file = cert

        def authenticate(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                SMTP_USER.encode(),
                SMTP_PASSWORD.encode(),
            )
            return AuthResult(success=ok, handled=False)

        options = {
            "tls_context": context,
            "require_starttls": True,
            "authenticator": authenticate,
            "auth_required": True,
        }
    controller = Controller(_Collector(server), hostname=server.host, port=server.port, **options)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    yield from _start_smtp(tls=False)


@pytest.fixture
def smtp_tls_server() -> Iterator[SmtpServer]:
    yield from _start_smtp(tls=True)


def _set(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"IDBROKER_{name.upper()}", value)
    idbroker.config.get_settings.cache_clear()


@pytest.fixture
def use_smtp(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    _set(
        monkeypatch,
        email_provider="smtp",
        smtp_host=smtp_server.host,
        smtp_port=str(smtp_server.port),
        smtp_security="none",
        smtp_from="idbroker@example.edu.cn",
    )
    return smtp_server


# --- Kannel ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kannel() -> Iterator[kannel_service.Kannel]:
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


def kannel_env(gateway: kannel_service.Kannel) -> dict[str, str]:
    return {
        "sms_provider": "kannel",
        "kannel_sendsms_url": gateway.sendsms_url,
        "kannel_username": kannel_service.USERNAME,
        "kannel_password": kannel_service.PASSWORD,
    }


@pytest.fixture
def use_kannel(kannel: kannel_service.Kannel, monkeypatch: pytest.MonkeyPatch) -> kannel_service.Kannel:
    _set(monkeypatch, **kannel_env(kannel))
    kannel.forget()
    return kannel


# --- the cloud SMS stand-in --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _cloud_sms_server() -> Iterator[tuple[CloudSmsStandIn, ServerThread]]:
    standin = CloudSmsStandIn()
    server = ServerThread(standin.app()).start()
    try:
        yield standin, server
    finally:
        server.stop()


@dataclass
class CloudSms:
    standin: CloudSmsStandIn
    url: str


@pytest.fixture
def cloud_sms(_cloud_sms_server: tuple[CloudSmsStandIn, ServerThread]) -> Iterator[CloudSms]:
    standin, server = _cloud_sms_server
    standin.reset()
    yield CloudSms(standin, server.url + "/")
    standin.reset()


@pytest.fixture
def use_cloud_sms(cloud_sms: CloudSms, monkeypatch: pytest.MonkeyPatch) -> CloudSms:
    from standins.cloud_sms import ACCESS_KEY_ID, ACCESS_KEY_SECRET, SIGN_NAME

    _set(
        monkeypatch,
        sms_provider="cloud",
        cloud_sms_endpoint=cloud_sms.url,
        cloud_sms_access_key_id=ACCESS_KEY_ID,
        cloud_sms_access_key_secret=ACCESS_KEY_SECRET,
        cloud_sms_sign_name=SIGN_NAME,
    )
    return cloud_sms


# --- people and work ---------------------------------------------------------------------------------------


def import_rows(engine: Engine, source: str, rows: list[list[str]], *, full: bool = True) -> Any:
    """Import CSV rows of `source` through the real importer (one transaction, linking and contacts included)."""
    directory = Path(tempfile.mkdtemp(prefix=f"idbroker-{source}-"))
    path = write_csv(directory / f"{source}.csv", HEADERS[source], rows)
    with Session(engine) as session:
        report = run_import(
            session, source=source, location=str(path), settings=get_settings(), actor="test", full=full
        )
        session.commit()
    return report


def deliver(engine: Engine, *, rounds: int = 50) -> int:
    """Run due delivery jobs as `idbroker worker --queue contacts.deliver --once` does; returns how many ran."""
    ran = 0
    while ran < rounds and run_once(engine, [QUEUE]):
        ran += 1
    return ran


def message_params(engine: Engine, delivery_id: int) -> dict[str, str]:
    """The values a queued message carries (its code or link), read the way the sender reads them."""
    import json

    from idbroker.contacts.models import MessageDelivery
    from idbroker.directory.protect import Protector

    with Session(engine) as session:
        delivery = session.get(MessageDelivery, delivery_id)
        assert delivery is not None and delivery.params_cipher, "the message was already sent (its values erased)"
        protector = Protector.from_settings(get_settings())
        return json.loads(protector.decrypt(delivery.params_cipher, purpose="message_params"))
