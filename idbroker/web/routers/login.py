"""Signing in through the campus CAS, signing out, the home page, and `/staff/whoami`.

GET /login?next=/path → CAS `/login?service=<public_url>/login/cas?next=%2Fpath` → CAS sends the browser to
GET /login/cas?next=…&ticket=ST-… → the ticket is validated once, the uid resolved to its person, a fresh
session started → 303 to `next` (a path on this site only). POST /logout ends the session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from idbroker.db import session_scope
from idbroker.staff.require import require_role
from idbroker.staff.roles import ROLES
from idbroker.web.cas import CasNotConfigured, CasRefused, CasUnavailable, cas_client, safe_next, service_url
from idbroker.web.csrf import verify_csrf
from idbroker.web.login_flow import audit_login, authentication_time, resolve_uid
from idbroker.web.session import Login, end_login, settings_of, start_login
from idbroker.web.templates import render

router = APIRouter(tags=["login"])

Next = Annotated[str | None, Query(description="Where to go after signing in: a path on this site (else `/`).")]


def login_page_url(request: Request, next_path: str, renew: bool = False) -> str:
    """Where `/login` sends the browser: the campus CAS, or the development CAS page in demo mode."""
    settings = settings_of(request)
    if settings.cas_server_url:
        return cas_client(settings).login_url(service_url(settings.public_url, next_path), renew=renew)
    if settings.demo_mode:
        return f"/demo/cas/login?next={quote(next_path, safe='')}"
    raise CasNotConfigured("IDBROKER_CAS_SERVER_URL is not set")


def complete_login(request: Request, *, uid: str, via: str, auth_time: datetime, next_path: str) -> Response:
    """The uid is authenticated: sign in its person (or explain why not), audited either way."""
    with session_scope(request.app.state.engine) as db:
        resolved = resolve_uid(db, uid)
        audit_login(db, via=via, result=resolved.outcome, uid=uid, person_id=resolved.person_id)
        if resolved.person_id is None:
            return render(request, "login_no_person.html", outcome=resolved.outcome, uid=uid)
        response = RedirectResponse(safe_next(next_path), status_code=303)
        start_login(request, response, db, person_id=resolved.person_id, uid=uid, auth_time=auth_time)
        return response


@router.get(
    "/login",
    summary="Sign in: redirects (303) to the campus CAS, which comes back to /login/cas",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "To the CAS login page"}, 503: {"description": "No CAS server configured"}},
)
def login(
    request: Request,
    next: Next = None,
    renew: Annotated[bool, Query(description="Ask CAS for the password again (OIDC prompt=login).")] = False,
) -> Response:
    try:
        return RedirectResponse(login_page_url(request, safe_next(next), renew), status_code=303)
    except CasNotConfigured:
        return render(request, "login_unavailable.html", status_code=503)


@router.get(
    "/login/cas",
    summary="The CAS callback: validates the service ticket once and starts a session",
    status_code=303,
    response_class=RedirectResponse,
    responses={
        303: {"description": "Signed in: to `next`"},
        200: {"description": "CAS knows the uid but the directory does not (or several people hold it)"},
        400: {"description": "No ticket, or CAS refused it (forged, replayed, expired, for another service)"},
        502: {"description": "The CAS server could not be reached"},
    },
)
def cas_callback(
    request: Request,
    next: Next = None,
    ticket: Annotated[str | None, Query(description="The service ticket `ST-…` CAS issued.")] = None,
) -> Response:
    settings = settings_of(request)
    next_path = safe_next(next)
    if not ticket:
        return render(request, "login_refused.html", status_code=400, reason_key="login.no_ticket")
    try:
        client = cas_client(settings)
        principal = client.validate(ticket, service_url(settings.public_url, next_path))
    except CasRefused as exc:
        with session_scope(request.app.state.engine) as db:
            audit_login(db, via="cas", result="refused", cas_error=exc.code)
        return render(request, "login_refused.html", status_code=400, reason_key="login.ticket_refused")
    except (CasUnavailable, CasNotConfigured):
        with session_scope(request.app.state.engine) as db:
            audit_login(db, via="cas", result="unavailable")
        return render(request, "login_unavailable.html", status_code=502)
    auth_time = authentication_time(principal.attributes)
    return complete_login(request, uid=principal.uid, via="cas", auth_time=auth_time, next_path=next_path)


@router.post(
    "/logout",
    summary="Sign out: ends the session (needs the form's csrf_token)",
    status_code=303,
    response_class=RedirectResponse,
    dependencies=[Depends(verify_csrf)],
    responses={303: {"description": "Signed out: to /"}, 403: {"description": "Missing or wrong CSRF token"}},
)
def logout(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    with session_scope(request.app.state.engine) as db:
        end_login(request, response, db)
    return response


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    return render(request, "home.html")


class WhoAmI(BaseModel):
    uid: str = Field(description="The CAS uid the staff member signed in with.")
    roles: list[str] = Field(description="Their staff roles, as of this request.")


@router.get("/staff/whoami", tags=["staff"], summary="The signed-in staff member and their roles (staff only)")
def whoami(login: Annotated[Login, Depends(require_role(*ROLES))]) -> WhoAmI:
    return WhoAmI(uid=login.uid, roles=sorted(login.roles))
