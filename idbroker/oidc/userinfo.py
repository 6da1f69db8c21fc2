"""The UserInfo endpoint (OpenID Connect Core §5.3): the claims of the token's scopes that the app's
policy allows, through the release gate. The access token comes in the `Authorization: Bearer` header
or in a form body (RFC 6750 §2.1, §2.2), never both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from idbroker.oidc.provider import Provider
from idbroker.oidc.rfc6749.errors import OAuthError
from idbroker.oidc.rfc6749.tokens import Unusable, find_access
from idbroker.release.claims import claims_for_scopes
from idbroker.release.gate import ReleaseRefused
from idbroker.release.policies import policy_for


class InvalidToken(OAuthError):
    def __init__(self, description: str = "the access token is invalid, expired or revoked") -> None:
        super().__init__("invalid_token", description, 401)


def bearer_token(authorization: str | None, form: Mapping[str, str] | None = None) -> str:
    """RFC 6750: the token of the header or of the body; `invalid_request` for both or a malformed one."""
    in_body = (form or {}).get("access_token")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise OAuthError("invalid_request", "Authorization must be `Bearer <token>`", 401)
        if in_body:
            raise OAuthError("invalid_request", "send the token in one place only", 400)
        return value.strip()
    if in_body:
        return in_body
    raise OAuthError("invalid_request", "no access token", 401)


def userinfo(session: Session, provider: Provider, token_value: str) -> dict[str, Any]:
    try:
        bearer = find_access(session, token_value)
    except Unusable:
        raise InvalidToken() from None
    if bearer.person_id is None:
        raise InvalidToken("this token stands for an app, not a person")
    policy = policy_for(provider.settings.policies_dir, bearer.app.client_id)
    wanted = claims_for_scopes(bearer.scope.split())
    try:
        release = provider.gate.release(session, bearer.app, policy, bearer.person_id, wanted=wanted, via="userinfo")
    except ReleaseRefused as exc:
        raise InvalidToken(f"nothing can be released to this app now: {exc.reason}") from None
    return release.claims
