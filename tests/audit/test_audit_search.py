"""The privacy officer's search, per-person report (JSON, CSV), per-app statistics and rate alerts."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from plugins.privacy import Campus, add_events
from sqlalchemy import Engine
from sqlmodel import Session, select

from idbroker.audit.alerts import AlertPolicy, Override, load_alert_policy, rate_alerts
from idbroker.audit.models import AuditEvent
from idbroker.audit.reports import access_report, report_csv, report_json
from idbroker.audit.search import AuditFilter, AuditSearchError, read_page, search_events
from idbroker.audit.stats import app_statistics
from idbroker.clock import utcnow
from idbroker.config import get_settings
from idbroker.db import session_scope
from idbroker.linking.merge import merge_people

OFFICER = "person:officer"


def search(engine: Engine, query: AuditFilter, **kwargs: object):  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return search_events(session, query, actor=OFFICER, **kwargs)  # type: ignore[arg-type]


def test_each_filter_narrows_the_search(engine: Engine, privacy_campus: Campus) -> None:
    zhang, other = privacy_campus.zhang, privacy_campus.student
    add_events(engine, 2, subject=zhang, actor="app:bus")
    add_events(engine, 1, subject=other, actor="app:bus")
    add_events(engine, 1, subject=zhang, actor="app:library", details={"app": "library", "purpose": "loans"})
    add_events(
        engine,
        1,
        subject=zhang,
        actor=f"person:{privacy_campus.helpdesk}",
        action="helpdesk.record.open",
        details={"reason": "ticket 7", "purpose": "helpdesk", "client_ip": "10.0.0.9", "result": "ok"},
    )
    assert len(search(engine, AuditFilter(person="1120101234")).entries) == 4  # by a number they hold
    assert len(search(engine, AuditFilter(person=zhang, app="bus")).entries) == 2
    assert len(search(engine, AuditFilter(app="bus")).entries) == 3
    staff = search(engine, AuditFilter(actor=f"person:{privacy_campus.helpdesk}")).entries
    assert [(e.action, e.reason, e.client_ip, e.result, e.purpose) for e in staff] == [
        ("helpdesk.record.open", "ticket 7", "10.0.0.9", "ok", "helpdesk")
    ]
    assert staff[0].actor_kind == "staff"
    assert len(search(engine, AuditFilter(action="helpdesk.*")).entries) == 1
    assert len(search(engine, AuditFilter(purpose="loans")).entries) == 1
    assert all(e.what == ["name"] for e in search(engine, AuditFilter(app="bus")).entries)
    future = utcnow() + timedelta(hours=1)
    assert search(engine, AuditFilter(app="bus", since=future)).entries == []
    assert len(search(engine, AuditFilter(app="bus", until=future)).entries) == 3


def test_a_person_search_covers_ids_merged_into_them(engine: Engine, privacy_campus: Campus) -> None:
    add_events(engine, 1, subject=privacy_campus.zhang_master)
    with session_scope(engine) as session:
        merge_people(session, privacy_campus.zhang, privacy_campus.zhang_master, actor="cli:test", reason="same")
    entries = search(engine, AuditFilter(person=privacy_campus.zhang, action="release")).entries
    assert [e.subject for e in entries] == [privacy_campus.zhang_master]


def test_pages_go_back_in_time(engine: Engine) -> None:
    add_events(engine, 5, subject="person01")
    first = search(engine, AuditFilter(app="bus"), limit=2)
    second = search(engine, AuditFilter(app="bus"), limit=2, before=first.next_before)
    third = search(engine, AuditFilter(app="bus"), limit=2, before=second.next_before)
    seqs = [e.seq for page in (first, second, third) for e in page.entries]
    assert seqs == [5, 4, 3, 2, 1] and third.next_before is None


def test_every_search_is_itself_recorded(engine: Engine, privacy_campus: Campus) -> None:
    search(engine, AuditFilter(person="1120101234", app="bus"), client_ip="10.0.0.5")
    with Session(engine) as session:
        event = session.exec(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()  # type: ignore[attr-defined]
    assert event is not None and event.action == "audit.search" and event.actor == OFFICER
    assert event.subject == privacy_campus.zhang
    details = json.loads(event.details)
    assert details["filters"] == {"person": privacy_campus.zhang, "app": "bus"}  # the ID, not the number typed
    assert details["client_ip"] == "10.0.0.5"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (AuditFilter(since=utcnow(), until=utcnow() - timedelta(days=1)), "before its end"),
        (AuditFilter(person="no-such-person"), "no person"),
    ],
)
def test_a_bad_search_is_refused(engine: Engine, query: AuditFilter, message: str) -> None:
    from idbroker.directory.queries import PersonNotFound

    with pytest.raises((AuditSearchError, PersonNotFound), match=message), Session(engine) as session:
        read_page(session, query)


def test_the_access_report_as_json_and_csv(engine: Engine, privacy_campus: Campus) -> None:
    add_events(engine, 2, subject=privacy_campus.zhang)
    add_events(
        engine,
        1,
        subject=privacy_campus.zhang,
        actor=f"person:{privacy_campus.helpdesk}",
        action="helpdesk.record.open",
        details={"reason": '=HYPERLINK("http://x")', "purpose": "helpdesk"},
    )
    with session_scope(engine) as session:
        report = access_report(session, "1120101234", actor=OFFICER)
    document = json.loads(report_json(report))
    assert document["person"] == privacy_campus.zhang and len(document["events"]) == 3
    assert document["events"][0]["action"] == "helpdesk.record.open"
    assert document["events"][1]["what"] == ["name"] and document["events"][1]["app"] == "bus"
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert [row["action"] for row in rows] == ["helpdesk.record.open", "release", "release"]
    assert rows[1]["purpose"] == "login" and rows[1]["client_ip"] == "10.0.0.7" and rows[1]["actor_kind"] == "app"
    assert rows[0]["reason"].startswith("'=")  # a spreadsheet will not run it as a formula
    with Session(engine) as session:
        last = session.exec(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()  # type: ignore[attr-defined]
    assert last is not None and last.action == "audit.report" and last.subject == privacy_campus.zhang


def test_per_app_statistics_count_people_and_claims_per_day(engine: Engine) -> None:
    for person in ("p1", "p2", "p1"):
        add_events(engine, 1, subject=person, details={"app": "bus", "claims": ["name", "email"], "purpose": "x"})
    add_events(engine, 1, subject="p3", details={"app": "library", "claims": ["name"], "purpose": "y"})
    with Session(engine) as session:
        rows = app_statistics(session)
        only_bus = app_statistics(session, app="bus")
    today = utcnow().strftime("%Y-%m-%d")
    by_app = {row.app: row for row in rows}
    assert by_app["bus"].day == today
    assert (by_app["bus"].people, by_app["bus"].claims, by_app["bus"].releases) == (2, 6, 3)
    assert (by_app["library"].people, by_app["library"].claims) == (1, 1)
    assert [row.app for row in only_bus] == ["bus"]


def test_an_actor_far_above_its_usual_rate_is_listed(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import idbroker.audit.chain

    three_days_ago = utcnow() - timedelta(days=3)
    monkeypatch.setattr(idbroker.audit.chain, "utcnow", lambda: three_days_ago)
    add_events(engine, 14, subject="p1", actor="app:steady")  # usual: 2 a day over the week
    add_events(engine, 1, subject="p1", actor="app:burst")
    monkeypatch.undo()
    add_events(engine, 6, subject="p1", actor="app:steady")  # 3 × usual: under the factor
    add_events(engine, 20, subject="p1", actor="app:burst")  # 140 × usual
    add_events(engine, 4, subject="p1", actor="app:new")  # no history, above the minimum
    add_events(engine, 2, subject="p1", actor="app:tiny")  # no history, under the minimum
    add_events(engine, 9, subject="p1", actor="person:clerk", action="helpdesk.record.open", details={})
    policy = AlertPolicy(
        reads=("release", "helpdesk.record.open"), window_hours=24, baseline_days=7, factor=5, minimum=3
    )
    with Session(engine) as session:
        alerts = rate_alerts(session, policy)
        quieter = rate_alerts(
            session, policy.model_copy(update={"overrides": (Override(actor="app:new", minimum=10),)})
        )
    assert [(alert.actor, alert.reads) for alert in alerts] == [("person:clerk", 9), ("app:new", 4), ("app:burst", 20)]
    assert alerts[-1].usual == pytest.approx(1 / 7, abs=0.01)
    assert "app:new" not in {alert.actor for alert in quieter}
    assert load_alert_policy(get_settings()).reads  # the shipped policy loads


def test_a_person_acting_on_their_own_data_is_not_shown_as_staff(engine: Engine, privacy_campus: Campus) -> None:
    zhang = privacy_campus.zhang
    add_events(engine, 1, subject=zhang, actor=f"person:{zhang}", action="login", details={"via": "cas"})
    add_events(engine, 1, subject=zhang, actor=f"person:{privacy_campus.helpdesk}", action="helpdesk.record.open")
    kinds = [e.actor_kind for e in search(engine, AuditFilter(person=zhang)).entries]
    assert kinds == ["staff", "self"]
