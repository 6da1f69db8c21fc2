"""The REST API for apps: resolve one or up to 1,000 pseudonyms, look up by a held number only when the
policy allows, and the change feed — client credentials only, and only what the policy allows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from plugins.apps import Campus, MakeApp, app_token, exchange, get_code
from plugins.web import sign_in
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.config import get_settings
from idbroker.directory.events import DirectoryEvent
from idbroker.linking.merge import merge_people
from idbroker.release import consent
from idbroker.release.gate import ReleaseGate
from idbroker.release.models import App
from idbroker.release.policies import policy_for


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


def known_subs(engine: Engine, client_id: str, people: list[str]) -> list[str]:
    """Pseudonyms the app was given before (as a sign-in would give them)."""
    settings = get_settings()
    with Session(engine) as session:
        app = session.get(App, client_id)
        assert app is not None
        policy = policy_for(settings.policies_dir, client_id)
        subs = [ReleaseGate(settings).release(session, app, policy, p, wanted=None, via="resolve").sub for p in people]
        session.commit()
    return subs


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_resolve_one_and_many(engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any) -> None:
    _app, secret = make_app("library", claims=("pseudonym", "name", "department"))
    zhang, li = known_subs(engine, "library", [campus.zhang_bachelor, campus.li])
    headers = bearer(app_token(web_client, "library", secret))

    one = web_client.get(f"/api/apps/v1/people/{li}", headers=headers)
    assert one.status_code == 200 and one.json() == {"sub": li, "name": "李丽", "department": "外国语学院"}
    assert web_client.get("/api/apps/v1/people/unknown-one", headers=headers).status_code == 404

    many = web_client.post("/api/apps/v1/people/resolve", json={"pseudonyms": [zhang, li, "nope"]}, headers=headers)
    body = many.json()
    assert many.status_code == 200 and set(body["people"]) == {zhang, li} and body["unknown"] == ["nope"]
    assert body["people"][zhang] == {"sub": zhang, "name": "张帅", "department": "计算机学院"}
    assert "1120101234" not in many.text

    limit = [li] * 1000
    assert (
        web_client.post("/api/apps/v1/people/resolve", json={"pseudonyms": limit}, headers=headers).status_code == 200
    )
    too_many = web_client.post("/api/apps/v1/people/resolve", json={"pseudonyms": [li] * 1001}, headers=headers)
    assert too_many.status_code == 422

    with Session(engine) as session:  # an absorbed person's pseudonym resolves to the survivor
        merge_people(session, campus.li, campus.zhang_bachelor, actor="test", reason="test only")
        session.commit()
    merged = web_client.get(f"/api/apps/v1/people/{zhang}", headers=headers).json()
    assert merged["sub"] == li


def test_lookup_by_number_only_when_allowed(
    sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any
) -> None:
    _lib, lib_secret = make_app("library", claims=("pseudonym", "nickname"), lookup_by_number=True)
    _bus, bus_secret = make_app("bus", claims=("pseudonym", "nickname"))
    library = bearer(app_token(web_client, "library", lib_secret))
    found = web_client.get("/api/apps/v1/people/by-number/1120150001", headers=library)
    assert found.status_code == 200 and set(found.json()) == {"sub", "nickname"}
    assert "1120150001" not in json.dumps(found.json())
    assert web_client.get("/api/apps/v1/people/by-number/9999999999", headers=library).status_code == 404
    bus = bearer(app_token(web_client, "bus", bus_secret))
    refused = web_client.get("/api/apps/v1/people/by-number/1120150001", headers=bus)
    assert refused.status_code == 403 and "does not allow" in refused.json()["detail"]
    with Session(sqlite_engine) as session:
        lookups = [
            json.loads(e.details)["via"]
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "release"))
        ]
    assert lookups == ["lookup"]


def test_only_app_tokens_of_enabled_apps(
    sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any
) -> None:
    _app, secret = make_app("library")
    (li,) = known_subs(sqlite_engine, "library", [campus.li])
    assert web_client.get(f"/api/apps/v1/people/{li}").status_code == 401
    cas_server.add_user("1120150001")
    sign_in(web_client, cas_server, "1120150001")
    person_token = exchange(web_client, "library", secret, get_code(web_client, "library")).json()["access_token"]
    as_person = web_client.get(f"/api/apps/v1/people/{li}", headers=bearer(person_token))
    assert as_person.status_code == 401 and "stands for a person" in as_person.json()["detail"]
    token = app_token(web_client, "library", secret)
    assert web_client.get(f"/api/apps/v1/people/{li}", headers=bearer(token)).status_code == 200
    with Session(sqlite_engine) as session:
        app = session.get(App, "library")
        assert app is not None
        app.enabled = False
        session.add(app)
        session.commit()
    assert web_client.get(f"/api/apps/v1/people/{li}", headers=bearer(token)).status_code == 401


def test_withheld_once_consent_is_withdrawn(
    sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any
) -> None:
    _app, secret = make_app(
        "strict", claims=("pseudonym", "name"), separate_consent=True,
        recipient={"name": "某公司", "contact": "privacy@example.com"},
    )  # fmt: skip
    settings = get_settings()
    with Session(sqlite_engine) as session:
        consent.grant(session, campus.li, policy_for(settings.policies_dir, "strict"), actor="person:test")
        session.commit()
    (li,) = known_subs(sqlite_engine, "strict", [campus.li])
    headers = bearer(app_token(web_client, "strict", secret))
    assert web_client.get(f"/api/apps/v1/people/{li}", headers=headers).json()["name"] == "李丽"
    with Session(sqlite_engine) as session:
        consent.withdraw(session, campus.li, "strict", actor="person:test")
        session.commit()
    assert web_client.get(f"/api/apps/v1/people/{li}", headers=headers).status_code == 403
    batch = web_client.post("/api/apps/v1/people/resolve", json={"pseudonyms": [li]}, headers=headers).json()
    assert batch == {"people": {}, "unknown": [], "withheld": [li]}


def test_change_feed_over_http(engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any) -> None:
    _app, secret = make_app("bus")
    with Session(engine) as session:
        start = session.scalar(select(func.max(DirectoryEvent.id))) or 0
    bachelor, master = known_subs(engine, "bus", [campus.zhang_bachelor, campus.zhang_master])
    with Session(engine) as session:
        merge_people(session, campus.zhang_bachelor, campus.zhang_master, actor="test", reason="same")
        session.commit()
    headers = bearer(app_token(web_client, "bus", secret))
    page = web_client.get("/api/apps/v1/changes", params={"after": start}, headers=headers).json()
    assert [(c["kind"], c["sub"], c["merged_sub"]) for c in page["changes"]] == [("merged", bachelor, master)]
    again = web_client.get("/api/apps/v1/changes", params={"after": page["next"]}, headers=headers).json()
    assert again == {"changes": [], "next": page["next"]}
    assert web_client.get("/api/apps/v1/changes", params={"after": -1}, headers=headers).status_code == 422
