"""CSRF: every POST form needs the session's token; missing or wrong → 403 with a clear page, nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from plugins.web import add_person, sign_in
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from standins.cas_server import CasStandIn

from idbroker.audit.models import AuditEvent
from idbroker.web.csrf import ANONYMOUS_COOKIE, FIELD, token_for
from idbroker.web.session import COOKIE_NAME, WebSession

UID = "1120101234"
HTML = {"accept": "text/html"}


def token_on(page: str) -> str:
    return page.split(f'name="{FIELD}" value="', 1)[1].split('"', 1)[0]


def counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as db:
        return (
            db.exec(select(func.count()).select_from(WebSession)).one(),
            db.exec(select(func.count()).select_from(AuditEvent)).one(),
        )


@pytest.mark.parametrize("sent", [None, "", "wrong-token", "x" * 43])
def test_logout_without_the_right_token_is_refused_and_changes_nothing(
    web_client: TestClient, cas_server: CasStandIn, engine: Engine, sent: str | None
) -> None:
    add_person(engine, {"student": UID})
    sign_in(web_client, cas_server, UID)
    before = counts(engine)
    data = {} if sent is None else {FIELD: sent}
    response = web_client.post("/logout", data=data, headers=HTML)
    assert response.status_code == 403
    assert "表单已过期或来自其他网站，未做任何更改" in response.text
    assert counts(engine) == before  # still signed in, nothing audited
    assert web_client.get("/staff/whoami").status_code == 403  # signed in (no role), not 401


def test_the_token_of_another_session_does_not_work(
    web_client: TestClient, cas_server: CasStandIn, engine: Engine
) -> None:
    add_person(engine, {"student": UID})
    sign_in(web_client, cas_server, UID)
    other = TestClient(web_client.app, follow_redirects=False)
    sign_in(other, cas_server, UID)
    foreign = token_on(other.get("/", headers=HTML).text)
    assert web_client.post("/logout", data={FIELD: foreign}).status_code == 403
    assert web_client.post("/logout", data={FIELD: token_on(web_client.get("/", headers=HTML).text)}).status_code == 303


def test_the_token_changes_at_login(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": UID})
    web_client.get("/", headers=HTML)  # any page gives a visitor the cookie that pre-login forms' tokens derive from
    anonymous = token_for(web_client.cookies[ANONYMOUS_COOKIE])
    sign_in(web_client, cas_server, UID)
    assert token_on(web_client.get("/", headers=HTML).text) != anonymous
    assert web_client.post("/logout", data={FIELD: anonymous}).status_code == 403


def test_an_api_client_gets_json(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": UID})
    sign_in(web_client, cas_server, UID)
    response = web_client.post("/logout")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "The form has expired or was sent from another site; nothing was changed. "
        "Go back, reload the page and try again."
    }


def test_the_header_token_works_for_scripts(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": UID})
    sign_in(web_client, cas_server, UID)
    token: Any = token_on(web_client.get("/", headers=HTML).text)
    assert web_client.post("/logout", headers={"X-CSRF-Token": token}).status_code == 303
    assert COOKIE_NAME not in web_client.cookies
