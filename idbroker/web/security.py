"""What every response carries, and what no request may exceed.

- Content-Security-Policy `default-src 'self'` (no inline script or style, nothing from another site),
  `frame-ancestors 'none'` (and X-Frame-Options DENY), `X-Content-Type-Options: nosniff`,
  `Referrer-Policy: same-origin`; Strict-Transport-Security only when `public_url` is https.
  The interactive API docs (/docs, /redoc) load FastAPI's own viewer and get a policy that allows it.
- Request bodies larger than `max_request_bytes` get 413: a declared Content-Length at once, a chunked body
  as soon as the bytes read pass the limit (Starlette's body limit, which FastAPI's body parsing honours). A
  request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 §6.3) and skips the limiter.

Both are pure ASGI middlewares (no `BaseHTTPMiddleware`): on the apps' hot paths (userinfo, resolve) every
microsecond a middleware spends per request is paid thousands of times a second.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idbroker.config import Settings

CSP = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "worker-src 'self' blob:; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(https: bool, csp: str = CSP) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", csp.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    ]
    if https:
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


class SecurityHeaders:
    """ASGI middleware: adds the headers above to every HTTP response (replacing any of the same name)."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https)
        self.docs_headers = security_headers(https, DOCS_CSP)
        self.names = frozenset(name for name, _ in self.headers)  # the same names for the docs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs_headers if scope["path"] in DOCS_PATHS else self.headers
        names = self.names

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(name, value) for name, value in message.get("headers", ()) if name.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware: Starlette's `RequestBodyLimitMiddleware` for every request that may carry a body."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.limited = RequestBodyLimitMiddleware(app, max_body_size=max_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, _ in scope["headers"]:
                if name == b"content-length" or name == b"transfer-encoding":
                    await self.limited(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the body limit and, outside it (so a 413 carries them too), the security headers."""
    app.add_middleware(BodyLimit, max_body_size=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders, https=settings.public_url.lower().startswith("https://"))
