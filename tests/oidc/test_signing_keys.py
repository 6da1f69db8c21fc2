"""Discovery, the JWKS, signing-key rotation (old keys verify until they expire), private keys encrypted
at rest, and every verification pinned to RS256 (no `alg: none`, no HS256 made with our public key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from plugins.apps import Campus, MakeApp, exchange, get_code
from plugins.web import sign_in
from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import get_settings
from idbroker.oidc.keys import rotate
from idbroker.oidc.models import SigningKey

UID = "1120150001"


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def rp(sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any) -> Any:
    _app, web_client.secret = make_app("rp1", post_logout_redirect_uris=("https://app.example.edu/bye",))
    cas_server.add_user(UID)
    sign_in(web_client, cas_server, UID)
    return web_client


def id_token(client: Any) -> str:
    return exchange(client, "rp1", client.secret, get_code(client, "rp1")).json()["id_token"]


def test_discovery_document(rp: Any) -> None:
    meta = rp.get("/.well-known/openid-configuration").json()
    issuer = meta["issuer"]
    assert issuer == "http://testserver"
    for name, path in (("authorization_endpoint", "/oidc/authorize"), ("token_endpoint", "/oidc/token"),
                       ("userinfo_endpoint", "/oidc/userinfo"), ("jwks_uri", "/oidc/jwks"),
                       ("introspection_endpoint", "/oidc/introspect"), ("revocation_endpoint", "/oidc/revoke"),
                       ("end_session_endpoint", "/oidc/logout")):  # fmt: skip
        assert meta[name] == issuer + path
    assert meta["subject_types_supported"] == ["pairwise"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post", "none"}
    assert meta["request_uri_parameter_supported"] is False


def test_rotation_keeps_old_tokens_verifiable_until_the_key_expires(rp: Any, sqlite_engine: Engine) -> None:
    before = id_token(rp)
    old_kid = jwt.decode(before, KeySet.import_key_set(rp.get("/oidc/jwks").json()), algorithms=["RS256"]).header["kid"]
    with Session(sqlite_engine, expire_on_commit=False) as session:
        new, retired = rotate(session, get_settings())
        session.commit()
    assert [row.kid for row in retired] == [old_kid]
    rp.app.state.idb_oidc_provider.keys.refresh()

    after = id_token(rp)
    published = KeySet.import_key_set(rp.get("/oidc/jwks").json())
    assert {key.kid for key in published} == {old_kid, new.kid}
    assert jwt.decode(after, published, algorithms=["RS256"]).header["kid"] == new.kid
    assert jwt.decode(before, published, algorithms=["RS256"]).claims["aud"] == "rp1"  # the old one still verifies

    with Session(sqlite_engine) as session:  # the retention period passes
        old = session.get(SigningKey, old_kid)
        assert old is not None
        old.expires_at = utcnow() - timedelta(seconds=1)
        session.add(old)
        session.commit()
    rp.app.state.idb_oidc_provider.keys.refresh()
    assert {key["kid"] for key in rp.get("/oidc/jwks").json()["keys"]} == {new.kid}
    refused = rp.get("/oidc/logout", params={"id_token_hint": before})
    assert refused.status_code == 400  # our own expired key is no longer trusted


def test_private_keys_are_encrypted_at_rest(rp: Any, sqlite_engine: Engine) -> None:
    id_token(rp)
    with Session(sqlite_engine) as session:
        row = session.scalars(select(SigningKey)).one()
    assert row.private_key_cipher.startswith("k1:")
    assert '"d"' not in row.private_key_cipher and "PRIVATE" not in row.private_key_cipher
    assert set(row.public_jwk) == {"kty", "n", "e", "kid", "alg", "use"}  # no private member is published


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


def test_alg_none_and_key_confusion_are_refused(rp: Any) -> None:
    genuine = jwt.decode(id_token(rp), KeySet.import_key_set(rp.get("/oidc/jwks").json()), algorithms=["RS256"])
    claims = dict(genuine.claims)
    kid = genuine.header["kid"]
    public_jwk = rp.get("/oidc/jwks").json()["keys"][0]
    from cryptography.hazmat.primitives import serialization
    from joserfc.jwk import RSAKey

    pem = (
        RSAKey.import_key(public_jwk)
        .get_op_key("verify")
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    unsigned = forged({"alg": "none", "kid": kid}, claims, None)
    confused = forged({"alg": "HS256", "kid": kid}, claims, pem)  # HMAC "signed" with our public key
    for token in (unsigned, confused):
        response = rp.get("/oidc/logout", params={"id_token_hint": token})
        assert response.status_code == 400, token
        assert "not an ID token of this provider" in response.text
    assert rp.get("/oidc/logout", params={"id_token_hint": id_token(rp)}).status_code == 200


def test_python_jose_is_not_used() -> None:
    """joserfc, not python-jose (README: a forged HS256 token accepted with a DER RSA key, barely maintained)."""
    assert importlib.util.find_spec("jose") is None
    package = Path(__file__).resolve().parent.parent.parent / "idbroker"
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from jose[ .]|import jose\b)", text, re.MULTILINE), path
