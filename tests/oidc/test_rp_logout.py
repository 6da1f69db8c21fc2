"""RP-initiated logout: a valid id_token_hint signs the person out and returns to the app's registered URI;
anything else asks first, or is refused."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from plugins.apps import Campus, MakeApp, exchange, get_code, query_of
from plugins.web import sign_in
from sqlalchemy import Engine

UID = "1120150001"
BYE = "https://app.example.edu/bye"


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def rp(sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any) -> Any:
    _app, web_client.secret = make_app("rp1", post_logout_redirect_uris=(BYE,))
    cas_server.add_user(UID)
    sign_in(web_client, cas_server, UID)
    return web_client


def signed_in(client: Any) -> bool:
    return client.get("/oidc/consents").status_code == 200


def test_logout_with_a_valid_hint_returns_to_the_app(rp: Any) -> None:
    hint = exchange(rp, "rp1", rp.secret, get_code(rp, "rp1")).json()["id_token"]
    response = rp.get("/oidc/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": BYE, "state": "s9"})
    assert response.status_code == 303 and response.headers["location"].startswith(BYE)
    assert query_of(response.headers["location"]) == {"state": "s9"}
    assert not signed_in(rp)  # the broker session is over


def test_an_unregistered_return_uri_is_refused(rp: Any) -> None:
    hint = exchange(rp, "rp1", rp.secret, get_code(rp, "rp1")).json()["id_token"]
    refused = rp.get("/oidc/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": BYE + "/x"})
    assert refused.status_code == 400 and "location" not in refused.headers
    assert signed_in(rp)


def test_without_a_hint_the_person_is_asked_first(rp: Any) -> None:
    page = rp.get("/oidc/logout", params={"client_id": "rp1", "post_logout_redirect_uri": BYE})
    assert page.status_code == 200 and "App rp1" in page.text
    assert signed_in(rp)  # nothing happened yet
    fields = {name: html.unescape(v) for name, v in re.findall(r'name="(\w+)" value="([^"]*)"', page.text)}
    forged = rp.post("/oidc/logout", data={**fields, "csrf_token": "forged"})
    assert forged.status_code == 200 and signed_in(rp)
    confirmed = rp.post("/oidc/logout", data=fields)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == BYE
    assert not signed_in(rp)
    done = rp.get("/oidc/logout")
    assert done.status_code == 200 and 'data-testid="signed-out"' in done.text
