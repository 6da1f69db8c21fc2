"""CSRF, on every state-changing route of the app (its router list, demo routes included).

Every POST/PUT/PATCH/DELETE route either checks the CSRF token (`verify_csrf`), or is listed in
`NOT_BY_COOKIE` with why a forged cross-site request cannot act with the person's session. A new write route
that does neither fails `test_every_write_route_is_csrf_checked_or_not_cookie_authenticated`.

Elsewhere (not repeated here): the token's derivation, the token of another session and the token changing at
login (`tests/web/test_session_csrf.py`); `/oidc/logout`'s confirmation needing the token
(`tests/oidc/test_rp_logout.py`).
"""

from __future__ import annotations

from typing import Any

from attack_support import WRITES, Endpoint, all_roles_token, app_routes, snapshot
from fastapi.testclient import TestClient
from plugins.privacy import Campus, signed_in_token
from sqlalchemy import Engine

from idbroker.config import Settings
from idbroker.web.app import create_app
from idbroker.web.csrf import FIELD

CSRF_MESSAGE = "The form has expired or was sent from another site; nothing was changed."
NOT_BY_COOKIE = {
    "POST /wecom/callback": "WeChat Work signs every callback (msg_signature); no cookie is looked at",
    "POST /contacts/reports/cloud/{token}": "the SMS gateway's push, authenticated by the secret in its path",
    "POST /oidc/authorize": "an OIDC form-post authorization request: the same as the GET, a code only ever goes "
    "to the app's registered redirect URI; the consent it may need is a CSRF-checked form",
    "POST /oidc/token": "client authentication (secret or PKCE), cookies are ignored",
    "POST /oidc/introspect": "client authentication, cookies are ignored",
    "POST /oidc/revoke": "client authentication, cookies are ignored",
    "POST /oidc/userinfo": "a bearer access token, cookies are ignored",
    "POST /oidc/logout": "signs out only with a valid id_token_hint for the person, or `confirm` with the CSRF token",
    "POST /api/apps/v1/people/resolve": "an app's bearer token, cookies are ignored",
    "POST /api/admin/apps": "verify_same_origin: JSON only, and refused when a browser marks it cross-origin",
    "POST /api/admin/apps/{client_id}/rotate-secret": "verify_same_origin",
    "POST /api/admin/apps/{client_id}/disable": "verify_same_origin",
    "POST /api/admin/apps/{client_id}/enable": "verify_same_origin",
    "POST /demo/wecom/cgi-bin/{api:path}": "DEMO ONLY: the WeChat Work stand-in's API, by its own access_token",
}
FORM = {
    "q": "张帅",
    "reason": "ticket 1",
    "kind": "phone",
    "value": "13912345678",
    "phone": "13912345678",
    "email": "someone@example.edu.cn",
    "channel": "sms",
    "decision": "merge",
    "code": "123456",
    "uid": "1120101234",
    "next": "/",
}


def every_route(engine: Engine) -> list[Endpoint]:
    """The routes of an app with everything on (demo mode: the development CAS, the outbox, the demo app)."""
    settings = Settings(database_url=str(engine.url), demo_mode=True, cas_server_url=None)
    routes = app_routes(create_app(settings))
    assert len(routes) > 60, "the walk should find every route of every router"
    return routes


def test_every_write_route_is_csrf_checked_or_not_cookie_authenticated(sqlite_engine: Engine) -> None:
    writes = [route for route in every_route(sqlite_engine) if route.method in WRITES]
    unchecked = [r.label for r in writes if "verify_csrf" not in r.dependencies and r.label not in NOT_BY_COOKIE]
    assert unchecked == []
    listed_but_gone = set(NOT_BY_COOKIE) - {r.label for r in writes}
    assert listed_but_gone == set()
    admin = [r for r in writes if r.path.startswith("/api/admin/")]
    assert admin and all("verify_same_origin" in r.dependencies for r in admin)


