"""Apps calling the REST API as themselves: a client-credentials bearer token names the app."""

from __future__ import annotations

from sqlmodel import Session

from idbroker.oidc.rfc6749.tokens import Unusable, find_token, live_grant
from idbroker.release.models import App


class NotAnApp(PermissionError):
    """No valid client-credentials token: the message says what is wrong."""


def app_of_token(session: Session, token_value: str) -> App:
    token = find_token(session, token_value)
    try:
        grant = live_grant(session, token, kind="access")
    except Unusable:
        raise NotAnApp("the access token is invalid, expired or revoked") from None
    if grant is not None or token is None:
        raise NotAnApp("this token stands for a person: use a client-credentials token")
    app = session.get(App, token.client_id)
    if app is None or not app.enabled:
        raise NotAnApp("the app is disabled")
    return app
