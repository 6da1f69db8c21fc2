"""Token revocation (RFC 7009). The app authenticates (a public app by its client_id); the answer is 200
whether or not the token was known (§2.2). Revoking a refresh token revokes its whole grant, with the
access tokens issued from it (§2.1); revoking an access token revokes that token. Another app's token is
left alone."""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session

from idbroker.oidc.rfc6749.client_auth import authenticate_client
from idbroker.oidc.rfc6749.errors import invalid_request
from idbroker.oidc.rfc6749.tokens import find_token, revoke_grant, revoke_token

TOKEN_TYPE_HINTS = ("access_token", "refresh_token")


def revoke(session: Session, authorization: str | None, form: Mapping[str, str]) -> None:
    app = authenticate_client(session, authorization, form)
    value = form.get("token")
    if not value:
        raise invalid_request("token is required")
    token = find_token(session, value, lock=True)  # the hint only speeds a search up (§2.1): one table here
    if token is None or token.client_id != app.client_id:
        return
    if token.kind == "refresh" and token.grant_id is not None:
        revoke_grant(session, token.grant_id, reason="refresh token revoked")
    else:
        revoke_token(session, token)