def _url(path: str, campus: Campus) -> str:
    values = {
        "person_id": campus.zhang,
        "candidate_id": str(campus.candidate),
        "verdict": "approve",
        "client_id": "rp1",
        "token": "t" * 43,
    }
    for name in ("flow_id", "contact_id", "operation_id", "approval_id"):
        values[name] = "1"
    return path.format(**values)


def _send(client: TestClient, route: Endpoint, url: str, token: str | None) -> Any:
    if route.path.startswith("/api/"):  # JSON APIs: the token goes in the X-CSRF-Token header
        headers = {"X-CSRF-Token": token} if token else {}
        return client.request(route.method, url, json={"phone": "13912345678"}, headers=headers)
    data = {**FORM, **({FIELD: token} if token else {})}
    return client.request(route.method, url, data=data)


def test_every_csrf_checked_route_refuses_a_forged_request_and_changes_nothing(
    web_client: TestClient, cas_server: Any, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    checked = [r for r in app_routes(web_client.app) if r.method in WRITES and "verify_csrf" in r.dependencies]
    assert len(checked) >= 20
    other = TestClient(web_client.app, follow_redirects=False)
    foreign = signed_in_token(other, cas_server, "1120101234")  # another person's valid token
    token = all_roles_token(web_client, cas_server, sqlite_engine)
    before = snapshot(sqlite_engine)
    accepted = []
    for route in checked:
        for sent in (None, "", foreign, token[:-1] + ("A" if token[-1] != "A" else "B")):
            response = _send(web_client, route, _url(route.path, privacy_campus), sent)
            if response.status_code != 403 or CSRF_MESSAGE not in response.text:
                accepted.append((route.label, sent == foreign, response.status_code))
    assert accepted == []
    assert snapshot(sqlite_engine) == before
    # the same requests with the session's own token pass the check (so the refusals above were the check's)
    for route in checked:
        if route.path == "/logout":
            continue
        response = _send(web_client, route, _url(route.path, privacy_campus), token)
        assert CSRF_MESSAGE not in response.text, route.label


def test_the_demo_login_form_needs_its_token(sqlite_engine: Engine) -> None:
    settings = Settings(database_url=str(sqlite_engine.url), demo_mode=True, cas_server_url=None)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        before = snapshot(sqlite_engine)
        response = client.post("/demo/cas/login", data={"uid": "1120101234", "next": "/"})
        assert response.status_code == 403 and CSRF_MESSAGE in response.text
        assert "idb_session" not in client.cookies
        assert snapshot(sqlite_engine) == before


CROSS_ORIGIN = [
    {"Origin": "https://evil.example.edu"},  # a sibling campus host: same-site, so SameSite=Lax lets the cookie go
    {"Origin": "null"},  # a sandboxed frame or a data: URL
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},  # Sec-Fetch-Site decides
]


def test_the_admin_api_refuses_what_a_browser_marks_cross_origin(
    web_client: TestClient, cas_server: Any, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    all_roles_token(web_client, cas_server, sqlite_engine)
    before = snapshot(sqlite_engine)
    new = {"client_id": "grades", "name": "成绩", "redirect_uris": ["https://grades.example.edu/cb"]}
    for headers in CROSS_ORIGIN:
        for method, path, body in (
            ("POST", "/api/admin/apps", new),
            ("POST", "/api/admin/apps/grades/rotate-secret", None),
            ("POST", "/api/admin/apps/grades/disable", None),
            ("POST", "/api/admin/apps/grades/enable", None),
            ("GET", "/api/admin/apps", None),
        ):
            response = web_client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403 and CSRF_MESSAGE in response.text, (headers, path, response.text)
    assert snapshot(sqlite_engine) == before
    # the broker's own origin, or no browser at all, gets through to the role check and the handler
    for allowed in ({"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
        assert web_client.get("/api/admin/apps", headers=allowed).status_code == 200
