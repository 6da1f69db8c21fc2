"""Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3).

`client_secret_basic` (HTTP Basic, id and secret form-urlencoded first, §2.3.1), `client_secret_post`
(in the body), or `none` for a public app (its `client_id` alone; it must prove possession with PKCE).
Using two methods at once is refused (§2.3). A disabled app does not authenticate.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import unquote_plus

from sqlmodel import Session

from idbroker.oidc.rfc6749.errors import InvalidClient, invalid_request
from idbroker.release.models import App
from idbroker.release.registry import verify_secret


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("malformed HTTP Basic credentials", basic=True) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("malformed HTTP Basic credentials", basic=True)
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(
    session: Session, authorization: str | None, form: Mapping[str, str], *, allow_public: bool = True
) -> App:
    """The app making this request, authenticated; `InvalidClient` (401) or `invalid_request` otherwise."""
    basic = basic_credentials(authorization)
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    if basic is not None:
        if body_secret:
            raise invalid_request("use one client authentication method, not both")
        client_id, secret = basic
        if body_id and body_id != client_id:
            raise invalid_request("client_id in the body differs from the authenticated client")
        app = session.get(App, client_id)
        if app is None or not app.enabled or not verify_secret(app, secret):
            raise InvalidClient(basic=True)
        return app
    if not body_id:
        raise InvalidClient("client authentication required")
    app = session.get(App, body_id)
    if app is None or not app.enabled:
        raise InvalidClient()
    if app.kind == "public":
        if not allow_public:
            raise InvalidClient("a public client cannot use this endpoint")
        if body_secret:
            raise InvalidClient("a public client has no secret")
        return app
    if not body_secret or not verify_secret(app, body_secret):
        raise InvalidClient()
    return app
