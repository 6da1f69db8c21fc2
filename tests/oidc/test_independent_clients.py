"""End to end with clients no one here wrote, against the server on a loopback port, the person signing
in through the CAS stand-in's form: Authlib's OAuth 2 client (discovery, the code flow with PKCE, token,
ID token validated with the published JWKS, userinfo, refresh, introspect, revoke) and CZ-NIC's `oic`
(pyoidc) verifying the same ID token with its own JOSE stack (pyjwkest)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import requests
from plugins.apps import CALLBACK, Campus, MakeApp, authorize_in_browser
from sqlalchemy import Engine

UID = "1120150001"


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def authlib_run(
    sqlite_engine: Engine, campus: Campus, make_app: MakeApp, live_server: Any, cas_server: Any, browser_client: Any
) -> dict[str, Any]:
    """The whole Authlib client run; what each step returned."""
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # authlib.jose is deprecated in favour of joserfc, still Authlib's own
        from authlib.jose import JsonWebKey, jwt
        from authlib.oidc.core import CodeIDToken

    _app, secret = make_app("rp1", claims=("pseudonym", "nickname", "email"))
    meta = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10).json()
    client = OAuth2Session(
        "rp1",
        secret,
        scope="openid profile email",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier, nonce = generate_token(64), generate_token(20)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    final = authorize_in_browser(browser_client, url, UID, cas_server)
    token = client.fetch_token(meta["token_endpoint"], authorization_response=final, code_verifier=verifier)
    jwks = requests.get(meta["jwks_uri"], timeout=10).json()
    claims = jwt.decode(
        token["id_token"],
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": meta["issuer"]}},
        claims_params={"nonce": nonce, "client_id": "rp1", "access_token": token["access_token"]},
    )
    claims.validate()
    userinfo = client.get(meta["userinfo_endpoint"]).json()
    refreshed = client.refresh_token(meta["token_endpoint"])
    after_refresh = client.get(meta["userinfo_endpoint"]).json()
    live = client.introspect_token(meta["introspection_endpoint"], token=refreshed["access_token"]).json()
    revoked = client.revoke_token(
        meta["revocation_endpoint"], token=refreshed["refresh_token"], token_type_hint="refresh_token"
    )
    dead = client.introspect_token(meta["introspection_endpoint"], token=refreshed["access_token"]).json()
    return {
        "meta": meta, "state": state, "final": final, "token": token, "claims": dict(claims), "jwks": jwks,
        "nonce": nonce, "userinfo": userinfo, "refreshed": refreshed, "after_refresh": after_refresh,
        "live": live, "revoked": revoked.status_code, "dead": dead,
    }  # fmt: skip


def test_authlib_client_end_to_end(authlib_run: dict[str, Any]) -> None:
    run = authlib_run
    assert f"state={run['state']}" in run["final"]
    assert run["claims"]["aud"] == "rp1" and run["claims"]["nonce"] == run["nonce"]
    assert {"sub", "nickname"} <= set(run["claims"]) and "name" not in run["claims"]  # name is not in the policy
    assert run["userinfo"]["sub"] == run["claims"]["sub"]
    assert set(run["userinfo"]) == {"sub", "nickname", "email", "email_verified"}
    assert run["refreshed"]["refresh_token"] != run["token"]["refresh_token"]
    assert run["after_refresh"] == run["userinfo"]
    assert run["live"]["active"] is True and run["live"]["sub"] == run["claims"]["sub"]
    assert run["revoked"] == 200 and run["dead"] == {"active": False}


def test_oic_verifies_the_same_id_token(authlib_run: dict[str, Any]) -> None:
    from oic.oic.message import IdToken
    from oic.utils.keyio import KeyBundle, KeyJar

    run = authlib_run
    issuer = run["meta"]["issuer"]
    keyjar = KeyJar()
    keyjar.add_kb(issuer, KeyBundle(run["jwks"]["keys"]))
    id_token = IdToken().from_jwt(run["token"]["id_token"], keyjar=keyjar, sender=issuer)
    assert id_token.verify(keyjar=keyjar, iss=issuer, client_id="rp1", skew=60)
    assert id_token["sub"] == run["claims"]["sub"] and id_token["nonce"] == run["nonce"]
    assert id_token.jws_header["alg"] == "RS256" and id_token.jws_header["kid"] == run["jwks"]["keys"][0]["kid"]

    tampered = run["token"]["id_token"].split(".")
    middle = len(tampered[2]) // 2
    tampered[2] = tampered[2][:middle] + ("A" if tampered[2][middle] != "A" else "B") + tampered[2][middle + 1 :]
    from jwkest.jws import BadSignature

    with pytest.raises(BadSignature):
        IdToken().from_jwt(".".join(tampered), keyjar=keyjar, sender=issuer)
