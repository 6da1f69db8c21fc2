"""Who is asking: the client address that audit events record, and which reverse proxies may say so.

Behind a proxy the peer is the proxy. Its `X-Forwarded-For` and `X-Forwarded-Proto` are believed only when
the peer is one of `IDBROKER_TRUSTED_PROXIES` (addresses or networks; default loopback): the client is then
the rightmost address of `X-Forwarded-For` that is not itself a trusted proxy, so a client cannot pick its
own address by sending the header. This is uvicorn's `ProxyHeadersMiddleware`, installed in the app itself so
it behaves the same under any server (`idbroker serve` turns uvicorn's own copy off).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from idbroker.config import Settings


def client_ip(request: Request) -> str | None:
    """The client address (behind a trusted proxy: the one it forwarded for)."""
    return request.client.host if request.client else None


def trusted_proxies(settings: Settings) -> list[str]:
    return [entry.strip() for entry in settings.trusted_proxies.split(",")]


def install(app: FastAPI, settings: Settings) -> None:
    """Add the proxy-header handling outside every other middleware (all of them see the real client)."""
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted_proxies(settings))
