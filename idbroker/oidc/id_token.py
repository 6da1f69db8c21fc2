"""ID tokens (OpenID Connect Core §2, §3.1.3.6): signed RS256 with the current key, `kid` in the header.

Reading one back (an `id_token_hint`) trusts only our own published keys and only RS256: the algorithm
is pinned on every verification, so `alg: none` and an HS256 token "signed" with our public key are
refused (joserfc, not python-jose: see the README).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from idbroker.oidc.keys import ALGORITHM, Keys

PROTOCOL_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp")


class InvalidIdToken(ValueError):
    pass


def at_hash(access_token: str) -> str:
    """Left half of SHA-256 of the access token, base64url (Core §3.1.3.6, for RS256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def make_id_token(
    keys: Keys,
    *,
    issuer: str,
    client_id: str,
    claims: dict[str, Any],
    auth_time: datetime,
    now: datetime,
    lifetime_seconds: int,
    nonce: str | None = None,
    access_token: str | None = None,
) -> str:
    """`claims` are what the release gate released (with `sub`); protocol claims are added here."""
    body: dict[str, Any] = {
        **{name: value for name, value in claims.items() if name not in PROTOCOL_CLAIMS},
        "iss": issuer,
        "sub": claims["sub"],
        "aud": client_id,
        "azp": client_id,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime_seconds,
        "auth_time": int(auth_time.timestamp()),
    }
    if nonce is not None:
        body["nonce"] = nonce
    if access_token is not None:
        body["at_hash"] = at_hash(access_token)
    header = {"alg": ALGORITHM, "kid": keys.kid, "typ": "JWT"}
    return jwt.encode(header, body, keys.signing, algorithms=[ALGORITHM])


def read_id_token(keys: Keys, token: str, *, issuer: str) -> dict[str, Any]:
    """The claims of an ID token we issued (its expiry is not checked: a hint may have expired)."""
    try:
        decoded = jwt.decode(token, keys.trusted, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidIdToken(f"not an ID token of this provider: {type(exc).__name__}") from None
    claims = dict(decoded.claims)
    if claims.get("iss") != issuer or not isinstance(claims.get("sub"), str):
        raise InvalidIdToken("not an ID token of this provider: wrong issuer")
    return claims
