"""Refresh-token rotation with reuse detection, introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plugins.apps import Campus, MakeApp, app_token, exchange, get_code
from plugins.web import sign_in
from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.oidc.models import Token

UID = "1120150001"


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def signed_in(sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any) -> Any:
    _app, web_client.secret = make_app("rp1")
    _other, web_client.other_secret = make_app("rp2")
    cas_server.add_user(UID)
    sign_in(web_client, cas_server, UID)
    return web_client


def tokens(client: Any) -> dict[str, Any]:
    return exchange(client, "rp1", client.secret, get_code(client, "rp1")).json()


def refresh(client: Any, token: str) -> Any:
    return client.post(
        "/oidc/token", data={"grant_type": "refresh_token", "refresh_token": token}, auth=("rp1", client.secret)
    )


def userinfo_status(client: Any, access: str) -> int:
    return client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {access}"}).status_code


def test_refresh_rotates_and_a_reused_token_revokes_the_sign_in(signed_in: Any) -> None:
    first = tokens(signed_in)
    second = refresh(signed_in, first["refresh_token"]).json()
    third = refresh(signed_in, second["refresh_token"]).json()
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert userinfo_status(signed_in, third["access_token"]) == 200

    reused = refresh(signed_in, first["refresh_token"])  # a stolen, already used refresh token
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert userinfo_status(signed_in, third["access_token"]) == 401  # the whole sign-in is revoked
    assert refresh(signed_in, third["refresh_token"]).json()["error"] == "invalid_grant"
    other = signed_in.post(
        "/oidc/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens(signed_in)["refresh_token"]},
        auth=("rp2", signed_in.other_secret),
    )
    assert other.json()["error"] == "invalid_grant"  # another app's refresh token is nothing to it
    wider = signed_in.post(
        "/oidc/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens(signed_in)["refresh_token"],
              "scope": "openid profile email"},
        auth=("rp1", signed_in.secret),
    )  # fmt: skip
    assert wider.json()["error"] == "invalid_scope"


def test_codes_and_tokens_are_stored_only_as_digests(signed_in: Any, sqlite_engine: Engine) -> None:
    body = tokens(signed_in)
    with Session(sqlite_engine) as session:
        digests = set(session.scalars(select(Token.digest)))
    assert body["access_token"] not in digests and body["refresh_token"] not in digests
    assert len(digests) == 2 and all(len(d) == 64 for d in digests)


def introspect(client: Any, token: str, client_id: str = "rp1", secret: str | None = None) -> Any:
    secret = secret or client.secret
    return client.post("/oidc/introspect", data={"token": token}, auth=(client_id, secret))


def test_introspection(signed_in: Any) -> None:
    body = tokens(signed_in)
    active = introspect(signed_in, body["access_token"]).json()
    assert active["active"] is True and active["client_id"] == "rp1" and active["token_type"] == "Bearer"
    userinfo = signed_in.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert active["sub"] == userinfo["sub"] and active["scope"] == "openid profile"
    assert introspect(signed_in, body["refresh_token"]).json()["active"] is True
    # another app learns nothing about this token; nor does anyone about an unknown one
    assert introspect(signed_in, body["access_token"], "rp2", signed_in.other_secret).json() == {"active": False}
    assert introspect(signed_in, "no-such-token").json() == {"active": False}
    app_only = introspect(signed_in, app_token(signed_in, "rp1", signed_in.secret)).json()
    assert app_only["active"] is True and "sub" not in app_only
    unauthenticated = signed_in.post("/oidc/introspect", data={"token": body["access_token"]})
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"] == "invalid_client"


def test_revocation(signed_in: Any) -> None:
    body = tokens(signed_in)
    revoke = signed_in.post("/oidc/revoke", data={"token": body["access_token"]}, auth=("rp1", signed_in.secret))
    assert revoke.status_code == 200
    assert introspect(signed_in, body["access_token"]).json() == {"active": False}
    assert userinfo_status(signed_in, body["access_token"]) == 401
    assert refresh(signed_in, body["refresh_token"]).status_code == 200  # revoking an access token leaves the refresh

    body = tokens(signed_in)
    hinted = {"token": body["refresh_token"], "token_type_hint": "refresh_token"}
    assert signed_in.post("/oidc/revoke", data=hinted, auth=("rp1", signed_in.secret)).status_code == 200
    assert userinfo_status(signed_in, body["access_token"]) == 401  # a refresh token takes its grant with it

    body = tokens(signed_in)
    foreign = signed_in.post("/oidc/revoke", data={"token": body["access_token"]}, auth=("rp2", signed_in.other_secret))
    assert foreign.status_code == 200 and userinfo_status(signed_in, body["access_token"]) == 200
    unknown = signed_in.post("/oidc/revoke", data={"token": "never-issued"}, auth=("rp1", signed_in.secret))
    assert unknown.status_code == 200
    bad_client = signed_in.post("/oidc/revoke", data={"token": body["access_token"]}, auth=("rp1", "wrong"))
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"


def test_client_credentials_are_for_confidential_apps(signed_in: Any, make_app: MakeApp) -> None:
    body = signed_in.post("/oidc/token", data={"grant_type": "client_credentials"}, auth=("rp1", signed_in.secret))
    assert body.status_code == 200 and "refresh_token" not in body.json() and "id_token" not in body.json()
    assert userinfo_status(signed_in, body.json()["access_token"]) == 401  # an app token is no person's
    make_app("spa1", kind="public")
    public = signed_in.post("/oidc/token", data={"grant_type": "client_credentials", "client_id": "spa1"})
    assert public.json()["error"] == "unauthorized_client"
    unsupported = signed_in.post("/oidc/token", data={"grant_type": "password"}, auth=("rp1", signed_in.secret))
    assert unsupported.json()["error"] == "unsupported_grant_type"
