"""The development CAS page: only in demo mode (404 otherwise), clearly marked, signs in a generated person."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from plugins.web import LiveServer, add_person, take_screenshot
from sqlalchemy import Engine
from sqlmodel import Session, select

from idbroker.audit.models import AuditEvent
from idbroker.config import Settings
from idbroker.web.app import create_app
from idbroker.web.csrf import FIELD
from idbroker.web.session import COOKIE_NAME

DEMO = {"demo_mode": True, "cas_server_url": None}
HTML = {"accept": "text/html"}


@pytest.fixture
def live_server_overrides() -> dict[str, Any]:
    return DEMO


def test_the_demo_cas_does_not_exist_outside_demo_mode(sqlite_engine: Engine) -> None:
    for settings in (
        Settings(database_url=str(sqlite_engine.url)),  # demo mode off
        Settings(database_url=str(sqlite_engine.url), demo_mode=True, cas_server_url="https://cas.example.edu/cas"),
    ):
        client = TestClient(create_app(settings), follow_redirects=False)
        for method in ("get", "post"):
            assert getattr(client, method)("/demo/cas/login", headers=HTML).status_code == 404
        assert "/demo/cas" not in client.get("/login").headers.get("location", "")


def test_without_any_cas_outside_demo_mode_login_says_so(sqlite_engine: Engine) -> None:
    client = TestClient(create_app(Settings(database_url=str(sqlite_engine.url))))
    response = client.get("/login", headers=HTML)
    assert response.status_code == 503 and "统一身份认证暂时不可用" in response.text


def test_demo_mode_lists_people_and_signs_the_picked_one_in(web_client: TestClient, engine: Engine) -> None:
    person = add_person(engine, {"student": "1120101234"})
    add_person(engine, {"hr": "6120170032"}, name="李丽")
    login = web_client.get("/login", params={"next": "/me"})
    assert login.status_code == 303 and login.headers["location"] == "/demo/cas/login?next=%2Fme"
    page = web_client.get(login.headers["location"], headers=HTML)
    assert page.status_code == 200
    assert "DEMO" in page.text and "演示模式" in page.text
    assert "112****234" in page.text and "612****032" in page.text
    token = page.text.split(f'name="{FIELD}" value="', 1)[1].split('"', 1)[0]

    assert web_client.post("/demo/cas/login", data={"uid": "1120101234", "next": "/me"}).status_code == 403
    picked = web_client.post("/demo/cas/login", data={FIELD: token, "uid": "1120101234", "next": "/me"})
    assert picked.status_code == 303 and picked.headers["location"] == "/me"
    assert COOKIE_NAME in picked.cookies
    with Session(engine) as db:
        event = db.exec(select(AuditEvent).where(AuditEvent.action == "login")).one()
    assert event.subject == person and '"via":"demo"' in event.details


def test_demo_login_in_the_browser(page: Any, live_server: LiveServer) -> None:
    add_person(live_server.engine, {"student": "1120101234"})
    page.goto(f"{live_server.url}/login?next=%2F")
    assert page.locator(".demo-banner").is_visible()
    take_screenshot(page, "login-demo-cas")
    page.get_by_role("button", name="张帅").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_test_id("whoami").inner_text().endswith("112****234")
