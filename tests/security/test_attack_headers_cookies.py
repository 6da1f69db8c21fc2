"""Security headers on every page and API answer, and every cookie hardened — walking every route in the
app's router list (demo routes included), for a visitor and for a signed-in member of staff, with the broker
served over http (development) and over https (production: HSTS, Secure cookies).

Every answer: `Content-Security-Policy` with `default-src 'self'` and `frame-ancestors 'none'` (no inline
script except the API docs' viewer), `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`,
`Referrer-Policy: same-origin`; `Strict-Transport-Security` exactly when the public URL is https. Every
`Set-Cookie`: `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain` (host-only, so no sibling campus host gets it)
and `Secure` exactly when https.

The cookies do not use the `__Host-` prefix yet (it requires `Secure`, which the http development mode cannot
set, so the names would have to depend on the public URL). Without it a sibling campus host could still *set*
(toss) a `Domain=` cookie that reaches the broker; what that buys is limited by the session being replaced at
every login (`test_attack_session_fixation.py`), and a `__Host-` name over https is the remaining hardening.

Elsewhere (not repeated here): the pages load nothing from elsewhere and run no inline script, and the docs'
policy (`tests/web/test_security_headers.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from attack_support import app_routes, grant_every_role
from fastapi.testclient import TestClient
from plugins.privacy import ADMIN_UID, Campus
from sqlalchemy import Engine

from idbroker.config import Settings
from idbroker.web.app import create_app
from idbroker.web.security import DOCS_PATHS

VALUES = {"flow_id": "f1", "contact_id": "1", "token": "t" * 43, "operation_id": "1", "approval_id": "1",
          "verdict": "approve", "client_id": "demo-app", "pseudonym": "P" * 32, "number": "1120101234",
          "checkpoint_id": "1", "delivery_id": "1", "signature": "s", "candidate_id": "1",
          "api": "user/get"}  # fmt: skip


def check_headers(response: httpx.Response, https: bool) -> list[str]:
    problems = []
    csp = response.headers.get("content-security-policy", "")
    if "default-src 'self'" not in csp or "frame-ancestors 'none'" not in csp:
        problems.append(f"CSP {csp!r}")
    if "unsafe-inline" in csp and response.request.url.path not in DOCS_PATHS:
        problems.append("unsafe-inline outside the docs")
    for name, value in (("x-frame-options", "DENY"), ("x-content-type-options", "nosniff"),
                        ("referrer-policy", "same-origin")):  # fmt: skip
        if response.headers.get(name) != value:
            problems.append(f"{name}: {response.headers.get(name)!r}")
    hsts = response.headers.get("strict-transport-security")
    if https != bool(hsts and hsts.startswith("max-age=31536000")):
        problems.append(f"HSTS {hsts!r} with https={https}")
    return problems


def check_cookies(response: httpx.Response, https: bool) -> list[str]:
    problems = []
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            if not morsel["httponly"]:
                problems.append(f"{name} not HttpOnly")
            if morsel["samesite"].lower() not in ("lax", "strict"):
                problems.append(f"{name} SameSite={morsel['samesite']!r}")
            if morsel["path"] != "/":
                problems.append(f"{name} Path={morsel['path']!r}")
            if morsel["domain"]:
                problems.append(f"{name} Domain={morsel['domain']!r}")
            if bool(morsel["secure"]) != https:
                problems.append(f"{name} Secure={morsel['secure']!r} with https={https}")
    return problems


@pytest.fixture(params=["http", "https"])
def site(request: pytest.FixtureRequest, sqlite_engine: Engine, cas_server: Any) -> Iterator[tuple[TestClient, bool]]:
    https = request.param == "https"
    public = "https://id.example.edu" if https else "http://127.0.0.1"  # demo mode: http on loopback only
    settings = Settings(database_url=str(sqlite_engine.url), public_url=public, cas_server_url=cas_server.url,
                        demo_mode=True)  # fmt: skip
    with TestClient(create_app(settings), base_url=public, follow_redirects=False) as client:
        yield client, https


def walk(client: TestClient, campus: Campus, https: bool) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    values = {**VALUES, "person_id": campus.zhang, "candidate_id": str(campus.candidate)}
    for route in app_routes(client.app):
        url = re.sub(r"\{(\w+)(:\w+)?\}", lambda match: values[match.group(1)], route.path)
        for accept in ("text/html", "application/json"):
            response = client.request(route.method, url, headers={"accept": accept})
            problems = check_headers(response, https) + check_cookies(response, https)
            if response.status_code >= 500:
                problems.append(f"status {response.status_code}")
            if problems:
                found[f"{route.label} ({accept})"] = problems
    for extra in ("/static/site.css", "/no/such/page", "/me?lang=en"):
        response = client.get(extra, headers={"accept": "text/html"})
        problems = check_headers(response, https) + check_cookies(response, https)
        if problems:
            found[extra] = problems
    return found


def test_every_route_for_a_visitor(site: tuple[TestClient, bool], privacy_campus: Campus) -> None:
    client, https = site
    assert walk(client, privacy_campus, https) == {}


def test_every_route_for_staff_signed_in(
    site: tuple[TestClient, bool], privacy_campus: Campus, cas_server: Any, sqlite_engine: Engine
) -> None:
    client, https = site
    grant_every_role(sqlite_engine, ADMIN_UID)
    cas_server.add_user(ADMIN_UID)
    base = str(client.base_url).rstrip("/")
    ticket = cas_server.issue_ticket(ADMIN_UID, f"{base}/login/cas?next=%2F")
    login = client.get("/login/cas", params={"next": "/", "ticket": ticket})
    assert login.status_code == 303 and check_cookies(login, https) == [] and check_headers(login, https) == []
    assert client.get("/staff/whoami").status_code == 200
    assert walk(client, privacy_campus, https) == {}
