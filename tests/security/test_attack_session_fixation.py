"""Session fixation: a cookie value an attacker planted (one they made up, or their own live session) never
becomes the victim's session — at a CAS login, at a demo login, or when an update link starts a short update
session — and the attacker's copy never shows the victim.

Elsewhere (not repeated here): a made-up `idb_session` value is not kept at a CAS login and signing in again
replaces the old session (`tests/web/test_session_lifecycle.py`); the pre-login CSRF cookie stops working at
login (`tests/web/test_session_csrf.py::test_the_token_changes_at_login`).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from plugins.contacts import import_rows
from plugins.web import add_person, sign_in
from sqlalchemy import Engine
from sqlmodel import Session

from idbroker.config import Settings, get_settings
from idbroker.contacts import update_link
from idbroker.contacts.update_link import send_update_link
from idbroker.directory.queries import people_by_number
from idbroker.web.app import create_app
from idbroker.web.csrf import FIELD
from idbroker.web.routers.me_access import UPDATE_COOKIE
from idbroker.web.session import COOKIE_NAME

VICTIM, ATTACKER = "1120101234", "1120150001"
HTML = {"accept": "text/html"}
TOKEN = re.compile(rf'name="{FIELD}" value="([^"]+)"')


def whoami(client: TestClient) -> str | None:
    """The masked number the home page shows for the signed-in person (None: nobody)."""
    page = client.get("/me", headers=HTML)
    if page.status_code != 200:
        return None
    return "victim" if "112****234" in page.text else "attacker" if "112****001" in page.text else "someone"


def plant(client: TestClient, name: str, value: str) -> None:
    client.cookies.clear()
    client.cookies.set(name, value)


def test_an_attackers_live_session_planted_in_the_victims_browser_is_replaced_at_cas_login(
    web_client: TestClient, cas_server: Any, sqlite_engine: Engine
) -> None:
    add_person(sqlite_engine, {"student": VICTIM})
    add_person(sqlite_engine, {"student": ATTACKER}, name="李丽")
    attacker = TestClient(web_client.app, follow_redirects=False)
    planted = sign_in(attacker, cas_server, ATTACKER).cookies[COOKIE_NAME]
    plant(web_client, COOKIE_NAME, planted)
    assert whoami(web_client) == "attacker"  # the planted cookie works until the victim signs in …
    fresh = sign_in(web_client, cas_server, VICTIM).cookies[COOKIE_NAME]
    assert fresh != planted and whoami(web_client) == "victim"
    assert whoami(attacker) is None  # … and then the attacker's copy is dead, never the victim


def test_a_planted_session_is_replaced_at_the_demo_login(sqlite_engine: Engine) -> None:
    add_person(sqlite_engine, {"student": VICTIM})
    settings = Settings(database_url=str(sqlite_engine.url), demo_mode=True, cas_server_url=None)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        planted = "attacker-chosen-value-" + "x" * 30
        plant(client, COOKIE_NAME, planted)
        page = client.get("/demo/cas/login", headers=HTML)
        token = TOKEN.search(page.text).group(1)  # type: ignore[union-attr]
        picked = client.post("/demo/cas/login", data={FIELD: token, "uid": VICTIM, "next": "/me"})
        assert picked.status_code == 303 and picked.cookies[COOKIE_NAME] != planted
        assert whoami(client) == "victim"
        assert whoami(TestClient(client.app, cookies={COOKIE_NAME: planted}, follow_redirects=False)) is None


def test_an_update_link_starts_a_fresh_update_session_whatever_cookie_was_there(
    web_client: TestClient, sqlite_engine: Engine, monkeypatch: Any
) -> None:
    from factories import student

    monkeypatch.setenv("IDBROKER_DEMO_MODE", "true")  # the link goes to the demo outbox: no gateway needed
    get_settings.cache_clear()
    rows = [
        student(VICTIM, "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678"),
        student(ATTACKER, "李丽", "女", "1997-04-01", "", "本科", "2015", "13812340000"),
    ]
    import_rows(sqlite_engine, "student", rows)
    tokens: list[str] = []
    made = update_link.new_link_token
    monkeypatch.setattr(update_link, "new_link_token", lambda: tokens.append(made()) or tokens[-1])

    def use_link(client: TestClient, number: str) -> Any:
        with Session(sqlite_engine) as db:
            send_update_link(db, people_by_number(db, number)[0].id, "sms", actor="test")
            db.commit()
        link = tokens[-1]
        page = client.get(f"/me/update/{link}", headers=HTML)
        return client.post(f"/me/update/{link}", data={FIELD: TOKEN.search(page.text).group(1)})  # type: ignore[union-attr]

    attacker = TestClient(web_client.app, follow_redirects=False)
    planted = use_link(attacker, ATTACKER).cookies[UPDATE_COOKIE]
    plant(web_client, UPDATE_COOKIE, planted)
    answer = use_link(web_client, VICTIM)
    assert answer.status_code == 303 and answer.cookies[UPDATE_COOKIE] != planted
    mine = web_client.get("/api/me/contacts").text
    assert "138****5678" in mine and "138****0000" not in mine  # the victim's own contacts
    assert "138****5678" not in attacker.get("/api/me/contacts").text
