"""Server-side sessions: a fresh value at login (no fixation), only its hash stored, TTL, idleness, logout."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from plugins.web import add_person, sign_in
from sqlalchemy import Engine, update
from sqlmodel import Session, select
from standins.cas_server import CasStandIn
from starlette.requests import Request

from idbroker.clock import utcnow
from idbroker.linking.merge import merge_people
from idbroker.web.csrf import FIELD
from idbroker.web.session import COOKIE_NAME, WebSession, current_login

UID = "1120101234"


def session_rows(engine: Engine) -> list[WebSession]:
    with Session(engine) as db:
        return list(db.exec(select(WebSession)).all())


def signed_in(client: TestClient) -> bool:
    return client.get("/staff/whoami").status_code != 401  # 401: nobody; 403: somebody without a role


def logout_token(client: TestClient) -> str:
    page = client.get("/", headers={"accept": "text/html"}).text
    return page.split(f'name="{FIELD}" value="', 1)[1].split('"', 1)[0]


def test_the_cookie_holds_a_random_value_and_the_table_only_its_hash(
    web_client: TestClient, cas_server: CasStandIn, engine: Engine
) -> None:
    add_person(engine, {"student": UID})
    response = sign_in(web_client, cas_server, UID)
    value = response.cookies[COOKIE_NAME]
    assert len(value) >= 40
    [row] = session_rows(engine)
    assert row.id == hashlib.sha256(value.encode()).hexdigest() and value not in row.id
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # public_url is http here; see the https test below
    assert row.expires_at - row.created_at == timedelta(hours=8)


@pytest.fixture
def live_server_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", {})


@pytest.mark.parametrize("live_server_overrides", [{"public_url": "https://id.example.edu"}], indirect=True)
def test_over_https_the_cookie_is_secure(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": UID})
    ticket = cas_server.issue_ticket(UID, "https://id.example.edu/login/cas?next=%2F")
    response = web_client.get("/login/cas", params={"next": "/", "ticket": ticket})
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


def test_a_session_value_set_before_login_is_not_kept(
    web_client: TestClient, cas_server: CasStandIn, engine: Engine
) -> None:
    add_person(engine, {"student": UID})
    planted = "attacker-chosen-session-value-0123456789abcdef"
    web_client.cookies.set(COOKIE_NAME, planted)
    response = sign_in(web_client, cas_server, UID)
    assert response.cookies[COOKIE_NAME] != planted
    [row] = session_rows(engine)
    assert row.id != hashlib.sha256(planted.encode()).hexdigest()
    attacker = TestClient(web_client.app, cookies={COOKIE_NAME: planted})
    assert not signed_in(attacker)


def test_signing_in_again_replaces_the_old_session(
    web_client: TestClient, cas_server: CasStandIn, engine: Engine
) -> None:
    add_person(engine, {"student": UID})
    first = sign_in(web_client, cas_server, UID).cookies[COOKIE_NAME]
    second = sign_in(web_client, cas_server, UID).cookies[COOKIE_NAME]
    assert first != second
    assert [row.id for row in session_rows(engine)] == [hashlib.sha256(second.encode()).hexdigest()]


def test_logout_ends_the_session(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": UID})
    value = sign_in(web_client, cas_server, UID).cookies[COOKIE_NAME]
    assert signed_in(web_client)
    response = web_client.post("/logout", data={FIELD: logout_token(web_client)})
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert session_rows(engine) == []
    assert not signed_in(web_client)
    replayed = TestClient(web_client.app, cookies={COOKIE_NAME: value})  # a copy of the old cookie is dead too
    assert not signed_in(replayed)


def age(engine: Engine, **changes: Any) -> None:
    with Session(engine) as db:
        db.exec(update(WebSession).values(**changes))  # type: ignore[call-overload]
        db.commit()


def test_a_session_ends_after_its_lifetime(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": UID})
    sign_in(web_client, cas_server, UID)
    age(engine, expires_at=utcnow() - timedelta(seconds=1))
    assert not signed_in(web_client)
    assert session_rows(engine) == []  # an expired session is deleted when it is seen


def test_a_session_ends_after_30_idle_minutes(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": UID})
    sign_in(web_client, cas_server, UID)
    age(engine, last_seen_at=utcnow() - timedelta(minutes=29))
    assert signed_in(web_client)  # and this request counts as activity
    [row] = session_rows(engine)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)
    age(engine, last_seen_at=utcnow() - timedelta(minutes=31))
    assert not signed_in(web_client)


def test_auth_time_is_when_cas_authenticated(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": UID})
    before = utcnow().replace(microsecond=0)
    sign_in(web_client, cas_server, UID)
    [row] = session_rows(engine)
    assert before - timedelta(seconds=1) <= row.auth_time <= utcnow()


def test_a_login_follows_a_merge_to_the_survivor(
    web_client: TestClient, cas_server: CasStandIn, engine: Engine
) -> None:
    absorbed = add_person(engine, {"student": UID})
    survivor = add_person(engine, {"hr": "6120170032"})
    value = sign_in(web_client, cas_server, UID).cookies[COOKIE_NAME]
    with Session(engine) as db:
        merge_people(db, survivor, absorbed, actor="test", reason="same person")
        db.commit()
    cookie = f"{COOKIE_NAME}={value}".encode()
    request = Request({"type": "http", "headers": [(b"cookie", cookie)], "app": web_client.app, "query_string": b""})
    login = current_login(request)
    assert login is not None and (login.person_id, login.uid) == (survivor, UID)
