"""SQL injection in every search box, on SQLite and PostgreSQL: the helpdesk search, the privacy officer's
audit search (each filter, and the `prefix*` action filter that becomes a LIKE), and the apps API's filters
(pseudonyms, numbers, the change feed's cursor). Quotes, `%`, `_`, `--`, backslashes, NUL and look-alike
Unicode find exactly what they spell — usually nothing —, raise no server error and change nothing but the
audit event that records the search.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from attack_support import all_roles_token, snapshot
from fastapi.testclient import TestClient
from plugins.apps import Campus as AppsCampus
from plugins.apps import MakeApp, app_token
from plugins.privacy import Campus, add_events
from sqlalchemy import Engine
from sqlmodel import Session

from idbroker.audit.search import AuditFilter, AuditSearchError, search_events
from idbroker.directory.queries import PersonNotFound
from idbroker.helpdesk.errors import HelpdeskRefused
from idbroker.helpdesk.search import find_people

PAYLOADS = [
    "' OR '1'='1",
    "1' OR 1=1 --",
    "张帅' --",
    "'; DROP TABLE person; --",
    '" OR ""="',
    "%",
    "%%",
    "_",
    "__________",
    "1120101%",
    "112010123_",
    "--",
    "/* */",
    "\\",
    "\\%",
    "\x00",
    "1120101234\x00' OR 1=1",
    "ʼ OR 1=1 --",  # U+02BC, a letter that looks like a quote
    "＇ OR ＇1＇=＇1",  # full-width quotes
    "张帅%",
    "张_",
]  # (a lone `*` is the action filter's documented "every action")


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {name: (before[name], after[name]) for name in before if before[name] != after[name]}


def test_the_helpdesk_search_finds_exactly_what_is_typed(engine: Engine, privacy_campus: Campus) -> None:
    for payload in PAYLOADS:
        before = snapshot(engine)
        try:
            with Session(engine) as session:
                result = find_people(session, payload, actor="person:test")
                session.commit()
        except HelpdeskRefused as refused:
            assert refused.status == 400, payload
            assert changed(before, snapshot(engine)) == {}
            continue
        assert result.hits == [], (payload, result)
        assert set(changed(before, snapshot(engine))) == {"audit_event", "audit head"}, payload
    with Session(engine) as session:  # the control: a real query still finds its person
        assert [hit.person_id for hit in find_people(session, "1120101234", actor="person:test").hits] == [
            privacy_campus.zhang
        ]


def test_the_helpdesk_search_over_http(
    web_client: TestClient, cas_server: Any, engine: Engine, privacy_campus: Campus
) -> None:
    token = all_roles_token(web_client, cas_server, engine)
    for payload in PAYLOADS:
        response = web_client.post("/helpdesk/search", data={"q": payload, "csrf_token": token})
        assert response.status_code in (200, 400), (payload, response.status_code)
        assert 'data-testid="hit-' not in response.text, payload


AUDIT_FIELDS = ("app", "actor", "action", "purpose")


def test_every_audit_search_filter_matches_exactly(engine: Engine, privacy_campus: Campus) -> None:
    add_events(engine, 3)  # app:bus reads, with an app, a purpose and a client IP
    with Session(engine) as session:
        everything = len(search_events(session, AuditFilter(), actor="person:test", limit=1000).entries)
        session.commit()
    assert everything > 3
    before, searches = snapshot(engine), 0
    for field in AUDIT_FIELDS:
        for payload in [*PAYLOADS, *(p + "*" for p in PAYLOADS)]:
            with Session(engine) as session:
                if "\x00" in payload:  # no text holds NUL (PostgreSQL cannot even compare it): a clear refusal
                    with pytest.raises(AuditSearchError, match="NUL"):
                        search_events(session, AuditFilter(**{field: payload}), actor="person:test")
                    continue
                page = search_events(session, AuditFilter(**{field: payload}), actor="person:test", limit=1000)
                session.commit()
            searches += 1
            assert page.entries == [], (field, payload)
    after = snapshot(engine)
    assert set(changed(before, after)) == {"audit_event", "audit head"}
    assert after["audit_event"] - before["audit_event"] == searches  # each search recorded, nothing else
    for payload in PAYLOADS:  # the person filter: a number nobody holds, never everyone
        with Session(engine) as session, pytest.raises((PersonNotFound, AuditSearchError)):
            search_events(session, AuditFilter(person=payload), actor="person:test")
    with Session(engine) as session:  # the controls: an exact action, and a real prefix
        assert len(search_events(session, AuditFilter(action="release"), actor="t").entries) == 3
        assert len(search_events(session, AuditFilter(action="rel*"), actor="t").entries) == 3
        assert search_events(session, AuditFilter(action="re_ease"), actor="t").entries == []
        assert search_events(session, AuditFilter(action="re_*"), actor="t").entries == []


def test_the_audit_search_page(web_client: TestClient, cas_server: Any, engine: Engine, privacy_campus: Campus) -> None:
    all_roles_token(web_client, cas_server, engine)
    for field in ("person", "app", "staff", "action", "purpose"):
        for payload in PAYLOADS:
            response = web_client.get("/privacy", params={field: payload}, headers={"accept": "text/html"})
            assert response.status_code in (200, 400, 404), (field, payload, response.status_code)
            assert 'data-testid="event-' not in response.text, (field, payload)


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


def test_the_apps_api_filters(engine: Engine, campus: AppsCampus, make_app: MakeApp, web_client: TestClient) -> None:
    _app, secret = make_app("rp1", claims=("pseudonym", "name"), lookup_by_number=True)
    headers = {"Authorization": f"Bearer {app_token(web_client, 'rp1', secret)}"}
    before = snapshot(engine)
    resolved = web_client.post("/api/apps/v1/people/resolve", json={"pseudonyms": PAYLOADS}, headers=headers)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["people"] == {} and sorted(resolved.json()["unknown"]) == sorted(set(PAYLOADS))
    for payload in PAYLOADS:
        for path in ("/api/apps/v1/people/{}", "/api/apps/v1/people/by-number/{}"):
            response = web_client.get(path.format(quote(payload, safe="")), headers=headers)
            assert response.status_code in (404, 422), (path, payload, response.status_code)
        feed = web_client.get("/api/apps/v1/changes", params={"after": payload}, headers=headers)
        assert feed.status_code == 422, payload
    assert set(changed(before, snapshot(engine))) <= {"audit_event", "audit head", "token"}
    real = web_client.get("/api/apps/v1/people/by-number/1120101234", headers=headers)
    assert real.status_code == 200 and real.json()["name"] == "张帅"
