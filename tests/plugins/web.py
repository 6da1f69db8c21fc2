"""Fixtures for the web: the app on a live port, the CAS stand-in, Chromium, screenshots, signing in.

- `cas_server` — the CAS stand-in (`standins.cas_server.CasStandIn`), emptied for each test: `add_user(uid)`,
  `issue_ticket(uid, service)`, `age_tickets(s)`, `p3_enabled`, `validations`, `url`.
- `live_server` — `create_app` under uvicorn on a free loopback port (a thread), on the test's database
  (`engine` when the test uses it, else `sqlite_engine`), `public_url` = its own URL, CAS = the stand-in.
  Override the fixture `live_server_overrides` (a dict of settings) in a test module to change settings,
  e.g. `{"demo_mode": True, "cas_server_url": None}` for the development CAS page.
- `web_client` — a `TestClient` of the same app without a port (`public_url` http://testserver), for tests
  that need no browser; `sign_in(web_client, cas_server, uid)` signs in through a real CAS ticket.
- `browser` (session) — Debian's Chromium through Playwright (no browser download); `page` — a fresh
  context at 1280×800, Chinese locale.
- `screenshot(page, name)` — saves `tests/artifacts/screenshots/<name>-desktop.png` (1280×800) and
  `<name>-phone.png` (375×667), full page. Also a fixture of the same name.
- `fonts_used(page, "h1")` — the fonts Chromium drew an element with (to prove Chinese text has a CJK font).
- `log_in(page, live_server, cas_server, uid, next="/")` — signs in through the stand-in's form in the browser.
- `add_person(engine, {"student": "1120101234"}, name="张帅")` — a person holding those numbers (for logins).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from services.availability import free_port, missing
from sqlalchemy import Engine
from standins.cas_server import DEFAULT_PASSWORD, CasStandIn
from standins.server_thread import ServerThread

from idbroker.config import Settings
from idbroker.db import session_scope
from idbroker.directory.ids import new_person_id
from idbroker.directory.models import Person, SourceRecord
from idbroker.web.app import create_app
from idbroker.web.cas import service_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}


# --- CAS --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _cas_standin() -> Iterator[CasStandIn]:
    standin = CasStandIn()
    server = ServerThread(standin.app()).start()
    standin.base_url = server.url
    try:
        yield standin
    finally:
        server.stop()


@pytest.fixture
def cas_server(_cas_standin: CasStandIn) -> Iterator[CasStandIn]:
    _cas_standin.reset()
    yield _cas_standin
    _cas_standin.reset()


# --- the app ----------------------------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    settings: Settings
    engine: Engine
    app: FastAPI


def _database(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue("engine" if "engine" in request.fixturenames else "sqlite_engine")


@pytest.fixture
def live_server_overrides() -> dict[str, Any]:
    """Settings for `live_server` and `web_client` beyond the environment's (override per module)."""
    return {}


def _web_settings(engine: Engine, public_url: str, cas: CasStandIn, overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "public_url": public_url,
        "cas_server_url": cas.url,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest, cas_server: CasStandIn, live_server_overrides: dict[str, Any]
) -> Iterator[LiveServer]:
    engine = _database(request)
    port = free_port()
    settings = _web_settings(engine, f"http://127.0.0.1:{port}", cas_server, live_server_overrides)
    app = create_app(settings)
    server = ServerThread(app, port=port).start()
    try:
        yield LiveServer(server.url, settings, engine, app)
    finally:
        server.stop()


@pytest.fixture
def web_client(
    request: pytest.FixtureRequest, cas_server: CasStandIn, live_server_overrides: dict[str, Any]
) -> Iterator[TestClient]:
    settings = _web_settings(_database(request), "http://testserver", cas_server, live_server_overrides)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, cas: CasStandIn, uid: str, next_path: str = "/") -> Any:
    """Sign `uid` in on a `web_client` with a ticket the stand-in issued; returns the callback's response."""
    ticket = cas.issue_ticket(uid, service_url("http://testserver", next_path))
    return client.get("/login/cas", params={"next": next_path, "ticket": ticket})


def add_person(engine: Engine, numbers: dict[str, str], name: str = "张帅") -> str:
    """A person in the directory holding `numbers` ({source: key}); returns their id."""
    person_id = new_person_id()
    with session_scope(engine) as db:
        db.add(Person(id=person_id))
        db.flush()
        for source, key in numbers.items():
            db.add(SourceRecord(source=source, key=key, person_id=person_id, name=name, row_hash=f"{source}:{key}"))
    return person_id


# --- the browser ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def take_screenshot(page: Any, name: str) -> list[Path]:
    """The page at desktop and phone size, full length; the viewport is restored afterwards."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    paths = []
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    if before:
        page.set_viewport_size(before)
    return paths


@pytest.fixture
def screenshot() -> Any:
    return take_screenshot


def fonts_used(page: Any, selector: str) -> list[str]:
    """The font families Chromium really drew `selector`'s text with (DevTools CSS.getPlatformFontsForNode)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        return [font["familyName"] for font in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]]
    finally:
        cdp.detach()


def log_in(page: Any, server: LiveServer, cas: CasStandIn, uid: str, next_path: str = "/") -> None:
    """Sign in as `uid` in the browser: our /login → the stand-in's form → back at `next_path`."""
    cas.add_user(uid)
    page.goto(f"{server.url}/login?next={quote(next_path, safe='')}")
    page.fill("input[name=username]", uid)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}{next_path}*")
