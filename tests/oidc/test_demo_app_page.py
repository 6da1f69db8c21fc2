"""The README's demo app (demo mode only): a relying party at /demo/app that signs in through the broker
in a real browser — the development CAS page, the code flow with PKCE — and shows only what it received."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from plugins.apps import REPO_POLICIES, Campus
from plugins.web import take_screenshot
from sqlalchemy import Engine

from idbroker.config import Settings
from idbroker.web.app import create_app


@pytest.fixture
def live_server_overrides() -> dict[str, Any]:
    return {"demo_mode": True, "cas_server_url": None, "policies_dir": REPO_POLICIES}


def test_the_demo_app_shows_the_claims_it_received(
    sqlite_engine: Engine, campus: Campus, live_server: Any, page: Any
) -> None:
    page.goto(f"{live_server.url}/demo/app")
    assert "DEMO" in page.inner_text("h1")
    page.click("[data-testid=demo-sign-in]")
    page.wait_for_url("**/demo/cas/login**")
    page.click("button.pick >> nth=0")  # 张帅 1120101234, first on the development CAS page
    page.wait_for_url("**/demo/app?result=*")
    id_token = page.inner_text("[data-testid=demo-id-token]")
    userinfo = page.inner_text("[data-testid=demo-userinfo]")
    take_screenshot(page, "demo-app-claims")
    assert "nickname" in id_token and "sub" in id_token and "aud\tdemo-app" in id_token
    assert set(line.split("\t")[0] for line in userinfo.splitlines()) == {"nickname", "sub"}
    for shown in (id_token, userinfo):
        assert "1120101234" not in shown and "张帅" not in shown


def test_there_is_no_demo_app_outside_demo_mode(sqlite_engine: Engine) -> None:
    settings = Settings(database_url=str(sqlite_engine.url))
    with TestClient(create_app(settings)) as client:
        assert client.get("/demo/app").status_code == 404
        assert client.get("/demo/app/start").status_code == 404
