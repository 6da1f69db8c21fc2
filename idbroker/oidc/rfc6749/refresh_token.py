"""Refreshing an access token (RFC 6749 §6) with rotation and reuse detection (OAuth 2.0 Security BCP
§4.14.2): every refresh token works once and is replaced by a new one; presenting a used one again means
it was stolen (or the app is confused), so the whole grant — every token of that sign-in — is revoked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.oidc.models import Grant
from idbroker.oidc.provider import Provider
from idbroker.oidc.rfc6749.authorization_code import issue_tokens
from idbroker.oidc.rfc6749.errors import OAuthError, invalid_grant, invalid_request
from idbroker.oidc.rfc6749.tokens import find_token, revoke_grant
from idbroker.release.models import App


def refresh(session: Session, provider: Provider, app: App, form: Mapping[str, str], *, issuer: str) -> dict[str, Any]:
    value = form.get("refresh_token")
    if not value:
        raise invalid_request("refresh_token is required")
    token = find_token(session, value, lock=True)
    if token is None or token.kind != "refresh" or token.client_id != app.client_id or token.grant_id is None:
        raise invalid_grant("unknown refresh token")
    if token.used_at is not None:
        revoke_grant(session, token.grant_id, reason="refresh token reused")
        raise invalid_grant("this refresh token was already used: the sign-in it belongs to is revoked")
    grant = session.get(Grant, token.grant_id)
    if token.revoked_at is not None or grant is None or grant.revoked_at is not None:
        raise invalid_grant("the refresh token was revoked")
    if token.expires_at <= utcnow():
        raise invalid_grant("the refresh token has expired")
    scope = form.get("scope")
    if scope is not None and not set(scope.split()) <= set(grant.scope.split()):
        raise OAuthError("invalid_scope", "a refresh cannot widen the scope of the sign-in")
    token.used_at = utcnow()
    session.add(token)
    return issue_tokens(session, provider, app, grant, issuer=issuer, with_id_token=False, scope=scope)
