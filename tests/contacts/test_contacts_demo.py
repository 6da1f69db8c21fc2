"""The demo: with no gateway configured, messages go to an outbox page a newcomer can read — in demo mode only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from factories import student
from fastapi.testclient import TestClient
from plugins.contacts import import_rows
from sqlalchemy import Engine

from idbroker.config import Settings
from idbroker.web.app import create_app

HTML = {"accept": "text/html"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def live_server_overrides() -> dict[str, Any]:
    return {"demo_mode": True, "cas_server_url": None}


def test_a_code_sent_in_demo_mode_is_read_on_the_outbox_page(sqlite_engine: Engine, web_client: TestClient) -> None:
    import_rows(
        sqlite_engine, "student", [student("1120101234", "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678")]
    )
    form = web_client.get("/demo/cas/login?next=/me/contacts", headers=HTML).text
    signed = web_client.post(
        "/demo/cas/login", data={"csrf_token": CSRF.search(form).group(1), "uid": "1120101234", "next": "/me/contacts"}
    )
    assert signed.status_code == 303
    page = web_client.get("/me/contacts", headers=HTML).text
    sent = web_client.post("/me/phones", data={"csrf_token": CSRF.search(page).group(1), "phone": "13912345678"})
    verify_page = web_client.get(sent.headers["location"], headers=HTML).text
    assert 'href="/demo/outbox"' in verify_page
    outbox = web_client.get("/demo/outbox", headers=HTML).text
    code = re.search(r"验证码是(\d{6})", outbox).group(1)  # type: ignore[union-attr]
    assert "139****5678" in outbox
    done = web_client.post(
        sent.headers["location"], data={"csrf_token": CSRF.search(verify_page).group(1), "code": code}
    )
    assert done.headers["location"] == "/me/contacts?done=verified"


def test_there_is_no_outbox_outside_demo_mode(sqlite_engine: Engine) -> None:
    client = TestClient(create_app(Settings(database_url=str(sqlite_engine.url))))
    assert client.get("/demo/outbox", headers=HTML).status_code == 404
