"""Errors as people see them: a page in their language for browsers, the usual JSON for API clients.

`PageError(status, "error.key")` is an HTTP error whose message is a translation key (see `i18n/`); any
other `HTTPException` shows its detail. `LoginRequired` (from `require_login`) sends a browser to the
login with `next` set, and an API client gets 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from idbroker.web.session import LoginRequired


class PageError(HTTPException):
    def __init__(self, status_code: int, message_key: str) -> None:
        from idbroker.web.templates import translate

        super().__init__(status_code, detail=translate("en", message_key))
        self.message_key = message_key


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _status_key(status_code: int) -> str:
    return f"error.{status_code}" if status_code in (400, 401, 403, 404, 405, 413) else "error.other"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not wants_html(request):
        return await http_exception_handler(request, exc)
    from idbroker.web.templates import language, render, translate

    key = getattr(exc, "message_key", None)
    message = translate(language(request), key) if key else str(exc.detail)
    response = render(
        request, "error_page.html", status_code=exc.status_code, title_key=_status_key(exc.status_code), message=message
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if wants_html(request):
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='')}", status_code=303)
    return JSONResponse({"detail": "Not signed in: log in through /login"}, status_code=401)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(LoginRequired, _login_required)


class Unreadable(BaseModel):
    """FastAPI's own answer to a body it cannot read (not UTF-8, not JSON, a broken form)."""

    detail: str


def document_unreadable_bodies(app: FastAPI) -> None:
    """Every JSON route that reads a body can answer 400 before any of our code runs: say so in the OpenAPI
    document (a route that already documents a 400 describes it itself; HTML form routes answer with pages)."""
    for route in _api_routes(app.routes):
        answers_json = issubclass(getattr(route.response_class, "value", route.response_class), JSONResponse)
        if answers_json and route.body_field is not None and 400 not in route.responses:
            route.responses[400] = {"model": Unreadable, "description": "A body that cannot be read"}


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI ≥ 0.16x keeps it nested)
            yield from _api_routes(route.original_router.routes)
