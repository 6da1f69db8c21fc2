"""The JSON Web Key Set document (RFC 7517 §5) at `jwks_uri`: the public half of every key that has not
expired — the signing key and the retired ones still trusted — each with its `kid`, `alg` and `use`."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from idbroker.oidc.keys import live_keys


def jwks_document(session: Session) -> dict[str, list[dict[str, Any]]]:
    return {"keys": [dict(row.public_jwk) for row in live_keys(session)]}
