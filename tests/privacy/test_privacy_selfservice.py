"""The person's own privacy: who used my data, my consents with withdraw, download my data."""

from __future__ import annotations

import json

import pytest
from plugins.privacy import ZHANG_ID, Campus
from sqlalchemy import Engine
from sqlmodel import Session, select

from idbroker.audit.models import AuditEvent
from idbroker.config import get_settings
from idbroker.db import session_scope
from idbroker.helpdesk.record import open_record
from idbroker.release.consent import grant
from idbroker.release.gate import ReleaseGate, ReleaseRefused
from idbroker.release.registry import app_policy, register
from idbroker.selfservice.privacy import data_uses, my_consents, my_data, my_data_json, withdraw_consent

LIBRARY = "library.example"


def library(engine: Engine) -> None:
    settings = get_settings()
    with session_scope(engine) as session:
        register(
            session,
            settings.policies_dir,
            client_id=LIBRARY,
            name="校图书馆",
            redirect_uris=["https://library.example.edu/cb"],
            actor="cli:test",
        )


def release(engine: Engine, person_id: str) -> None:
    settings = get_settings()
    with session_scope(engine) as session:
        from idbroker.release.models import App

        app = session.get(App, LIBRARY)
        assert app is not None
        ReleaseGate(settings).release(
            session, app, app_policy(settings.policies_dir, app), person_id, wanted=None, via="userinfo"
        )


def consent(engine: Engine, person_id: str) -> None:
    settings = get_settings()
    with session_scope(engine) as session:
        from idbroker.release.models import App

        app = session.get(App, LIBRARY)
        assert app is not None
        grant(session, person_id, app_policy(settings.policies_dir, app), actor=f"person:{person_id}")


def test_who_used_my_data_names_apps_and_staff_roles(engine: Engine, privacy_campus: Campus) -> None:
    library(engine)
    consent(engine, privacy_campus.zhang)
    release(engine, privacy_campus.zhang)
    release(engine, privacy_campus.zhang)
    with session_scope(engine) as session:
        open_record(
            session, get_settings(), privacy_campus.zhang, actor=f"person:{privacy_campus.helpdesk}", reason="ticket 5"
        )
        uses = data_uses(session, privacy_campus.zhang)
    assert [(use.kind, use.who) for use in uses.uses] == [("staff_opened", "helpdesk")]
    assert uses.uses[0].reason == "ticket 5" and uses.uses[0].purpose == "helpdesk"
    (summary,) = uses.apps  # the releases to an app: one line, how often, when, what, why
    assert (summary.app, summary.name, summary.times) == (LIBRARY, "校图书馆", 2)
    assert {"name", "email"} <= set(summary.claims) and summary.purpose and "图书馆" in summary.purpose
    assert len(summary.recent) == 2 and summary.recent[0] >= summary.recent[1] and summary.last == summary.recent[0]
    # the person's own consent is their own action, not a use by someone else
    assert all(use.kind != "consent.grant" for use in uses.uses)


def test_withdrawing_consent_stops_later_releases(engine: Engine, privacy_campus: Campus) -> None:
    library(engine)
    consent(engine, privacy_campus.zhang)
    with session_scope(engine) as session:
        assert [c.client_id for c, _app in my_consents(session, privacy_campus.zhang)] == [LIBRARY]
        assert withdraw_consent(session, privacy_campus.zhang, LIBRARY, actor=f"person:{privacy_campus.zhang}")
        assert my_consents(session, privacy_campus.zhang) == []
        assert not withdraw_consent(session, privacy_campus.zhang, LIBRARY, actor=f"person:{privacy_campus.zhang}")
    with pytest.raises(ReleaseRefused) as refused:
        release(engine, privacy_campus.zhang)
    assert refused.value.reason == "consent_required"


def test_download_my_data_holds_everything_but_national_ids_and_is_recorded(
    engine: Engine, privacy_campus: Campus
) -> None:
    library(engine)
    consent(engine, privacy_campus.zhang)
    release(engine, privacy_campus.zhang)
    with session_scope(engine) as session:
        document = my_data(session, privacy_campus.zhang, actor=f"person:{privacy_campus.zhang}", client_ip="10.0.0.3")
    text = my_data_json(document)
    assert json.loads(text)["person"]["id"] == privacy_campus.zhang
    numbers = {r["number"] for r in document["records"]}
    assert numbers >= {"1120101234"} and any(r["national_id_on_file"] for r in document["records"])
    assert ZHANG_ID[:14] not in text  # no national ID, not even in part
    assert any(r["phone"] == "+8613800001111" for r in document["records"])
    assert [c["app"] for c in document["consents"]] == [LIBRARY]
    assert any(e["action"] == "release" for e in document["events"]) and document["pseudonyms"]
    with Session(engine) as session:
        last = session.exec(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()  # type: ignore[attr-defined]
    assert last is not None and (last.action, last.subject) == ("privacy.download", privacy_campus.zhang)
