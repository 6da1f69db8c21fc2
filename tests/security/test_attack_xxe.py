"""XXE and entity expansion in the XML the broker parses from outside: WeChat Work callbacks — the envelope
and, more to the point, the event inside it, which arrives correctly signed and encrypted (so only the
parser stands between it and the broker) — and the CAS server's ticket validation answer. Billion laughs,
quadratic blow-up, external entities, parameter entities and external DTDs are refused (400 for a callback,
nothing stored, no job queued, no outbound connection); the CAS answer is treated as CAS being unavailable.

Elsewhere (not repeated here): an entity bomb in the unsigned envelope (`tests/wecom/test_wecom_callbacks.py`)
and in a CAS answer (`tests/cas/test_cas_client.py`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from idbroker_adapters.cas.client import parse_service_response
from plugins.wecom import CORP_ID, signed_post, subscribe_xml
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.config import get_settings
from idbroker.jobs.models import Job
from idbroker.web.app import create_app
from idbroker.web.cas import CasUnavailable
from idbroker.wecom.callbacks.intake import WeComCallback


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port an external entity or DTD would be fetched from: nothing may connect to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(0.3)
        yield server


def nobody_connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except TimeoutError:
        return True
    return False


def payloads(port: int) -> dict[str, str]:
    event = subscribe_xml("wx-someone")
    body = event.removeprefix("<xml>")
    laughs = "".join(f'<!ENTITY l{n} "{"".join(f"&l{n - 1};" for _ in range(10))}">' for n in range(1, 10))
    return {
        "billion laughs": f'<!DOCTYPE xml [<!ENTITY l0 "lol">{laughs}]><xml><Note>&l9;</Note>{body}',
        "quadratic blow-up": f'<!DOCTYPE xml [<!ENTITY q "{"q" * 5_000}">]><xml><Note>{"&q;" * 500}</Note>{body}',
        "external entity (file)": f'<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Note>&x;</Note>{body}',
        "external entity (http)": f'<!DOCTYPE xml [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]><xml><N>&x;</N>{body}',
        "parameter entity": f'<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]>{event}',
        "external DTD": f'<!DOCTYPE xml SYSTEM "http://127.0.0.1:{port}/evil.dtd">{event}',
        "entity in the userid": f'<!DOCTYPE xml [<!ENTITY u "wx-someone">]>{event.replace("wx-someone", "&u;")}',
    }


@pytest.fixture
def client(sqlite_engine: Engine, wecom_settings: object) -> Iterator[TestClient]:
    with TestClient(create_app(get_settings())) as test_client:
        yield test_client


def counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        return (
            int(session.scalar(select(func.count()).select_from(WeComCallback)) or 0),
            int(session.scalar(select(func.count()).select_from(Job)) or 0),
        )


def test_a_signed_callback_whose_event_holds_entities_is_refused(
    sqlite_engine: Engine, client: TestClient, listener: socket.socket
) -> None:
    engine = sqlite_engine
    port = listener.getsockname()[1]
    for name, xml in payloads(port).items():
        query, body = signed_post(xml)
        response = client.post("/wecom/callback", params=query, content=body)
        assert response.status_code == 400, (name, response.status_code, response.text[:200])
        assert counts(engine) == (0, 0), name
    assert nobody_connected(listener)
    query, body = signed_post(subscribe_xml("wx-someone"))  # the control: the same event without entities
    assert client.post("/wecom/callback", params=query, content=body).status_code == 200
    assert counts(engine)[0] == 1


def test_an_envelope_with_an_external_entity_is_refused(
    sqlite_engine: Engine, client: TestClient, listener: socket.socket
) -> None:
    engine = sqlite_engine
    port = listener.getsockname()[1]
    query, body = signed_post(subscribe_xml("wx-someone"))
    for doctype in (
        f'<!DOCTYPE xml [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]>',
        f'<!DOCTYPE xml SYSTEM "http://127.0.0.1:{port}/evil.dtd">',
        '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/hostname">]>',
    ):
        evil = body.replace(b"<xml>", doctype.encode() + b"<xml>", 1).replace(
            f"<ToUserName><![CDATA[{CORP_ID}]]>".encode(), b"<ToUserName>&x;", 1
        )
        response = client.post("/wecom/callback", params=query, content=evil)
        assert response.status_code in (400, 403), doctype
    assert counts(engine) == (0, 0)
    assert nobody_connected(listener)


def test_a_cas_answer_with_external_entities_is_not_trusted(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    success = (
        '<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>'
        "<cas:user>{user}</cas:user></cas:authenticationSuccess></cas:serviceResponse>"
    )
    for doctype, user in (
        ('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
        (f'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/uid">]>', "&x;"),
        (f'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]>', "1120101234"),
        (f'<!DOCTYPE r SYSTEM "http://127.0.0.1:{port}/cas.dtd">', "1120101234"),
        ('<!DOCTYPE r [<!ENTITY u "1120101234">]>', "&u;"),  # even a harmless-looking one
    ):
        with pytest.raises(CasUnavailable):
            parse_service_response((doctype + success.format(user=user)).encode())
    assert nobody_connected(listener)
