"""Signing in through CAS over HTTP: the redirect, the callback, every refusal, no open redirect, the audit."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from plugins.web import add_person, sign_in
from sqlalchemy import Engine
from sqlmodel import Session, select
from standins.cas_server import CasStandIn

from idbroker.audit.models import AuditEvent
from idbroker.web.cas import safe_next, service_url
from idbroker.web.session import COOKIE_NAME, WebSession

HTML = {"accept": "text/html"}


def sessions(engine: Engine) -> list[WebSession]:
    with Session(engine) as db:
        return list(db.exec(select(WebSession)).all())


def login_events(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as db:
        return list(db.exec(select(AuditEvent).where(AuditEvent.action == "login").order_by(AuditEvent.seq)).all())


def test_login_redirects_to_cas_with_the_service_url_encoded(web_client: TestClient, cas_server: CasStandIn) -> None:
    response = web_client.get("/login", params={"next": "/me?tab=phones"})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(f"{cas_server.url}/login?service=http%3A%2F%2Ftestserver%2Flogin%2Fcas%3Fnext%3D")
    service = parse_qs(urlsplit(location).query)["service"][0]
    assert service == "http://testserver/login/cas?next=%2Fme%3Ftab%3Dphones"


def test_a_valid_ticket_signs_the_person_in(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    person = add_person(engine, {"student": "1120101234", "cas": "1120101234"})
    response = sign_in(web_client, cas_server, "1120101234", "/me?tab=phones")
    assert response.status_code == 303
    assert response.headers["location"] == "/me?tab=phones"
    assert COOKIE_NAME in response.cookies

    home = web_client.get("/", headers=HTML)
    assert "112****234" in home.text and "1120101234" not in home.text
    assert 'href="/me"' in home.text
    [row] = sessions(engine)
    assert row.person_id == person and row.uid == "1120101234" and row.auth_time is not None
    [event] = login_events(engine)
    assert (event.actor, event.subject) == (f"person:{person}", person)
    assert '"result":"ok"' in event.details and "ST-" not in event.details


def replay(web_client: TestClient, cas: CasStandIn) -> tuple[str, object]:
    ticket = cas.issue_ticket("1120101234", service_url("http://testserver", "/"))
    web_client.get("/login/cas", params={"next": "/", "ticket": ticket})
    web_client.cookies.clear()
    return ticket, web_client.get("/login/cas", params={"next": "/", "ticket": ticket}, headers=HTML)


def other_service(web_client: TestClient, cas: CasStandIn) -> tuple[str, object]:
    ticket = cas.issue_ticket("1120101234", "https://other-app.example.edu/login?next=%2F")
    return ticket, web_client.get("/login/cas", params={"next": "/", "ticket": ticket}, headers=HTML)


def expired(web_client: TestClient, cas: CasStandIn) -> tuple[str, object]:
    ticket = cas.issue_ticket("1120101234", service_url("http://testserver", "/"))
    cas.age_tickets(6 * 60)
    return ticket, web_client.get("/login/cas", params={"next": "/", "ticket": ticket}, headers=HTML)


def forged(web_client: TestClient, cas: CasStandIn) -> tuple[str, object]:
    ticket = "ST-1700000000-00000000000000000000000000000000"
    return ticket, web_client.get("/login/cas", params={"next": "/", "ticket": ticket}, headers=HTML)


def malformed(web_client: TestClient, cas: CasStandIn) -> tuple[str, object]:
    ticket = "<script>alert(1)</script>"
    return ticket, web_client.get("/login/cas", params={"next": "/", "ticket": ticket}, headers=HTML)


@pytest.mark.parametrize("attempt", [replay, other_service, expired, forged, malformed])
def test_a_bad_ticket_is_refused_with_a_clear_page_and_no_session(
    web_client: TestClient, cas_server: CasStandIn, engine: Engine, attempt
) -> None:
    add_person(engine, {"student": "1120101234"})
    ticket, response = attempt(web_client, cas_server)
    assert response.status_code == 400
    assert "统一身份认证拒绝了此次登录票据" in response.text and "没有创建任何会话" in response.text
    assert COOKIE_NAME not in response.cookies
    assert web_client.get("/staff/whoami").status_code == 401
    assert len(sessions(engine)) == (1 if attempt is replay else 0)  # the replay's first, honest use only
    refused = [e for e in login_events(engine) if '"result":"refused"' in e.details]
    assert len(refused) == 1 and refused[0].actor == "anonymous"
    assert all(ticket not in e.details for e in login_events(engine))


def test_a_callback_without_a_ticket_is_refused(web_client: TestClient) -> None:
    response = web_client.get("/login/cas", headers=HTML)
    assert response.status_code == 400
    assert "缺少统一身份认证的票据" in response.text


def test_an_unknown_uid_gets_a_clear_page_and_no_session(
    web_client: TestClient, cas_server: CasStandIn, engine: Engine
) -> None:
    response = sign_in(web_client, cas_server, "9990001111")
    assert response.status_code == 200
    assert "未找到您的身份信息" in response.text and "999****111" in response.text
    assert COOKIE_NAME not in response.cookies and sessions(engine) == []
    [event] = login_events(engine)
    assert event.actor == "cas:9990001111" and '"result":"unknown_uid"' in event.details


def test_a_uid_two_people_hold_signs_in_nobody(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": "1120101234"})
    add_person(engine, {"cas": "1120101234"}, name="张率")
    response = sign_in(web_client, cas_server, "1120101234")
    assert response.status_code == 200
    assert "对应多个人员" in response.text
    assert sessions(engine) == []


@pytest.mark.parametrize(
    "evil",
    [
        "https://evil.example.com/",
        "//evil.example.com/x",
        "/\\evil.example.com",
        "javascript:alert(1)",
        "evil.example.com",
        "/\r\nSet-Cookie:x=1",
        "\\\\evil.example.com",
        " /x",
    ],
)
def test_next_cannot_leave_the_site(web_client: TestClient, cas_server: CasStandIn, engine: Engine, evil: str) -> None:
    add_person(engine, {"student": "1120101234"})
    service = parse_qs(urlsplit(web_client.get("/login", params={"next": evil}).headers["location"]).query)["service"]
    assert service == ["http://testserver/login/cas?next=%2F"]
    ticket = cas_server.issue_ticket("1120101234", service_url("http://testserver", safe_next(evil)))
    response = web_client.get("/login/cas", params={"next": evil, "ticket": ticket})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")) and "\n" not in location


def test_safe_next_keeps_paths_on_this_site() -> None:
    assert safe_next("/me?tab=1#x") == "/me?tab=1#x"
    assert safe_next(None) == "/"
    for evil in ("//evil", "/\\evil", "https://evil", "evil", "/a\r\nb", ""):
        assert safe_next(evil) == "/"
