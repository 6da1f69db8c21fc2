"""Our access log, as pure ASGI middleware: one JSON line per request, and the request metrics.

A line holds the method, the route *template* (`/me/verify/{flow_id}`, never the path it was filled with),
the status, the duration in milliseconds, a request id and the worker's pid (added by the formatter) — never
the query string, a header or a body, so CAS tickets, codes and tokens cannot reach it. The request id is the
proxy's `X-Request-ID` when it looks like one (else a new one); it is echoed in the response's `X-Request-ID`
and carried by every other line logged while the request is served (`idbroker.logs.REQUEST_ID`).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idbroker.logs import REQUEST_ID
from idbroker.web.metrics import METHODS, record_request

log = logging.getLogger("idbroker.access")
INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
UNMATCHED = "unmatched"  # no route: the path itself could be anything (a phone number), so it is not written


def route_template(scope: Scope) -> str:
    """The template of the route that served the request (Starlette's router leaves it in the scope)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if INCOMING_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"  # a client chooses it
            record_request(method, route, status, seconds)
            # every field is known to hold no personal data, so the redaction filter lets the line through as is
            extra = {"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 2)}
            log.info("request", extra={**extra, "_built_safe": True})
            REQUEST_ID.reset(token)


def install(app: FastAPI) -> None:
    """Add the access log outside every middleware added before it (so it times and sees their answers)."""
    app.add_middleware(AccessLog)
