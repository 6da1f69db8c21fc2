"""Fixtures for WeChat Work: the API stand-in on a live port, the broker's WeChat Work settings, people.

- `wecom_api` — the stand-in (`standins.wecom_api.WeComStandIn`), served once per session, reset for each test
  (limits, latency and token lifetime back to their defaults).
- `wecom_settings` — `IDBROKER_WECOM_*` pointing at the stand-in (a 1-second 45009 window), with the callback
  token and EncodingAESKey below; the settings cache cleared. Returns the settings.
- `campus_person(engine, ...)` — a person with records (number, name, mobile, email, 学院, status) of the
  given sources; `bulk_people(engine, n)` — n generated people written in bulk; `sync(engine)` — one full
  `Sync.run`; `wechatpy_crypto()` — wechatpy's own `WeChatCrypto` with the test token and key, the
  independent implementation callbacks are encrypted with.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine
from standins.server_thread import ServerThread
from standins.wecom_api import WeComStandIn

import idbroker.config
from idbroker.clock import utcnow
from idbroker.contacts.collect import collect_people
from idbroker.db import session_scope
from idbroker.directory.events import emit
from idbroker.directory.ids import new_person_id
from idbroker.directory.models import Person, SourceRecord
from idbroker.wecom.apply import Sync, SyncReport

CORP_ID = "wwstandin00000001"
CONTACTS_SECRET = "standin-contacts-secret"
CALLBACK_TOKEN = "QDG6eK"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture(scope="session")
def _wecom_server() -> Iterator[tuple[WeComStandIn, ServerThread]]:
    standin = WeComStandIn(corp_id=CORP_ID, secret=CONTACTS_SECRET)
    server = ServerThread(standin.app).start()
    try:
        yield standin, server
    finally:
        server.stop()


@pytest.fixture
def wecom_api(_wecom_server: tuple[WeComStandIn, ServerThread]) -> Iterator[WeComStandIn]:
    standin, server = _wecom_server
    defaults = WeComStandIn(corp_id=CORP_ID, secret=CONTACTS_SECRET)
    for name in ("token_ttl", "rate_limit", "rate_window", "concurrency_cap", "latency", "batch_delay"):
        setattr(standin, name, getattr(defaults, name))
    standin.event_callback = None
    standin.reset()
    standin.base_url = server.url
    yield standin
    standin.reset()


def wecom_environment(api_url: str) -> dict[str, str]:
    return {
        "IDBROKER_WECOM_CORP_ID": CORP_ID,
        "IDBROKER_WECOM_CONTACTS_SECRET": CONTACTS_SECRET,
        "IDBROKER_WECOM_CALLBACK_TOKEN": CALLBACK_TOKEN,
        "IDBROKER_WECOM_ENCODING_AES_KEY": ENCODING_AES_KEY,
        "IDBROKER_WECOM_API_BASE": f"{api_url}/cgi-bin/",
        "IDBROKER_WECOM_RATE_WINDOW_SECONDS": "1",
        "IDBROKER_WECOM_CONCURRENCY": "8",
    }


@pytest.fixture
def wecom_settings(
    wecom_api: WeComStandIn, test_settings: idbroker.config.Settings, monkeypatch: pytest.MonkeyPatch
) -> idbroker.config.Settings:
    for name, value in wecom_environment(wecom_api.base_url).items():
        monkeypatch.setenv(name, value)
    idbroker.config.get_settings.cache_clear()
    return idbroker.config.get_settings()


def set_env(monkeypatch: pytest.MonkeyPatch, **values: Any) -> idbroker.config.Settings:
    """Change `IDBROKER_*` settings for the rest of the test (e.g. `set_env(mp, wecom_concurrency=2)`)."""
    for name, value in values.items():
        monkeypatch.setenv(f"IDBROKER_{name.upper()}", str(value))
    idbroker.config.get_settings.cache_clear()
    return idbroker.config.get_settings()


@dataclass
class Role:
    source: str  # student | hr | cas | billing
    key: str
    status: str | None = "active"
    org: str | None = "计算机学院"
    phone: str | None = None
    email: str | None = None
    name: str | None = None


AFFILIATION = {"student": "student", "hr": "staff"}


def campus_person(engine: Engine, name: str, *roles: Role, person_id: str | None = None) -> str:
    """A person holding `roles` (present records), as an import and the linker would leave them."""
    person_id = person_id or new_person_id()
    with session_scope(engine) as db:
        db.add(Person(id=person_id))
        db.flush()
        for role in roles:
            add_record(db, person_id, name, role)
        emit(db, "person.created", person_id)  # what an import and the linker do
        collect_people(db, [person_id])  # … and the contacts engine chooses the primaries
    return person_id


def add_record(db: Any, person_id: str, name: str, role: Role) -> SourceRecord:
    record = SourceRecord(
        source=role.source,
        key=role.key,
        person_id=person_id,
        name=role.name or name,
        phone=role.phone,
        email=role.email,
        org=role.org if role.source in AFFILIATION else None,
        affiliation=AFFILIATION.get(role.source),
        status=role.status if role.source in AFFILIATION else None,
        row_hash=f"{role.source}:{role.key}",
        last_seen=utcnow(),
    )
    db.add(record)
    db.flush()
    return record


COLLEGES = ("计算机学院", "数学学院", "物理学院", "化学学院", "经济学院", "管理学院", "法学院", "文学院", "医学院")


def bulk_people(engine: Engine, count: int) -> list[str]:
    """`count` generated people written straight into the directory (as an import would leave them, but fast):
    one active role each — every tenth one staff, the others students of a 学院 — a mobile each, an email for
    every other one; then the contacts engine chooses their primaries. No real person: sequential numbers."""
    from sqlalchemy import insert

    now = utcnow()
    ids = [new_person_id() for _ in range(count)]
    people = [{"id": pid, "state": "active", "created_at": now, "updated_at": now} for pid in ids]
    records = []
    for n, pid in enumerate(ids):
        staff = n % 10 == 9
        source, key = ("hr", f"6{n:09d}") if staff else ("student", f"1{n:09d}")
        records.append(
            {
                "source": source,
                "key": key,
                "person_id": pid,
                "present": True,
                "name": f"学生{n}" if not staff else f"教师{n}",
                "phone": f"+86137{n:08d}",
                "email": f"b{n}@example.edu.cn" if n % 2 else None,
                "org": "教务处" if staff else COLLEGES[n % len(COLLEGES)],
                "affiliation": "staff" if staff else "student",
                "status": "active",
                "extra": {},
                "set_aside": [],
                "row_hash": f"{source}:{key}",
                "first_seen": now,
                "last_seen": now,
            }
        )
    with session_scope(engine) as db:
        db.execute(insert(Person), people)
        db.execute(insert(SourceRecord), records)
        db.flush()
        collect_people(db, ids)
    return ids


def sync(engine: Engine, **kwargs: Any) -> SyncReport:
    """One full sync with the current settings, as `idbroker wecom sync` runs it."""
    runner = Sync.open(engine, idbroker.config.get_settings())
    try:
        return runner.run(actor="test", **kwargs)
    finally:
        if runner.client is not None:
            runner.client.close()


def wechatpy_crypto() -> Any:
    from wechatpy.enterprise.crypto import WeChatCrypto

    return WeChatCrypto(CALLBACK_TOKEN, ENCODING_AES_KEY, CORP_ID)


def subprocess_environment(engine: Engine, api_url: str) -> dict[str, str]:
    """The environment a separate `idbroker` process needs to act on the test's database and stand-in: the
    test's own settings (the fixtures put them in the environment), whatever the test changed included."""
    env = {**wecom_environment(api_url), **os.environ}
    env["IDBROKER_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    return env


def use_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, **changes: Any) -> idbroker.config.Settings:
    """A copy of the repo's policies with `changes` made to wecom.yaml (e.g. batch_threshold=5), in use."""
    import shutil

    import yaml
    from conftest import POLICIES_DIR

    target = tmp_path / "policies"
    if not target.exists():
        shutil.copytree(POLICIES_DIR, target)
    path = target / "wecom.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return set_env(monkeypatch, policies_dir=target)


