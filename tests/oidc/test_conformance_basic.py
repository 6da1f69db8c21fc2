"""The OpenID conformance suite's Basic OP plan, where it applies to a code-flow-only, pairwise provider:
client_secret_basic and _post, missing response_type, ID token signature and kid, no `alg: none`,
userinfo by GET / POST header / POST body, nonce, scopes profile/email/phone, prompt=login and none,
max_age, unknown parameters, id_token_hint / login_hint / ui_locales, code reuse, unregistered redirect
URIs, refresh tokens and PKCE. Each check drives the real app over HTTP (Starlette's test client), with
the sign-in done through the CAS stand-in."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from plugins.apps import CALLBACK, VERIFIER, Campus, MakeApp, authorize_query, exchange, get_code, query_of
from plugins.web import sign_in
from sqlalchemy import Engine

UID = "1120150001"  # 李丽
FULL = ("pseudonym", "nickname", "name", "email", "phone")


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def rp(sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any) -> Any:
    """A confidential app allowed name, email and phone, and 李丽 signed in."""
    _app, secret = make_app("rp1", claims=FULL)
    web_client.secret = secret
    cas_server.add_user(UID)
    assert sign_in(web_client, cas_server, UID).status_code == 303
    return web_client


def tokens_of(client: Any, **params: str) -> dict[str, Any]:
    response = exchange(client, "rp1", client.secret, get_code(client, "rp1", **params))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def decode(client: Any, id_token: str) -> Any:
    return jwt.decode(id_token, KeySet.import_key_set(client.get("/oidc/jwks").json()), algorithms=["RS256"])


def test_client_secret_basic_and_post(rp: Any) -> None:
    assert "access_token" in exchange(rp, "rp1", rp.secret, get_code(rp, "rp1")).json()  # basic
    post = rp.post(
        "/oidc/token",
        data={"grant_type": "authorization_code", "code": get_code(rp, "rp1"), "redirect_uri": CALLBACK,
              "code_verifier": VERIFIER, "client_id": "rp1", "client_secret": rp.secret},
    )  # fmt: skip
    assert post.status_code == 200 and "id_token" in post.json()
    both = rp.post(
        "/oidc/token",
        data={"grant_type": "authorization_code", "code": get_code(rp, "rp1"), "redirect_uri": CALLBACK,
              "code_verifier": VERIFIER, "client_secret": rp.secret},
        auth=("rp1", rp.secret),
    )  # fmt: skip
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    wrong = exchange(rp, "rp1", "not-the-secret", get_code(rp, "rp1"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")


def test_missing_response_type_goes_back_as_an_error(rp: Any) -> None:
    response = rp.get("/oidc/authorize", params=authorize_query("rp1", response_type=""))
    answer = query_of(response.headers["location"])
    assert response.headers["location"].startswith(CALLBACK)
    assert (answer["error"], answer["state"]) == ("invalid_request", "state-1")
    token = rp.get("/oidc/authorize", params=authorize_query("rp1", response_type="token"))
    assert query_of(token.headers["location"])["error"] == "unsupported_response_type"


def test_id_token_signature_kid_and_no_alg_none(rp: Any) -> None:
    metadata = rp.get("/.well-known/openid-configuration").json()
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert metadata["subject_types_supported"] == ["pairwise"]
    body = tokens_of(rp)
    token = decode(rp, body["id_token"])
    kids = {key["kid"] for key in rp.get("/oidc/jwks").json()["keys"]}
    assert token.header["alg"] == "RS256" and token.header["kid"] in kids
    claims = token.claims
    assert claims["iss"] == metadata["issuer"] == "http://testserver"
    assert claims["aud"] == "rp1" and claims["exp"] > claims["iat"] >= claims["auth_time"]


def test_userinfo_by_get_post_header_and_post_body(rp: Any) -> None:
    body = tokens_of(rp)
    header = {"Authorization": f"Bearer {body['access_token']}"}
    by_get = rp.get("/oidc/userinfo", headers=header)
    by_post = rp.post("/oidc/userinfo", headers=header)
    by_body = rp.post("/oidc/userinfo", data={"access_token": body["access_token"]})
    assert by_get.status_code == by_post.status_code == by_body.status_code == 200
    assert by_get.json() == by_post.json() == by_body.json()
    assert by_get.json()["sub"] == decode(rp, body["id_token"]).claims["sub"]
    both = rp.post("/oidc/userinfo", headers=header, data={"access_token": body["access_token"]})
    assert both.status_code == 400
    bad = rp.get("/oidc/userinfo", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
    assert rp.get("/oidc/userinfo").status_code == 401


def test_nonce_is_echoed_and_absent_when_not_sent(rp: Any) -> None:
    assert decode(rp, tokens_of(rp, nonce="n-123")["id_token"]).claims["nonce"] == "n-123"
    assert "nonce" not in decode(rp, tokens_of(rp, nonce="")["id_token"]).claims


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("openid", {"sub"}),
        ("openid profile", {"sub", "name", "nickname"}),
        ("openid email", {"sub", "email", "email_verified"}),
        ("openid phone", {"sub", "phone_number", "phone_number_verified"}),
        ("openid profile email phone campus", {"sub", "name", "nickname", "email", "email_verified",
                                              "phone_number", "phone_number_verified"}),
    ],
)  # fmt: skip
def test_scopes_ask_for_claims_within_the_policy(rp: Any, scope: str, expected: set[str]) -> None:
    body = tokens_of(rp, scope=scope)
    userinfo = rp.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert set(userinfo) == expected
    assert body["scope"] == scope


def test_prompt_none_and_prompt_login(rp: Any, cas_server: Any) -> None:
    assert get_code(rp, "rp1", prompt="none")
    rp.cookies.clear()
    silent = rp.get("/oidc/authorize", params=authorize_query("rp1", prompt="none"))
    assert query_of(silent.headers["location"]) | {"state": "state-1"} == {
        **query_of(silent.headers["location"]),
        "error": "login_required",
    }
    sign_in(rp, cas_server, UID)
    time.sleep(1.1)  # auth_time has whole seconds
    again = rp.get("/oidc/authorize", params=authorize_query("rp1", prompt="login"))
    assert again.status_code == 303 and again.headers["location"].startswith("/login?next=")
    assert again.headers["location"].endswith("&renew=true")  # CAS must ask for the password again
    back = unquote(again.headers["location"].split("next=")[1].split("&renew")[0])
    assert "prompt" not in query_of(back)
    assert rp.get(back).status_code == 303  # an older sign-in does not satisfy it …
    assert sign_in(rp, cas_server, UID, back).status_code == 303
    done = rp.get(back)
    assert "code" in query_of(done.headers["location"])  # … a fresh one does


def test_max_age(rp: Any, cas_server: Any) -> None:
    assert get_code(rp, "rp1", max_age="3600")
    time.sleep(1.1)
    stale = rp.get("/oidc/authorize", params=authorize_query("rp1", max_age="0"))
    assert stale.status_code == 303 and "renew=true" in stale.headers["location"]
    back = unquote(stale.headers["location"].split("next=")[1].split("&renew")[0])
    sign_in(rp, cas_server, UID, back)
    code = query_of(rp.get(back).headers["location"])["code"]
    claims = decode(rp, exchange(rp, "rp1", rp.secret, code).json()["id_token"]).claims
    assert claims["auth_time"] >= int(time.time()) - 5
    silent = rp.get("/oidc/authorize", params=authorize_query("rp1", max_age="0", prompt="none"))
    assert query_of(silent.headers["location"])["error"] == "login_required"


def test_unknown_parameters_and_hints_are_ignored(rp: Any) -> None:
    hint = tokens_of(rp)["id_token"]
    code = get_code(rp, "rp1", foo="bar", claims='{"userinfo":{"student_number":null}}', login_hint=UID,
                    ui_locales="en zh-CN", id_token_hint=hint, display="page", acr_values="1")  # fmt: skip
    body = exchange(rp, "rp1", rp.secret, code).json()
    assert "student_number" not in decode(rp, body["id_token"]).claims


def test_code_reuse_is_refused_and_revokes_its_tokens(rp: Any) -> None:
    code = get_code(rp, "rp1")
    first = exchange(rp, "rp1", rp.secret, code).json()
    header = {"Authorization": f"Bearer {first['access_token']}"}
    assert rp.get("/oidc/userinfo", headers=header).status_code == 200
    second = exchange(rp, "rp1", rp.secret, code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert rp.get("/oidc/userinfo", headers=header).status_code == 401
    refresh = rp.post("/oidc/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                      auth=("rp1", rp.secret))  # fmt: skip
    assert refresh.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        CALLBACK + "/",
        CALLBACK + "?x=1",
        CALLBACK.upper(),
        "https://evil.example/callback",
        CALLBACK.replace("https", "http"),
    ],
)
def test_an_unregistered_redirect_uri_is_never_redirected_to(rp: Any, redirect_uri: str) -> None:
    response = rp.get("/oidc/authorize", params=authorize_query("rp1", redirect_uri=redirect_uri))
    assert response.status_code == 400 and "location" not in response.headers
    assert "not registered" in response.text
    unknown = rp.get("/oidc/authorize", params=authorize_query("nobody"))
    assert unknown.status_code == 400 and "location" not in unknown.headers


def test_the_token_request_must_repeat_the_redirect_uri(rp: Any) -> None:
    response = exchange(rp, "rp1", rp.secret, get_code(rp, "rp1"), redirect_uri=CALLBACK + "/")
    assert response.json()["error"] == "invalid_grant"


def test_refresh_token(rp: Any) -> None:
    first = tokens_of(rp)
    refreshed = rp.post("/oidc/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                        auth=("rp1", rp.secret))  # fmt: skip
    body = refreshed.json()
    assert refreshed.status_code == 200 and body["refresh_token"] != first["refresh_token"]
    userinfo = rp.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.json()["sub"] == decode(rp, first["id_token"]).claims["sub"]


def test_pkce(rp: Any, make_app: MakeApp) -> None:
    wrong = exchange(rp, "rp1", rp.secret, get_code(rp, "rp1"), code_verifier="w" * 50)
    assert wrong.json() == {"error": "invalid_grant", "error_description": wrong.json()["error_description"]}
    plain = rp.get("/oidc/authorize", params=authorize_query("rp1", code_challenge_method="plain"))
    assert query_of(plain.headers["location"])["error"] == "invalid_request"
    make_app("spa", kind="public")
    no_pkce = rp.get("/oidc/authorize", params=authorize_query("spa", code_challenge="", code_challenge_method=""))
    assert query_of(no_pkce.headers["location"])["error_description"].startswith("a public client must use PKCE")
    public = exchange(rp, "spa", None, get_code(rp, "spa"))
    assert public.status_code == 200 and "id_token" in public.json()
    missing = exchange(rp, "spa", None, get_code(rp, "spa"), code_verifier="")
    assert missing.json()["error"] == "invalid_grant"
