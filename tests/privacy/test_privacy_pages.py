"""The privacy officer's console and the person's privacy page over HTTP: roles, filters, exports, downloads."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from plugins.privacy import (
    ADMIN_UID,
    HELPDESK_UID,
    PRIVACY_UID,
    STUDENT_UID,
    Campus,
    add_events,
    audit_count,
    signed_in_token,
)
from sqlalchemy import Engine
from sqlmodel import Session, select
from standins.cas_server import CasStandIn

from idbroker.audit.checkpoints import verify_export
from idbroker.audit.models import AuditCheckpoint, AuditEvent

HTML = {"accept": "text/html"}
ROUTES = [
    ("GET", "/privacy", {}),
    ("GET", "/privacy?person=1120101234", {}),
    ("GET", "/privacy/report?person=1120101234", {}),
    ("GET", "/privacy/report.json?person=1120101234", {}),
    ("GET", "/privacy/report.csv?person=1120101234", {}),
    ("GET", "/privacy/apps", {}),
    ("GET", "/privacy/checkpoints", {}),
    ("POST", "/privacy/checkpoints", {}),
    ("GET", "/privacy/checkpoints/1.json", {}),
]


@pytest.mark.parametrize(("method", "path", "data"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_a_student_and_a_wrong_role_get_403_and_see_nothing(
    web_client: TestClient,
    cas_server: CasStandIn,
    sqlite_engine: Engine,
    privacy_campus: Campus,
    method: str,
    path: str,
    data: dict[str, str],
) -> None:
    add_events(sqlite_engine, 1, subject=privacy_campus.zhang)
    for uid in (STUDENT_UID, HELPDESK_UID, ADMIN_UID):  # a student, and staff with other roles
        web_client.cookies.clear()
        token = signed_in_token(web_client, cas_server, uid)
        before = audit_count(sqlite_engine)
        if method == "GET":
            response = web_client.get(path, headers=HTML)
        else:
            response = web_client.post(path, data={**data, "csrf_token": token}, headers=HTML)
        assert response.status_code == 403, uid
        assert privacy_campus.zhang not in response.text and "10.0.0.7" not in response.text
        assert 'data-testid="events"' not in response.text
        assert audit_count(sqlite_engine) == before
        with Session(sqlite_engine) as session:
            assert session.exec(select(AuditCheckpoint)).first() is None


def officer(web_client: TestClient, cas_server: CasStandIn) -> str:
    return signed_in_token(web_client, cas_server, PRIVACY_UID)


def test_the_search_filters_and_shows_every_column(
    web_client: TestClient, cas_server: CasStandIn, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    add_events(sqlite_engine, 2, subject=privacy_campus.zhang)
    add_events(
        sqlite_engine,
        1,
        subject=privacy_campus.zhang,
        actor=f"person:{privacy_campus.helpdesk}",
        action="helpdesk.record.open",
        details={"reason": "ticket 5", "purpose": "helpdesk", "client_ip": "10.9.8.7", "result": "ok"},
    )
    officer(web_client, cas_server)
    page = web_client.get("/privacy", params={"person": "1120101234", "staff": HELPDESK_UID}, headers=HTML)
    assert page.status_code == 200
    assert page.text.count('data-action="helpdesk.record.open"') == 1 and 'data-action="release"' not in page.text
    for shown in ("ticket 5", "10.9.8.7", "helpdesk", "ok", privacy_campus.zhang, f"person:{privacy_campus.helpdesk}"):
        assert shown in page.text
    by_app = web_client.get("/privacy", params={"app": "bus", "action": "release"}, headers=HTML)
    assert by_app.text.count('data-action="release"') == 2
    bad = web_client.get("/privacy", params={"since": "2030-01-02", "until": "2030-01-01"}, headers=HTML)
    assert bad.status_code == 400
    with Session(sqlite_engine) as session:
        searches = session.exec(select(AuditEvent).where(AuditEvent.action == "audit.search")).all()
    assert len(searches) == 2 and searches[0].actor == f"person:{privacy_campus.privacy_officer}"


def test_the_access_report_as_page_json_and_csv(
    web_client: TestClient, cas_server: CasStandIn, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    add_events(sqlite_engine, 2, subject=privacy_campus.zhang)
    officer(web_client, cas_server)
    page = web_client.get("/privacy/report", params={"person": "1120101234"}, headers=HTML)
    assert page.status_code == 200 and f'data-testid="report-person">{privacy_campus.zhang}<' in page.text
    document = web_client.get("/privacy/report.json", params={"person": privacy_campus.zhang}).json()
    assert document["person"] == privacy_campus.zhang
    assert [e["action"] for e in document["events"]][-2:] == ["release", "release"]
    response = web_client.get("/privacy/report.csv", params={"person": privacy_campus.zhang})
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert {row["action"] for row in rows} >= {"release", "audit.report"}
    assert web_client.get("/privacy/report", params={"person": "0000000000"}, headers=HTML).status_code == 404


def test_app_statistics_and_alerts(
    web_client: TestClient, cas_server: CasStandIn, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    for person in (privacy_campus.zhang, privacy_campus.student):
        add_events(sqlite_engine, 60, subject=person, actor="app:bus")
    officer(web_client, cas_server)
    page = web_client.get("/privacy/apps", headers=HTML)
    assert page.status_code == 200 and 'data-testid="app-stats"' in page.text
    assert "<td>bus</td><td>2</td><td>120</td><td>120</td>" in page.text
    assert 'data-testid="alerts"' in page.text and "app:bus" in page.text  # 120 reads, no history, minimum 100


def test_checkpoints_are_signed_from_the_console_and_export_verifiably(
    web_client: TestClient, cas_server: CasStandIn, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    token = officer(web_client, cas_server)
    assert web_client.post("/privacy/checkpoints", data={}, headers=HTML).status_code == 403  # no CSRF token
    created = web_client.post("/privacy/checkpoints", data={"csrf_token": token}, headers=HTML)
    assert created.status_code == 303
    listing = web_client.get("/privacy/checkpoints", headers=HTML)
    assert 'data-testid="checkpoints"' in listing.text and f"person:{privacy_campus.privacy_officer}" in listing.text
    document = web_client.get("/privacy/checkpoints/1.json").json()
    signed = verify_export(document)
    with Session(sqlite_engine) as session:
        event = session.get(AuditEvent, signed.seq)
    assert event is not None and event.hash == signed.hash


def test_the_person_sees_uses_withdraws_and_downloads(
    web_client: TestClient, cas_server: CasStandIn, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    add_events(
        sqlite_engine,
        1,
        subject=privacy_campus.zhang,
        actor=f"person:{privacy_campus.helpdesk}",
        action="helpdesk.record.open",
        details={"reason": "ticket 5", "purpose": "helpdesk"},
    )
    assert web_client.get("/me/privacy", headers=HTML).status_code == 303  # not signed in: to the login
    token = signed_in_token(web_client, cas_server, "1120101234")
    page = web_client.get("/me/privacy", headers=HTML)
    assert page.status_code == 200 and "服务台工作人员查看了您的完整记录" in page.text and "ticket 5" in page.text
    assert HELPDESK_UID not in page.text and privacy_campus.helpdesk not in page.text  # staff by role, not by name
    english = web_client.get("/me/privacy?lang=en", headers=HTML)
    assert "Helpdesk staff opened your full record" in english.text
    response = web_client.get("/me/privacy/download")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    document = json.loads(response.text)
    assert document["person"]["id"] == privacy_campus.zhang and any(
        r["number"] == "1120101234" for r in document["records"]
    )
    withdrawn = web_client.post(
        "/me/privacy/consents/library.example/withdraw", data={"csrf_token": token}, headers=HTML
    )
    assert withdrawn.status_code == 303 and withdrawn.headers["location"] == "/me/privacy?withdrawn=0"