def change_record(engine: Engine, source: str, key: str, **values: Any) -> None:
    """Change a record as a re-import would (and let the contacts engine choose the primaries again)."""
    from sqlmodel import select

    with session_scope(engine) as db:
        record = db.exec(select(SourceRecord).where(SourceRecord.source == source, SourceRecord.key == key)).one()
        for name, value in values.items():
            setattr(record, name, value)
        record.last_seen = utcnow()
        db.add(record)
        db.flush()
        emit(db, "person.updated", record.person_id, reason="source record changed")
        collect_people(db, [record.person_id])


def member_of(engine: Engine, person_id: str) -> Any:
    """The recorded member made for this person ID."""
    from sqlmodel import select

    from idbroker.wecom.state import WeComMember

    with session_scope(engine) as db:
        return db.exec(select(WeComMember).where(WeComMember.person_id == person_id)).one()


def subscribe_xml(userid: str, event: str = "subscribe", at: int = 1_700_000_000) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{userid}]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        "<AgentID>1000002</AgentID></xml>"
    )


def change_contact_xml(change: str, *, at: int = 1_700_000_000, **fields: Any) -> str:
    """A change_contact event (since 2022-08-15 a member event carries only UserID and Department)."""
    body = "".join(f"<{name}><![CDATA[{value}]]></{name}>" for name, value in fields.items())
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>"
        f"<ChangeType>{change}</ChangeType>{body}</xml>"
    )


