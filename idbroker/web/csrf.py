"""CSRF tokens: every POST form carries `csrf_token`, derived from the browser's own secret cookie.

The token is HMAC-SHA256 of a fixed label keyed with the session cookie's value (or, before login, with a
random `idb_csrf` cookie), so it is per session, changes at login, and is never stored. A form whose token
is missing or wrong is refused with 403 before anything runs (`verify_csrf` as a route dependency).

JSON APIs authenticated by the session cookie without a token (the registry admin API) use
`verify_same_origin` instead: a browser that says the request comes from another origin (`Sec-Fetch-Site`
cross-site or same-site — a sibling campus host shares the cookie despite SameSite —, or an `Origin` that is
not the broker's public URL) is refused with 403; clients that are not browsers send neither header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from idbroker.web.errors import PageError
from idbroker.web.session import COOKIE_NAME, current_login, settings_of

FIELD = "csrf_token"
HEADER = "x-csrf-token"
ANONYMOUS_COOKIE = "idb_csrf"
_LABEL = b"idbroker csrf v1"


def token_for(secret: str) -> str:
    """The token of a cookie value (the session's, or the anonymous one)."""
    digest = hmac.new(secret.encode("utf-8"), _LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _secret(request: Request) -> str | None:
    """The cookie value the token derives from: the live session's, else the anonymous one."""
    if current_login(request) is not None:
        return getattr(request.state, "idb_session_value", None) or request.cookies.get(COOKIE_NAME)
    return getattr(request.state, "idb_csrf_cookie", None) or request.cookies.get(ANONYMOUS_COOKIE)


def csrf_token(request: Request) -> str:
    """The token for forms on this page; before login it may create the anonymous cookie (sent by `render`)."""
    secret = _secret(request)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        request.state.idb_csrf_cookie = secret
    return token_for(secret)


def token_is_valid(request: Request, sent: str | None) -> bool:
    secret = _secret(request)
    if not sent or secret is None:
        return False
    return hmac.compare_digest(sent.encode("utf-8"), token_for(secret).encode("utf-8"))


async def verify_csrf(request: Request) -> None:
    """Dependency for every POST form: 403 unless the form (or the X-CSRF-Token header) has the token."""
    form = await request.form()
    sent = form.get(FIELD)
    sent = sent if isinstance(sent, str) else request.headers.get(HEADER)
    if not await run_in_threadpool(token_is_valid, request, sent):
        raise PageError(403, "error.csrf")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def verify_same_origin(request: Request) -> None:
    """Dependency for cookie-authenticated JSON APIs: 403 when a browser says the request is cross-origin."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site not in ("same-origin", "none"):
            raise PageError(403, "error.csrf")
        return
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() != _origin(settings_of(request).public_url):
        raise PageError(403, "error.csrf")
