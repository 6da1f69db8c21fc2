"""Apps calling the REST API as themselves: a client-credentials bearer token names the app."""

from __future__ import annotations

from sqlmodel import Session

from idbroker.oidc.rfc6749.tokens import BearerApp, Unusable, find_access


class NotAnApp(PermissionError):
    """No valid client-credentials token: the message says what is wrong."""


def app_of_token(session: Session, token_value: str) -> BearerApp:
    try:
        bearer = find_access(session, token_value)
    except Unusable:
        raise NotAnApp("the access token is invalid, expired or revoked, or its app is disabled") from None
    if bearer.person_id is not None:
        raise NotAnApp("this token stands for a person: use a client-credentials token")
    return bearer.app