def wechatpy_encrypt(xml: str, nonce: str, timestamp: str, corp_id: str = CORP_ID) -> tuple[str, str]:
    """(Encrypt, msg_signature) of `xml` as wechatpy, an independent implementation, makes them."""
    import re

    from wechatpy.enterprise.crypto import WeChatCrypto

    envelope = WeChatCrypto(CALLBACK_TOKEN, ENCODING_AES_KEY, corp_id).encrypt_message(xml, nonce, timestamp)
    encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    return encrypt, signature


def signed_post(xml: str, *, nonce: str = "1372623149", timestamp: str = "1700000000") -> tuple[dict[str, str], bytes]:
    """(query, body) of a callback as WeChat Work sends it, encrypted and signed by wechatpy."""
    encrypt, signature = wechatpy_encrypt(xml, nonce, timestamp)
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        "<AgentID><![CDATA[1000002]]></AgentID></xml>"
    )
    return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}, body.encode()


def deliver(client: Any, xml: str, **kwargs: str) -> Any:
    """POST one callback through the broker's HTTP endpoint; returns the response."""
    query, body = signed_post(xml, **kwargs)
    return client.post("/wecom/callback", params=query, content=body)


def run_worker(engine: Engine, timeout: float = 15.0) -> int:
    """Run the callback jobs as `idbroker worker` does, until no stored callback waits; returns how many ran."""
    import time

    from sqlmodel import Session, func, select

    from idbroker.jobs.handlers import load_handlers
    from idbroker.jobs.worker import run_once
    from idbroker.wecom.callbacks.intake import WeComCallback

    load_handlers()
    ran = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while run_once(engine, ["wecom.callbacks"]):
            ran += 1
        with Session(engine) as session:
            waiting = session.exec(
                select(func.count()).select_from(WeComCallback).where(WeComCallback.processed_at.is_(None))  # type: ignore[union-attr]
            ).one()
        if not waiting:
            return ran
        time.sleep(0.1)  # the worker's idle poll: the next wake-up job is due shortly
    raise AssertionError("stored callbacks were not processed in time")
