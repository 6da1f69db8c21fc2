"""Open redirects: every place the broker sends a browser somewhere a request named — `next` (the CAS login,
its callback, the demo login, the login a protected page asks for), the OIDC `redirect_uri` (the authorization
request, the consent form's carried request) and `post_logout_redirect_uri` — goes only to a path on this site
or to a URI the app registered, matched exactly; anything else gets `/`, or an error page and no Location.

Elsewhere (not repeated here): eight `next` spellings through CAS (`tests/web/test_login_cas.py`), five
near-miss redirect URIs (`tests/oidc/test_conformance_basic.py`), an unregistered logout URI
(`tests/oidc/test_rp_logout.py`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from plugins.apps import CALLBACK, Campus, MakeApp, authorize_query, exchange, get_code
from plugins.web import add_person, sign_in
from sqlalchemy import Engine

from idbroker.config import Settings
from idbroker.release.registry import RegistryError, check_redirect_uri
from idbroker.web.app import create_app
from idbroker.web.csrf import FIELD

UID = "1120150001"
BYE = "https://app.example.edu/bye"
HTML = {"accept": "text/html"}
EVIL_NEXT = [
    "https://evil.example/",
    "//evil.example/x",
    "///evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\x00//evil.example",
    "https:evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "data:text/html,x",
    " //evil.example",
    "\u3000//evil.example",
]
EVIL_REDIRECT_URIS = [
    "https://app.example.edu@evil.example/callback",
    "https://app.example.edu.evil.example/callback",
    "https://app.example.edu/callback/../../evil",
    "https://app.example.edu/callback#frag",
    "https://app.example.edu/callback%2F..%2Fevil",
    "https://app.example.edu:443/callback",
    "https://APP.example.edu/callback",
    "https://app.example.edu/callback ",
    "https://app.example.edu/call",
    "",
]


def on_this_site(location: str) -> bool:
    """A Location a browser resolves to this host: a single-slash path without backslashes or controls."""
    return (
        location.startswith("/")
        and not location.startswith(("//", "/\\"))
        and "\\" not in location
        and not any(ord(ch) < 0x20 for ch in location)
    )


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def rp(sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any) -> Any:
    _app, web_client.secret = make_app("rp1", post_logout_redirect_uris=(BYE,))
    make_app(
        "rp2",
        redirect_uris=("https://other.example.edu/cb",),
        post_logout_redirect_uris=("https://other.example.edu/bye",),
    )
    cas_server.add_user(UID)
    sign_in(web_client, cas_server, UID)
    return web_client


@pytest.mark.parametrize("evil", EVIL_NEXT)
def test_next_never_leaves_the_site(web_client: TestClient, cas_server: Any, sqlite_engine: Engine, evil: str) -> None:
    add_person(sqlite_engine, {"student": UID})
    service = parse_qs(urlsplit(web_client.get("/login", params={"next": evil}).headers["location"]).query)["service"]
    assert service == ["http://testserver/login/cas?next=%2F"]
    done = web_client.get("/login/cas", params={"next": evil, "ticket": cas_server.issue_ticket(UID, service[0])})
    assert done.status_code == 303 and done.headers["location"] == "/"


def test_the_demo_login_and_its_form_keep_next_on_the_site(sqlite_engine: Engine) -> None:
    add_person(sqlite_engine, {"student": UID})
    settings = Settings(database_url=str(sqlite_engine.url), demo_mode=True, cas_server_url=None)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        for evil in EVIL_NEXT:
            page = client.get("/demo/cas/login", params={"next": evil}, headers=HTML)
            assert re.search(r'name="next" value="/"', page.text), evil
            token = re.search(rf'name="{FIELD}" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            picked = client.post("/demo/cas/login", data={FIELD: token, "uid": UID, "next": evil})
            assert picked.status_code == 303 and picked.headers["location"] == "/", evil
            client.cookies.clear()


@pytest.mark.parametrize("path", ["//evil.example/me", "/me/..//evil.example", "/me?x=//evil.example"])
def test_a_protected_page_sends_nobody_off_site_through_the_login(web_client: TestClient, path: str) -> None:
    response = web_client.get(path, headers=HTML)
    if response.status_code != 303:
        return  # not a protected page: nothing redirects
    location = response.headers["location"]
    assert on_this_site(location)
    login = web_client.get(location)
    service = parse_qs(urlsplit(login.headers["location"]).query)["service"][0]
    assert service.startswith("http://testserver/login/cas?next=%2F")
    assert on_this_site(parse_qs(urlsplit(service).query)["next"][0])


def test_an_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(rp: Any) -> None:
    for redirect_uri, method in ((uri, method) for uri in EVIL_REDIRECT_URIS for method in ("GET", "POST")):
        params = authorize_query("rp1", redirect_uri=redirect_uri)
        response = (
            rp.get("/oidc/authorize", params=params) if method == "GET" else rp.post("/oidc/authorize", data=params)
        )
        assert response.status_code == 400 and "location" not in response.headers, (method, response.text[:200])


def test_errors_go_back_only_to_the_registered_uri(rp: Any) -> None:
    """A request broken in any other way still redirects — but to the app's own registered URI."""
    for broken in ({"response_type": "token"}, {"scope": "profile"}, {"code_challenge_method": "plain"}):
        response = rp.get("/oidc/authorize", params=authorize_query("rp1", **broken))
        assert response.status_code == 302 and response.headers["location"].startswith(CALLBACK + "?")
    another_apps = rp.get("/oidc/authorize", params=authorize_query("rp1", redirect_uri="https://other.example.edu/cb"))
    assert another_apps.status_code == 400 and "location" not in another_apps.headers
    query = urlencode([*authorize_query("rp1").items(), ("redirect_uri", "https://evil.example/cb")])
    repeated = rp.get(f"/oidc/authorize?{query}")
    assert repeated.status_code == 400 and "location" not in repeated.headers


