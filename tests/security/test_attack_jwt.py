"""JWT `alg: none`, key confusion and forged claims, everywhere the broker accepts a JWT.

The broker accepts exactly one JWT from outside: the `id_token_hint` of RP-initiated logout (GET and POST
`/oidc/logout`; the hint on `/oidc/authorize` is ignored). Clients authenticate with a secret or PKCE, never a
JWT assertion, and access tokens are opaque: a JWT where a client assertion or a bearer token would go is
refused like any unknown credential. Every forgery below is refused with 400 and signs nobody out.

Elsewhere (not repeated here): python-jose is not used (`tests/oidc/test_signing_keys.py`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from plugins.apps import Campus, MakeApp, app_token, exchange, get_code
from plugins.web import sign_in
from sqlalchemy import Engine

UID = "1120150001"
BYE = "https://app.example.edu/bye"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def rp(sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any) -> Any:
    _app, web_client.secret = make_app("rp1", post_logout_redirect_uris=(BYE,))
    _other, web_client.other_secret = make_app("rp2")
    cas_server.add_user(UID)
    sign_in(web_client, cas_server, UID)
    return web_client


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def genuine(client: Any, client_id: str = "rp1", secret: str | None = None) -> str:
    return exchange(client, client_id, secret or client.secret, get_code(client, client_id)).json()["id_token"]


def forgeries(client: Any) -> dict[str, str]:
    token = genuine(client)
    jwks = client.get("/oidc/jwks").json()
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    claims, kid = dict(decoded.claims), decoded.header["kid"]
    public = RSAKey.import_key(jwks["keys"][0]).get_op_key("verify")
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    attacker = RSAKey.generate_key(2048, parameters={"kid": kid})
    stranger = RSAKey.generate_key(2048, parameters={"kid": "attacker-1"})
    ec = ECKey.generate_key("P-256", parameters={"kid": kid})
    header, body, signature = token.split(".")
    other_person = {**claims, "sub": "A" * 32}
    return {
        "alg none": unsigned({"alg": "none", "kid": kid}, claims),
        "alg None": unsigned({"alg": "None", "kid": kid}, claims),
        "alg NONE, no kid": unsigned({"alg": "NONE"}, claims),
        "RS256 header, no signature": f"{header}.{body}.",
        "HS256 with our PEM public key": hs256({"alg": "HS256", "kid": kid}, claims, pem),
        "HS256 with our DER public key": hs256({"alg": "HS256", "kid": kid}, claims, der),
        "HS256 with our JWK as JSON": hs256({"alg": "HS256", "kid": kid}, claims, json.dumps(jwks["keys"][0]).encode()),
        "RS256 by another key with our kid": jwt.encode({"alg": "RS256", "kid": kid}, claims, attacker),
        "RS256 by an unknown kid": jwt.encode({"alg": "RS256", "kid": "attacker-1"}, claims, stranger),
        "RS256 with the attacker's key embedded (jwk)": jwt.encode(
            {"alg": "RS256", "jwk": stranger.as_dict(private=False)}, claims, stranger
        ),
        "RS256 with a jku to the attacker": jwt.encode(
            {"alg": "RS256", "kid": "attacker-1", "jku": "https://evil.example/jwks"}, claims, stranger
        ),
        "ES256 with our kid": jwt.encode({"alg": "ES256", "kid": kid}, claims, ec),
        "our signature on changed claims": f"{header}.{b64(json.dumps(other_person).encode())}.{signature}",
        "our signature, another header": f"{b64(json.dumps({'alg': 'RS384', 'kid': kid}).encode())}.{body}.{signature}",
        "not a JWT": "not-a-jwt",
        "five parts (JWE)": f"{header}.{body}.{signature}.x.y",
    }


def test_every_forged_id_token_hint_is_refused_and_signs_nobody_out(rp: Any) -> None:
    for name, token in forgeries(rp).items():
        for method in ("GET", "POST"):
            params = {"id_token_hint": token, "post_logout_redirect_uri": BYE}
            response = (
                rp.get("/oidc/logout", params=params) if method == "GET" else rp.post("/oidc/logout", data=params)
            )
            assert response.status_code == 400 and "location" not in response.headers, (name, method)
            assert "not an ID token of this provider" in response.text, (name, response.text[:300])
    assert rp.get("/oidc/consents").status_code == 200  # still signed in


def test_a_hint_for_the_wrong_issuer_or_audience_is_refused(rp: Any, sqlite_engine: Engine) -> None:
    from sqlmodel import Session

    from idbroker.clock import utcnow
    from idbroker.oidc.id_token import make_id_token

    claims = jwt.decode(genuine(rp), KeySet.import_key_set(rp.get("/oidc/jwks").json()), algorithms=["RS256"]).claims
    with Session(rp.app.state.engine) as session:  # the provider's own keys, as the app loaded them
        keys = rp.app.state.idb_oidc_provider.keys.keys(session)

    def signed(issuer: str, client_id: str) -> str:
        return make_id_token(keys, issuer=issuer, client_id=client_id, claims={"sub": claims["sub"]},
                             auth_time=utcnow(), now=utcnow(), lifetime_seconds=600)  # fmt: skip

    wrong_issuer = rp.get("/oidc/logout", params={"id_token_hint": signed("https://evil.example", "rp1")})
    assert wrong_issuer.status_code == 400 and "wrong issuer" in wrong_issuer.text
    # a genuine hint of rp2's, presented as rp1's, cannot take the person to rp1's logout URI
    other = genuine(rp, "rp2", rp.other_secret)
    mixed = rp.get("/oidc/logout", params={"id_token_hint": other, "client_id": "rp1", "post_logout_redirect_uri": BYE})
    assert mixed.status_code == 400 and "location" not in mixed.headers
    unknown_audience = rp.get("/oidc/logout", params={"id_token_hint": signed(claims["iss"], "nobody")})
    assert unknown_audience.status_code == 400 and "unknown client" in unknown_audience.text
    assert rp.get("/oidc/consents").status_code == 200


def test_a_jwt_client_assertion_authenticates_nobody(rp: Any) -> None:
    assertion = unsigned({"alg": "none"}, {"iss": "rp1", "sub": "rp1", "aud": "http://testserver/oidc/token"})
    for form in (
        {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "client_assertion": assertion},
        {"grant_type": "client_credentials", "client_id": "rp1", "client_assertion_type": JWT_BEARER,
         "client_assertion": assertion},
    ):  # fmt: skip
        response = rp.post("/oidc/token", data=form)
        assert response.status_code in (400, 401) and "access_token" not in response.text, response.text


def test_a_jwt_as_a_bearer_token_is_refused(rp: Any) -> None:
    token = genuine(rp)  # a real, signed ID token is still not an access token
    forged = unsigned({"alg": "none"}, {"sub": "rp1", "client_id": "rp1", "scope": "openid"})
    for bearer in (token, forged):
        header = {"Authorization": f"Bearer {bearer}"}
        assert rp.get("/oidc/userinfo", headers=header).status_code == 401
        assert rp.post("/api/apps/v1/people/resolve", json={"pseudonyms": ["x"]}, headers=header).status_code == 401
        introspected = rp.post("/oidc/introspect", data={"token": bearer}, auth=("rp1", rp.secret))
        assert introspected.json() == {"active": False}
    assert app_token(rp, "rp1", rp.secret)  # the control: the app's own opaque token still works
