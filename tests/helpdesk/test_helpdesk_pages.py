"""The helpdesk console over HTTP: every route refuses a student and a wrong role (403, nothing shown, nothing
done), and the pages do what the domain does, with the reason and the CSRF token checked."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from plugins.privacy import (
    HELPDESK_UID,
    PRIVACY_UID,
    STUDENT_UID,
    Campus,
    audit_count,
    signed_in_token,
)
from sqlalchemy import Engine
from sqlmodel import Session, select
from standins.cas_server import CasStandIn

from idbroker.audit.models import AuditEvent
from idbroker.contacts.models import ContactPoint
from idbroker.linking.models import MergeCandidate

HTML = {"accept": "text/html"}
ROUTES = [
    ("GET", "/helpdesk", {}),
    ("POST", "/helpdesk/search", {"q": "张帅"}),
    ("GET", "/helpdesk/people/{zhang}", {}),
    ("POST", "/helpdesk/people/{zhang}/open", {"reason": "ticket 1"}),
    ("POST", "/helpdesk/people/{zhang}/contacts", {"kind": "phone", "value": "13912345678", "reason": "ticket 1"}),
    ("POST", "/helpdesk/people/{zhang}/update-link", {"channel": "sms"}),
    ("POST", "/helpdesk/merges/1/undo", {"reason": "ticket 1"}),
    ("GET", "/helpdesk/review", {}),
    ("GET", "/helpdesk/review/{candidate}", {}),
    ("POST", "/helpdesk/review/{candidate}/decide", {"decision": "merge", "reason": "ticket 1"}),
    ("POST", "/helpdesk/approvals/1/approve", {"reason": "ticket 1"}),
]


def call(client: TestClient, method: str, path: str, data: dict[str, str], token: str, campus: Campus):  # type: ignore[no-untyped-def]
    url = path.format(zhang=campus.zhang, candidate=campus.candidate)
    if method == "GET":
        return client.get(url, headers=HTML)
    return client.post(url, data={**data, "csrf_token": token}, headers=HTML)


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
    for uid in (STUDENT_UID, PRIVACY_UID):  # a student, and staff with another role
        web_client.cookies.clear()
        token = signed_in_token(web_client, cas_server, uid)
        before = audit_count(sqlite_engine)
        response = call(web_client, method, path, data, token, privacy_campus)
        assert response.status_code == 403, uid
        assert "张" not in response.text and "張" not in response.text and privacy_campus.zhang not in response.text
        assert "138" not in response.text
        assert audit_count(sqlite_engine) == before  # nothing searched, opened or decided
        with Session(sqlite_engine) as session:
            case = session.get(MergeCandidate, privacy_campus.candidate)
        assert case is not None and case.state == "open"


def test_nobody_signed_in_is_sent_to_the_login(web_client: TestClient, sqlite_engine: Engine) -> None:
    response = web_client.get("/helpdesk", headers=HTML)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_the_search_is_a_post_with_csrf_and_shows_masked_results(
    web_client: TestClient, cas_server: CasStandIn, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    token = signed_in_token(web_client, cas_server, HELPDESK_UID)
    assert web_client.post("/helpdesk/search", data={"q": "张帅"}, headers=HTML).status_code == 403  # no token
    response = web_client.post("/helpdesk/search", data={"q": "Zhang Shuai", "csrf_token": token}, headers=HTML)
    assert response.status_code == 200
    assert f'data-testid="hit-{privacy_campus.zhang}"' in response.text
    assert f'data-testid="hit-{privacy_campus.zhang_master}"' in response.text
    assert "张*" in response.text and "张帅" not in response.text and "13800001111" not in response.text
    bad = web_client.post("/helpdesk/search", data={"q": "张帅!!", "csrf_token": token}, headers=HTML)
    assert bad.status_code == 400 and 'data-testid="error-message"' in bad.text


def test_the_full_record_opens_only_with_a_reason(
    web_client: TestClient, cas_server: CasStandIn, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    token = signed_in_token(web_client, cas_server, HELPDESK_UID)
    ask = web_client.get(f"/helpdesk/people/{privacy_campus.zhang}", headers=HTML)
    assert ask.status_code == 200 and "13800001111" not in ask.text and 'name="reason"' in ask.text
    refused = web_client.post(
        f"/helpdesk/people/{privacy_campus.zhang}/open", data={"reason": "", "csrf_token": token}, headers=HTML
    )
    assert refused.status_code == 400 and "+8613800001111" not in refused.text
    opened = web_client.post(
        f"/helpdesk/people/{privacy_campus.zhang}/open",
        data={"reason": "ticket 2024-118", "csrf_token": token},
        headers=HTML,
    )
    assert opened.status_code == 200 and "+8613800001111" in opened.text and "ticket 2024-118" in opened.text
    with Session(sqlite_engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "helpdesk.record.open")).one()
    assert event.actor == f"person:{privacy_campus.helpdesk}" and event.subject == privacy_campus.zhang
    assert '"client_ip":"testclient"' in event.details


def test_correct_a_phone_and_send_an_update_link(
    web_client: TestClient, cas_server: CasStandIn, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    token = signed_in_token(web_client, cas_server, HELPDESK_UID)
    url = f"/helpdesk/people/{privacy_campus.zhang}"
    personal = web_client.post(
        f"{url}/contacts",
        data={"kind": "phone", "value": "13912345678", "reason": "call 13912345678", "csrf_token": token},
        headers=HTML,
    )
    assert personal.status_code == 400  # the reason must not carry the number
    done = web_client.post(
        f"{url}/contacts",
        data={"kind": "phone", "value": "139 1234 5678", "reason": "ticket 44", "csrf_token": token},
        headers=HTML,
    )
    assert done.status_code == 200 and 'data-testid="done-message"' in done.text
    record = web_client.post(f"{url}/open", data={"reason": "ticket 44", "csrf_token": token}, headers=HTML)
    assert "+8613912345678" in record.text
    sent = web_client.post(f"{url}/update-link", data={"channel": "sms", "csrf_token": token}, headers=HTML)
    assert sent.status_code == 200
    with Session(sqlite_engine) as session:
        actions = [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()]
        point = session.exec(select(ContactPoint).where(ContactPoint.value == "+8613912345678")).one()
    assert "contact.helpdesk.corrected" in actions and "contact.update_link.sent" in actions
    assert (point.confirmed_by, point.confirmed_reason) == (f"person:{privacy_campus.helpdesk}", "ticket 44")


def test_review_a_case_and_merge_it_then_undo_it(
    web_client: TestClient, cas_server: CasStandIn, sqlite_engine: Engine, privacy_campus: Campus
) -> None:
    token = signed_in_token(web_client, cas_server, HELPDESK_UID)
    queue = web_client.get("/helpdesk/review", headers=HTML)
    assert (
        f'data-testid="case-{privacy_campus.candidate}"' in queue.text and 'data-testid="queue-size">1<' in queue.text
    )
    case = web_client.get(f"/helpdesk/review/{privacy_campus.candidate}", headers=HTML)
    assert case.status_code == 200 and "2120143257" in case.text and "1120101234" in case.text
    assert 'data-testid="evidence"' in case.text
    decided = web_client.post(
        f"/helpdesk/review/{privacy_campus.candidate}/decide",
        data={"decision": "merge", "reason": "ticket 9", "csrf_token": token},
        headers=HTML,
    )
    assert decided.status_code == 200
    with Session(sqlite_engine) as session:
        candidate = session.get(MergeCandidate, privacy_campus.candidate)
        assert candidate is not None and candidate.state == "merged"
    record = web_client.post(
        f"/helpdesk/people/{privacy_campus.zhang}/open", data={"reason": "ticket 10", "csrf_token": token}, headers=HTML
    )
    assert "/undo" in record.text
    operation = record.text.split("/helpdesk/merges/")[1].split("/undo")[0]
    undone = web_client.post(
        f"/helpdesk/merges/{operation}/undo", data={"reason": "ticket 10", "csrf_token": token}, headers=HTML
    )
    assert undone.status_code == 200
    again = web_client.post(
        f"/helpdesk/merges/{operation}/undo", data={"reason": "ticket 10", "csrf_token": token}, headers=HTML
    )
    assert again.status_code == 409