def test_the_consent_form_cannot_carry_an_unregistered_redirect_uri(rp: Any, make_app: MakeApp) -> None:
    make_app("lib", separate_consent=True, recipient={"name": "图书馆", "contact": "lib@example.edu"})
    page = rp.get("/", headers=HTML).text
    token = re.search(rf'name="{FIELD}" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    for decision in ("allow", "deny"):
        forged = urlencode(authorize_query("lib", redirect_uri="https://evil.example/cb"))
        response = rp.post("/oidc/consent", data={FIELD: token, "request_query": forged, "decision": decision})
        assert response.status_code == 400 and "location" not in response.headers


LOGOUT_TARGETS = [BYE + "/x", BYE + "?x=1", "https://evil.example/bye", "https://app.example.edu@evil.example/bye",
                  "//evil.x"]  # fmt: skip


def test_post_logout_redirect_uri_only_to_the_apps_registered_uri(rp: Any) -> None:
    hint = exchange(rp, "rp1", rp.secret, get_code(rp, "rp1")).json()["id_token"]
    for params in (
        {name: value for name, value in pair if value}
        for target in LOGOUT_TARGETS
        for pair in (
            (("id_token_hint", hint), ("post_logout_redirect_uri", target)),
            (("client_id", "rp1"), ("post_logout_redirect_uri", target)),
            (("post_logout_redirect_uri", target),),
        )
    ):
        response = rp.get("/oidc/logout", params=params)
        assert response.status_code == 400 and "location" not in response.headers, params
    # another app's registered URI is not this app's
    other = rp.get(
        "/oidc/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": "https://other.example.edu/bye"}
    )
    assert other.status_code == 400 and "location" not in other.headers
    mismatch = rp.get(
        "/oidc/logout",
        params={"id_token_hint": hint, "client_id": "rp2", "post_logout_redirect_uri": "https://other.example.edu/bye"},
    )
    assert mismatch.status_code == 400 and "location" not in mismatch.headers


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "https://app.example.edu/cb#x",
        "http://app.example.edu/cb",
        "/cb",
        "https:///cb",
        "data:x",
    ],
)
def test_a_redirect_uri_that_could_leak_the_code_cannot_be_registered(uri: str) -> None:
    with pytest.raises(RegistryError):
        check_redirect_uri(uri)
