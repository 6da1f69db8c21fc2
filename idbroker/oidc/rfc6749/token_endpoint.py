"""The token endpoint (RFC 6749 §3.2): authenticate the client, then hand the request to its grant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from idbroker.oidc.provider import Provider
from idbroker.oidc.rfc6749.authorization_code import exchange_code
from idbroker.oidc.rfc6749.client_auth import authenticate_client
from idbroker.oidc.rfc6749.client_credentials import client_token
from idbroker.oidc.rfc6749.errors import OAuthError, invalid_request
from idbroker.oidc.rfc6749.refresh_token import refresh
from idbroker.release.gate import ReleaseRefused

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


def token_request(
    session: Session, provider: Provider, authorization: str | None, form: Mapping[str, str], *, issuer: str
) -> dict[str, Any]:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise invalid_request("grant_type is required")
    app = authenticate_client(session, authorization, form)
    try:
        if grant_type == "authorization_code":
            return exchange_code(session, provider, app, form, issuer=issuer)
        if grant_type == "refresh_token":
            return refresh(session, provider, app, form, issuer=issuer)
        if grant_type == "client_credentials":
            return client_token(session, provider, app)
    except ReleaseRefused as exc:
        raise OAuthError("invalid_grant", f"nothing can be released to this app now: {exc.reason}") from None
    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
