"""Issue 4, "Done when": an app allowed only pseudonym and nickname signs a student in through CAS and gets
exactly those two claims — never the student number — in the ID token, userinfo and the REST API; a second
app in another sector sees another pseudonym; after the student's master's number is merged in, both apps
still see the same pseudonyms; every release is in the audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from plugins.apps import Campus, MakeApp, app_token, exchange, get_code
from plugins.web import sign_in
from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.linking.merge import merge_people
from idbroker.oidc.id_token import PROTOCOL_CLAIMS

EVERY_SCOPE = "openid profile email phone campus"  # asking for more changes nothing: the policy decides
NUMBERS = ("1120101234", "2120143257")


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


def sign_in_to(client: Any, cas: Any, uid: str, client_id: str, secret: str | None) -> dict[str, Any]:
    """Sign `uid` in through the CAS stand-in, run the code flow for the app, return what it received."""
    client.cookies.clear()
    cas.add_user(uid)
    assert sign_in(client, cas, uid).status_code == 303
    tokens = exchange(client, client_id, secret, get_code(client, client_id, scope=EVERY_SCOPE))
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    keys = KeySet.import_key_set(client.get("/oidc/jwks").json())
    id_token = jwt.decode(body["id_token"], keys, algorithms=["RS256"])
    userinfo = client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 200
    rest_token = app_token(client, client_id, secret or "")
    sub = id_token.claims["sub"]
    rest = client.get(f"/api/apps/v1/people/{sub}", headers={"Authorization": f"Bearer {rest_token}"})
    assert rest.status_code == 200, rest.text
    return {"id_token": id_token.claims, "userinfo": userinfo.json(), "rest": rest.json(), "raw": tokens.text}


def personal(claims: dict[str, Any]) -> set[str]:
    return {name for name in claims if name not in PROTOCOL_CLAIMS} | {"sub"}


def assert_exactly_pseudonym_and_nickname(seen: dict[str, Any]) -> str:
    for where in ("id_token", "userinfo", "rest"):
        assert personal(seen[where]) == {"sub", "nickname"}, (where, seen[where])
        text = json.dumps(seen[where], ensure_ascii=False)
        assert not any(number in text for number in NUMBERS), f"a student number in the {where}"
        assert "张帅" not in text
    assert not any(number in seen["raw"] for number in NUMBERS)
    sub = seen["id_token"]["sub"]
    assert seen["userinfo"]["sub"] == seen["rest"]["sub"] == sub
    assert seen["userinfo"]["nickname"] == seen["id_token"]["nickname"] == seen["rest"]["nickname"]
    return sub


def test_done_when(engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any) -> None:
    _bus, bus_secret = make_app("bus", claims=("pseudonym", "nickname"), sector="bus.example.edu")
    _lib, lib_secret = make_app("canteen", claims=("pseudonym", "nickname"), sector="canteen.example.edu")

    bus_sub = assert_exactly_pseudonym_and_nickname(sign_in_to(web_client, cas_server, NUMBERS[0], "bus", bus_secret))
    canteen_sub = assert_exactly_pseudonym_and_nickname(
        sign_in_to(web_client, cas_server, NUMBERS[0], "canteen", lib_secret)
    )
    assert bus_sub != canteen_sub, "two sectors, two pseudonyms"
    assert campus.zhang_bachelor not in (bus_sub, canteen_sub)

    with Session(engine) as session:  # the master's number, so far a separate person, is merged in
        merge_people(session, campus.zhang_master, campus.zhang_bachelor, actor="helpdesk:test", reason="same person")
        session.commit()

    for uid in NUMBERS:  # signing in with either number, each app sees the pseudonym it already had
        assert (
            assert_exactly_pseudonym_and_nickname(sign_in_to(web_client, cas_server, uid, "bus", bus_secret)) == bus_sub
        )
        assert (
            assert_exactly_pseudonym_and_nickname(sign_in_to(web_client, cas_server, uid, "canteen", lib_secret))
            == canteen_sub
        )

    with Session(engine) as session:
        releases = session.scalars(select(AuditEvent).where(AuditEvent.action == "release")).all()
    channels: dict[tuple[str, str], int] = {}
    for event in releases:
        details = json.loads(event.details)
        assert event.subject in (campus.zhang_bachelor, campus.zhang_master)
        assert details["claims"] == ["nickname", "pseudonym"]
        assert details["purpose"] == "测试应用：登录"
        key = (details["app"], details["via"])
        channels[key] = channels.get(key, 0) + 1
    # three sign-ins per app, each released an ID token, userinfo and one REST answer
    for app in ("bus", "canteen"):
        for via in ("id_token", "userinfo", "resolve"):
            assert channels[(app, via)] == 3, channels
