"""A withdrawn consent is told to that app alone, through its change feed: `{"kind": "consent_withdrawn",
"sub": <its own pseudonym>}` and nothing else; other apps never see it; the app's later requests are refused;
and the officer sees in the audit log that the app was told (`feed.notice`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from plugins.apps import Campus, MakeApp, app_token
from plugins.privacy import signed_in_token
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from standins.cas_server import CasStandIn

from idbroker.audit.models import AuditEvent
from idbroker.audit.verify import verify_chain
from idbroker.config import get_settings
from idbroker.directory.events import DirectoryEvent, emit
from idbroker.release import consent
from idbroker.release.feed import changes
from idbroker.release.gate import ReleaseGate, ReleaseRefused
from idbroker.release.models import App
from idbroker.release.policies import policy_for

RECIPIENT = {"name": "某公司", "contact": "privacy@example.com"}
HTML = {"accept": "text/html"}


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


def consenting_apps(make_app: MakeApp) -> dict[str, str | None]:
    """Three apps asking separate consent, each in its own sector: client id → secret."""
    return {
        client: make_app(
            client,
            claims=("pseudonym", "name"),
            separate_consent=True,
            recipient=RECIPIENT,
            sector=f"{client}.example.edu",
        )[1]
        for client in ("strict", "other", "unseen")
    }


def consent_and_release(engine: Engine, person: str, clients: tuple[str, ...]) -> dict[str, str]:
    """The person consents to every app; those in `clients` are given their pseudonym (as a sign-in would)."""
    settings = get_settings()
    gate = ReleaseGate(settings)
    subs: dict[str, str] = {}
    with Session(engine) as session:
        for client in ("strict", "other", "unseen"):
            consent.grant(session, person, policy_for(settings.policies_dir, client), actor=f"person:{person}")
        for client in clients:
            app = session.get(App, client)
            assert app is not None
            release = gate.release(
                session, app, policy_for(settings.policies_dir, client), person, wanted=None, via="userinfo"
            )
            subs[client] = release.sub
        session.commit()
    return subs


def feed_of(engine: Engine, client: str, after: int) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    settings = get_settings()
    with Session(engine) as session:
        app = session.get(App, client)
        assert app is not None
        items, cursor = changes(
            session, ReleaseGate(settings), app, policy_for(settings.policies_dir, client), after=after
        )
        session.commit()
    return [(item.kind, item.claims) for item in items], cursor


def notices(engine: Engine) -> list[tuple[str, str | None, dict[str, Any]]]:
    with Session(engine) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "feed.notice").order_by(AuditEvent.seq))
        return [(e.actor, e.subject, json.loads(e.details)) for e in rows]


def last_event(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.max(DirectoryEvent.id))) or 0


def test_only_the_app_withdrawn_from_hears_it_in_its_own_pseudonym(
    engine: Engine, campus: Campus, make_app: MakeApp
) -> None:
    consenting_apps(make_app)
    subs = consent_and_release(engine, campus.li, ("strict", "other"))
    assert subs["strict"] != subs["other"]  # two sectors, two unrelated pseudonyms
    start = last_event(engine)
    with Session(engine) as session:
        assert consent.withdraw(session, campus.li, "strict", actor=f"person:{campus.li}")
        assert consent.withdraw(session, campus.li, "unseen", actor=f"person:{campus.li}")
        session.commit()

    items, cursor = feed_of(engine, "strict", start)
    assert items == [("consent_withdrawn", {"sub": subs["strict"]})]  # the pseudonym it holds, nothing else
    assert cursor == last_event(engine)  # one cursor, past both events
    assert feed_of(engine, "strict", cursor) == ([], cursor)
    assert feed_of(engine, "other", start) == ([], cursor)  # withdrawn elsewhere: not its business
    assert feed_of(engine, "unseen", start) == ([], cursor)  # withdrawn, but never given a pseudonym: nothing to say

    settings = get_settings()
    with Session(engine) as session:  # later requests are refused; the other app is not touched
        gate = ReleaseGate(settings)
        strict, other = session.get(App, "strict"), session.get(App, "other")
        assert strict is not None and other is not None
        with pytest.raises(ReleaseRefused) as refused:
            gate.release(
                session, strict, policy_for(settings.policies_dir, "strict"), campus.li, wanted=None, via="resolve"
            )
        assert refused.value.reason == "consent_required"
        assert gate.release(
            session, other, policy_for(settings.policies_dir, "other"), campus.li, wanted=None, via="resolve"
        ).claims == {"sub": subs["other"], "name": "李丽"}
        session.rollback()

    assert notices(engine) == [
        (
            "app:strict",
            campus.li,
            {"app": "strict", "notice": "consent_withdrawn", "fields": ["pseudonym"], "via": "feed"},
        )
    ]
    with Session(engine) as session:
        assert verify_chain(session).ok


def test_the_feed_keeps_its_order_around_a_withdrawal(engine: Engine, campus: Campus, make_app: MakeApp) -> None:
    consenting_apps(make_app)
    subs = consent_and_release(engine, campus.li, ("strict",))
    start = last_event(engine)
    with Session(engine) as session:
        emit(session, "person.updated", campus.li)  # still consented: told as usual
        consent.withdraw(session, campus.li, "strict", actor=f"person:{campus.li}")
        emit(session, "person.updated", campus.li)  # after the withdrawal: nothing more is released
        session.commit()
    items, _ = feed_of(engine, "strict", start)
    # read after the withdrawal, the earlier update is refused by the gate too (no consent now)
    assert items == [("consent_withdrawn", {"sub": subs["strict"]})]
    with Session(engine) as session:  # consent again: the feed tells updates again, the notice stays in its place
        consent.grant(session, campus.li, policy_for(get_settings().policies_dir, "strict"), actor="person:li")
        session.commit()
    items, _ = feed_of(engine, "strict", start)
    assert [kind for kind, _claims in items] == ["updated", "consent_withdrawn", "updated"]
    assert {claims["sub"] for _kind, claims in items} == {subs["strict"]}


def test_withdraw_on_the_page_and_the_app_reads_it_over_http(
    sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: CasStandIn
) -> None:
    secrets = consenting_apps(make_app)
    subs = consent_and_release(sqlite_engine, campus.li, ("strict", "other"))
    start = last_event(sqlite_engine)
    strict = {"Authorization": f"Bearer {app_token(web_client, 'strict', secrets['strict'] or '')}"}
    other = {"Authorization": f"Bearer {app_token(web_client, 'other', secrets['other'] or '')}"}
    assert web_client.get(f"/api/apps/v1/people/{subs['strict']}", headers=strict).status_code == 200

    token = signed_in_token(web_client, cas_server, "1120150001")  # 李丽 on her privacy page
    page = web_client.get("/me/privacy", headers=HTML)
    assert "/me/privacy/consents/strict/withdraw" in page.text
    withdrawn = web_client.post("/me/privacy/consents/strict/withdraw", data={"csrf_token": token}, headers=HTML)
    assert withdrawn.status_code == 303 and withdrawn.headers["location"] == "/me/privacy?withdrawn=1"
    told = web_client.get("/me/privacy?withdrawn=1&lang=en", headers=HTML)
    assert "told through its change feed" in told.text and 'data-testid="consent-strict"' not in told.text

    feed = web_client.get("/api/apps/v1/changes", params={"after": start}, headers=strict)
    assert feed.status_code == 200
    body = feed.json()
    assert [{k: v for k, v in c.items() if k not in ("cursor", "at")} for c in body["changes"]] == [
        {"kind": "consent_withdrawn", "sub": subs["strict"]}
    ]
    assert campus.li not in feed.text and "李丽" not in feed.text and subs["other"] not in feed.text
    assert web_client.get("/api/apps/v1/changes", params={"after": start}, headers=other).json() == {
        "changes": [],
        "next": body["next"],
    }
    refused = web_client.get(f"/api/apps/v1/people/{subs['strict']}", headers=strict)
    assert refused.status_code == 403  # the app's later requests are refused
    assert web_client.get(f"/api/apps/v1/people/{subs['other']}", headers=other).status_code == 200

    with Session(sqlite_engine) as session:
        trail = [
            (e.action, e.actor, json.loads(e.details).get("app"))
            for e in session.scalars(select(AuditEvent).where(AuditEvent.subject == campus.li).order_by(AuditEvent.seq))
        ]
    withdraw_at = trail.index(("consent.withdraw", f"person:{campus.li}", "strict"))
    assert ("feed.notice", "app:strict", "strict") in trail[withdraw_at:]
    assert all(actor != "app:other" or action != "feed.notice" for action, actor, _app in trail)
