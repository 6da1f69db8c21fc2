"""The client-credentials grant (RFC 6749 §4.4): an app calling the broker's REST API as itself.

Only confidential apps; the token stands for the app, not for any person, and has no refresh token.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from idbroker.oidc.provider import Provider
from idbroker.oidc.rfc6749.errors import OAuthError
from idbroker.oidc.rfc6749.tokens import new_token
from idbroker.release.models import App

APP_SCOPE = "people"


def client_token(session: Session, provider: Provider, app: App) -> dict[str, Any]:
    if app.kind != "confidential":
        raise OAuthError("unauthorized_client", "a public client cannot use client credentials")
    lifetime = provider.settings.oidc_access_token_seconds
    issued = new_token(
        session, kind="access", client_id=app.client_id, grant_id=None, scope=APP_SCOPE, lifetime_seconds=lifetime
    )
    return {"access_token": issued.value, "token_type": "Bearer", "expires_in": lifetime, "scope": APP_SCOPE}
