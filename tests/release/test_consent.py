"""Separate consent (PIPL Art. 23): asked before anything goes to an app whose policy requires it, asked
again when the policy changes, withdrawn as easily — which ends the app's sign-ins for that person."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from plugins.apps import Campus, MakeApp, authorize_query, exchange, get_code, query_of, write_policy
from plugins.web import sign_in
from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.config import get_settings
from idbroker.release import consent
from idbroker.release.gate import ReleaseGate, ReleaseRefused
from idbroker.release.models import App
from idbroker.release.policies import policy_for

LIBRARY = {
    "claims": ("pseudonym", "nickname", "name", "email"),
    "separate_consent": True,
    "recipient": {"name": "校图书馆", "contact": "library@example.edu"},
    "purpose": "图书借阅",
}


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


def try_release(engine: Engine, person: str) -> dict[str, Any]:
    settings = get_settings()
    with Session(engine) as session:
        app = session.get(App, "library")
        assert app is not None
        claims = (
            ReleaseGate(settings)
            .release(session, app, policy_for(settings.policies_dir, "library"), person, wanted=None, via="resolve")
            .claims
        )
        session.commit()
    return claims


def test_consent_is_needed_renewed_and_withdrawn(
    engine: Engine, campus: Campus, make_app: MakeApp, apps_policies: Path
) -> None:
    make_app("library", **LIBRARY)
    with pytest.raises(ReleaseRefused, match="consented"):
        try_release(engine, campus.li)
    settings = get_settings()
    with Session(engine) as session:
        consent.grant(session, campus.li, policy_for(settings.policies_dir, "library"), actor="person:test")
        session.commit()
    assert try_release(engine, campus.li)["name"] == "李丽"

    write_policy(apps_policies, "library", **{**LIBRARY, "claims": [*LIBRARY["claims"], "phone"]})
    with pytest.raises(ReleaseRefused):  # the policy now asks for more: the old consent does not cover it
        try_release(engine, campus.li)
    with Session(engine) as session:
        consent.grant(session, campus.li, policy_for(settings.policies_dir, "library"), actor="person:test")
        assert consent.withdraw(session, campus.li, "library", actor="person:test")
        assert not consent.withdraw(session, campus.li, "library", actor="person:test")
        session.commit()
        actions = list(
            session.scalars(
                select(AuditEvent.action).where(AuditEvent.action.like("consent.%")).order_by(AuditEvent.seq)
            )
        )
    assert actions == ["consent.grant", "consent.grant", "consent.withdraw"]
    with pytest.raises(ReleaseRefused):
        try_release(engine, campus.li)


def form_fields(text: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', text)}


def test_the_consent_page_in_the_code_flow(
    sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any
) -> None:
    _app, secret = make_app("library", **LIBRARY)
    cas_server.add_user("1120150001")
    sign_in(web_client, cas_server, "1120150001")

    silent = web_client.get("/oidc/authorize", params=authorize_query("library", prompt="none"))
    assert query_of(silent.headers["location"])["error"] == "consent_required"

    page = web_client.get("/oidc/authorize", params=authorize_query("library", scope="openid profile email"))
    assert page.status_code == 200
    for shown in ("校图书馆", "library@example.edu", "图书借阅", "第二十三条", "姓名", "电子邮箱"):
        assert shown in page.text
    fields = form_fields(page.text)

    denied = web_client.post("/oidc/consent", data={**fields, "decision": "deny"})
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    no_csrf = web_client.post("/oidc/consent", data={"request_query": fields["request_query"], "decision": "allow"})
    assert no_csrf.status_code == 403

    allowed = web_client.post("/oidc/consent", data={**fields, "decision": "allow"})
    assert allowed.status_code == 303
    back = web_client.get(allowed.headers["location"])
    code = query_of(back.headers["location"])["code"]
    tokens = exchange(web_client, "library", secret, code).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert web_client.get("/oidc/userinfo", headers=bearer).json()["name"] == "李丽"
    assert get_code(web_client, "library", prompt="none")  # consent given: no page any more

    listing = web_client.get("/oidc/consents")
    assert "App library" in listing.text
    withdrawn = web_client.post(
        "/oidc/consents/library/withdraw", data={"csrf_token": form_fields(listing.text)["csrf_token"]}
    )
    assert withdrawn.status_code == 303
    assert web_client.get("/oidc/userinfo", headers=bearer).status_code == 401  # its sign-ins ended
    refreshed = web_client.post(
        "/oidc/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("library", secret),
    )
    assert refreshed.json()["error"] == "invalid_grant"
