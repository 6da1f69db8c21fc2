"""Token introspection (RFC 7662). The caller authenticates as a confidential app and learns about its
own tokens only: any other token, like an unknown, expired or revoked one, is `{"active": false}` and
nothing else (§2.2). For a person's token the `sub` is released through the gate (it is personal data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from idbroker.oidc.provider import Provider
from idbroker.oidc.rfc6749.client_auth import authenticate_client
from idbroker.oidc.rfc6749.errors import invalid_request
from idbroker.oidc.rfc6749.tokens import Unusable, find_token, live_grant
from idbroker.release.gate import ReleaseRefused
from idbroker.release.policies import policy_for

INACTIVE: dict[str, Any] = {"active": False}


def introspect(
    session: Session, provider: Provider, authorization: str | None, form: Mapping[str, str], *, issuer: str
) -> dict[str, Any]:
    app = authenticate_client(session, authorization, form, allow_public=False)
    value = form.get("token")
    if not value:
        raise invalid_request("token is required")
    token = find_token(session, value)
    if token is None or token.client_id != app.client_id:
        return dict(INACTIVE)
    try:
        grant = live_grant(session, token, kind=token.kind)
    except Unusable:
        return dict(INACTIVE)
    answer: dict[str, Any] = {
        "active": True,
        "scope": token.scope,
        "client_id": token.client_id,
        "token_type": "Bearer" if token.kind == "access" else "refresh_token",
        "exp": int(token.expires_at.timestamp()),
        "iat": int(token.created_at.timestamp()),
        "iss": issuer,
        "aud": token.client_id,
    }
    if grant is not None:
        policy = policy_for(provider.settings.policies_dir, app.client_id)
        try:
            release = provider.gate.release(
                session, app, policy, grant.person_id, wanted={"pseudonym"}, via="introspection"
            )
        except ReleaseRefused:
            return dict(INACTIVE)
        answer["sub"] = release.sub
    return answer
