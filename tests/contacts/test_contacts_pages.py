"""The self-service pages and their JSON API over HTTP: masked numbers, CSRF on every form, codes through
Kannel, email links through SMTP, update links, and the gateways' delivery reports."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from factories import student
from fastapi.testclient import TestClient
from plugins.contacts import CloudSms, SmtpServer, import_rows
from plugins.web import LiveServer, sign_in
from services.kannel import Kannel
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session
from standins.cas_server import CasStandIn

from idbroker.contacts.delivery import attempt, queue_message, report_signature
from idbroker.contacts.models import MessageDelivery, VerificationFlow
from idbroker.contacts.update_link import send_update_link
from idbroker.directory.queries import people_by_number

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ZHANG = student("1120101234", "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678", "zs@example.edu.cn")
LI = student("1120101235", "李娜", "女", "1993-02-03", "", "本科", "2010", "13712345678")


@pytest.fixture
def campus(sqlite_engine: Engine) -> Engine:
    import_rows(sqlite_engine, "student", [ZHANG, LI])
    return sqlite_engine


def person_of(engine: Engine, number: str) -> str:
    with Session(engine) as session:
        return people_by_number(session, number)[0].id


def csrf(client: TestClient, path: str = "/me/contacts") -> str:
    match = CSRF.search(client.get(path, headers={"accept": "text/html"}).text)
    assert match, "the page has no CSRF field"
    return match.group(1)


def post_form(client: TestClient, path: str, data: dict[str, str]) -> Any:
    return client.post(path, data={"csrf_token": csrf(client), **data}, headers={"accept": "text/html"})


def flows(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(VerificationFlow)) or 0


def test_pages_show_numbers_masked_and_need_a_login(
    campus: Engine, web_client: TestClient, cas_server: CasStandIn
) -> None:
    assert web_client.get("/me", headers={"accept": "text/html"}).status_code == 303
    assert web_client.get("/api/me/contacts").status_code == 401
    sign_in(web_client, cas_server, "1120101234")
    page = web_client.get("/me", headers={"accept": "text/html"}).text
    assert "112****234" in page and "1120101234" not in page and "138****5678" in page
    page = web_client.get("/me/contacts", headers={"accept": "text/html"}).text
    assert "138****5678" in page and "z***@example.edu.cn" in page
    assert "13812345678" not in page and "zs@example.edu.cn" not in page
    assert "学生" in page  # the source, in Chinese
    assert "13812345678" not in web_client.get("/api/me/contacts").text


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    campus: Engine, web_client: TestClient, cas_server: CasStandIn
) -> None:
    sign_in(web_client, cas_server, "1120101234")
    response = web_client.post("/me/phones", data={"phone": "13912345678"}, headers={"accept": "text/html"})
    assert response.status_code == 403 and "未做任何更改" in response.text
    assert web_client.post("/api/me/phones", json={"phone": "13912345678"}).status_code == 403
    assert web_client.post("/me/phones", data={"phone": "13912345678", "csrf_token": "forged"}).status_code == 403
    assert flows(campus) == 0


def test_add_a_phone_receive_the_code_through_kannel_and_verify_it(
    campus: Engine, use_kannel: Kannel, web_client: TestClient, cas_server: CasStandIn
) -> None:
    sign_in(web_client, cas_server, "1120101234")
    response = post_form(web_client, "/me/phones", {"phone": "139 1234 0001"})
    assert response.status_code == 303 and response.headers["location"].startswith("/me/verify/")
    verify_path = response.headers["location"]
    page = web_client.get(verify_path, headers={"accept": "text/html"}).text
    assert "139****0001" in page
    (sms,) = use_kannel.wait_for("+8613912340001")
    code = re.search(r"验证码是(\d{6})", sms.text).group(1)  # type: ignore[union-attr]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = web_client.post(
        verify_path, data={"csrf_token": csrf(web_client), "code": wrong}, headers={"accept": "text/html"}
    )
    assert refused.status_code == 400 and "验证码不正确，还可以再试 4 次" in refused.text
    done = web_client.post(
        verify_path, data={"csrf_token": csrf(web_client), "code": code}, headers={"accept": "text/html"}
    )
    assert done.status_code == 303 and done.headers["location"] == "/me/contacts?done=verified"
    contacts = web_client.get("/api/me/contacts").json()["contacts"]
    new = next(c for c in contacts if c["value"] == "139****0001")
    assert (
        new["primary"]
        and new["verified"]
        and new["verified_method"] == "sms_code"
        and new["sources"] == ["self_service"]
    )
    replay = web_client.post(
        verify_path, data={"csrf_token": csrf(web_client), "code": code}, headers={"accept": "text/html"}
    )
    assert replay.status_code == 409 and "已经使用过" in replay.text


def test_the_api_answers_alike_for_a_number_someone_holds_and_refuses_bad_input(
    campus: Engine, web_client: TestClient, cas_server: CasStandIn
) -> None:
    sign_in(web_client, cas_server, "1120101234")
    headers = {"x-csrf-token": csrf(web_client)}
    held = web_client.post("/api/me/phones", json={"phone": "13712345678"}, headers=headers)  # 李娜's
    free = web_client.post("/api/me/phones", json={"phone": "13612345678"}, headers=headers)
    assert held.status_code == free.status_code == 202
    assert set(held.json()) == set(free.json()) and held.json()["channel"] == free.json()["channel"] == "sms"
    for phone, code in (
        ("12345", "phone_invalid"),
        ("+1 202 555 0123", "phone_foreign"),
        ("010-62782114", "phone_not_mobile"),
    ):
        refused = web_client.post("/api/me/phones", json={"phone": phone}, headers=headers)
        assert refused.status_code == 400 and refused.json()["code"] == code
    odd = web_client.post("/api/me/emails", json={"email": "zh\u0430ng@example.edu.cn"}, headers=headers)
    assert odd.status_code == 400 and odd.json()["code"] == "email_unusual"
    again = web_client.post("/api/me/phones", json={"phone": "13612345678"}, headers=headers)
    assert (
        again.status_code == 429
        and again.headers["retry-after"]
        and again.json()["code"] in ("limit_target", "limit_person")
    )


def test_another_persons_challenge_is_not_found_over_http(
    campus: Engine, web_client: TestClient, cas_server: CasStandIn
) -> None:
    with Session(campus) as session:
        from idbroker.config import get_settings
        from idbroker.contacts.policy import contacts_policy
        from idbroker.contacts.targets import parse_phone
        from idbroker.contacts.verification.strategy_code import send_code

        started = send_code(
            session,
            get_settings(),
            person_id=person_of(campus, "1120101235"),
            target=parse_phone("13912345000", contacts_policy(get_settings())),
            ip=None,
        )
        session.commit()
    sign_in(web_client, cas_server, "1120101234")
    answer = web_client.post(
        f"/api/me/verifications/{started.flow_id}", json={"code": "123456"}, headers={"x-csrf-token": csrf(web_client)}
    )
    assert answer.status_code == 404 and answer.json()["outcome"] == "not_found"
    with Session(campus) as session:
        assert session.get(VerificationFlow, started.flow_id).wrong_tries == 0  # type: ignore[union-attr]


def test_choose_a_primary_and_remove_a_stale_value_through_the_forms(
    campus: Engine, use_kannel: Kannel, web_client: TestClient, cas_server: CasStandIn
) -> None:
    sign_in(web_client, cas_server, "1120101234")
    headers = {"x-csrf-token": csrf(web_client)}
    flow = web_client.post("/api/me/phones", json={"phone": "13912340002"}, headers=headers).json()["flow"]
    code = re.search(r"\d{6}", use_kannel.wait_for("+8613912340002")[0].text).group(0)  # type: ignore[union-attr]
    assert (
        web_client.post(f"/api/me/verifications/{flow}", json={"code": code}, headers=headers).json()["outcome"]
        == "verified"
    )
    contacts = {c["value"]: c for c in web_client.get("/api/me/contacts").json()["contacts"]}
    old = contacts["138****5678"]
    assert not old["primary"] and contacts["139****0002"]["primary"]
    refused = post_form(web_client, f"/me/contacts/{old['id']}/primary", {})
    assert refused.status_code == 400 and "请先验证" in refused.text
    assert post_form(web_client, f"/me/contacts/{old['id']}/remove", {}).status_code == 303
    page = web_client.get("/me/contacts?done=removed", headers={"accept": "text/html"}).text
    assert "已删除" in page
    removed = {c["value"]: c for c in web_client.get("/api/me/contacts").json()["contacts"]}["138****5678"]
    assert removed["removed"]
    other = person_of(campus, "1120101235")
    with Session(campus) as session:
        from idbroker.contacts.provenance import contacts_of

        theirs = contacts_of(session, other)[0].id
    assert post_form(web_client, f"/me/contacts/{theirs}/remove", {}).status_code == 404
    assert web_client.delete(f"/api/me/contacts/{theirs}", headers=headers).status_code == 404


def test_an_email_verified_by_its_single_use_link(
    campus: Engine, use_smtp: SmtpServer, web_client: TestClient, cas_server: CasStandIn
) -> None:
    sign_in(web_client, cas_server, "1120101234")
    response = post_form(web_client, "/me/emails", {"email": "Zhang.Shuai@Example.EDU.cn", "method": "link"})
    assert response.headers["location"] == "/me/contacts?done=link_sent"
    (mail,) = use_smtp.wait_for("zhang.shuai@example.edu.cn")
    link = re.search(r"http://testserver(/me/email/confirm/[\w-]+)", mail.get_content()).group(1)  # type: ignore[union-attr]
    web_client.cookies.clear()  # the link works from any browser: it is bound to the flow, not the session
    page = web_client.get(link, headers={"accept": "text/html"})
    assert page.status_code == 200 and "z***@example.edu.cn" in page.text
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    done = web_client.post(link, data={"csrf_token": token}, headers={"accept": "text/html"})
    assert done.status_code == 200 and "邮箱已验证" in done.text
    again = web_client.post(link, data={"csrf_token": token}, headers={"accept": "text/html"})
    assert again.status_code == 409
    with campus.connect() as connection:
        method = connection.execute(
            text("SELECT verified_method FROM contact_point WHERE verified_at IS NOT NULL")
        ).scalar()
    assert method == "email_link"


def test_an_update_link_opens_the_contacts_page_once_for_its_person_only(
    campus: Engine, use_kannel: Kannel, web_client: TestClient
) -> None:
    zhang = person_of(campus, "1120101234")
    with Session(campus) as session:
        sent = send_update_link(session, zhang, "sms", actor="staff:helpdesk1")
        session.commit()
    with Session(campus) as session:
        from idbroker.config import get_settings

        attempt(session, get_settings(), sent.delivery_id)
    (sms,) = use_kannel.wait_for("+8613812345678")
    path = re.search(r"(/me/update/[\w-]+)", sms.text).group(1)  # type: ignore[union-attr]
    page = web_client.get(path, headers={"accept": "text/html"})
    assert page.status_code == 200
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    opened = web_client.post(path, data={"csrf_token": token}, headers={"accept": "text/html"})
    assert opened.status_code == 303 and opened.headers["location"] == "/me/contacts"
    assert "idb_update" in opened.headers["set-cookie"] and "HttpOnly" in opened.headers["set-cookie"]
    contacts = web_client.get("/me/contacts", headers={"accept": "text/html"})
    assert contacts.status_code == 200 and "138****5678" in contacts.text and "一次性链接" in contacts.text
    assert web_client.get("/me", headers={"accept": "text/html"}).status_code == 303  # not a full login
    assert web_client.get(path, headers={"accept": "text/html"}).status_code == 410  # used
    assert web_client.get("/me/update/not-a-token", headers={"accept": "text/html"}).status_code == 404


def send_code_sms(engine: Engine, live_server: LiveServer, to: str) -> int:
    """Queue a code for 张帅 to `to` and hand it to the gateway with the live server's settings (report URLs)."""
    with Session(engine) as session:
        delivery = queue_message(
            session,
            live_server.settings,
            person_id=person_of(engine, "1120101234"),
            channel="sms",
            to=to,
            template="phone_code",
            params={"code": "123456", "minutes": "10"},
        )
        session.commit()
        delivery_id: int = delivery.id  # type: ignore[assignment]
    with Session(engine) as session:
        assert attempt(session, live_server.settings, delivery_id).state == "sent"
    return delivery_id


def test_kannel_reports_delivery_to_the_signed_report_url(
    campus: Engine, use_kannel: Kannel, live_server: LiveServer
) -> None:
    delivery_id = send_code_sms(campus, live_server, "+8613912340003")
    use_kannel.wait_for("+8613912340003")
    found = None
    for _ in range(100):
        with Session(campus) as session:
            found = session.get(MessageDelivery, delivery_id)
            if found is not None and found.state == "delivered":
                break
        import time

        time.sleep(0.05)
    assert found is not None and found.state == "delivered" and found.report in ("kannel:1", "kannel:8")
    signed = (
        f"{live_server.url}/contacts/reports/kannel/{delivery_id}/{report_signature(live_server.settings, delivery_id)}"
    )
    assert httpx.get(signed, params={"type": 8}).text == "ok"  # "reached the SMSC", arriving late, downgrades nothing
    forged = httpx.get(f"{live_server.url}/contacts/reports/kannel/{delivery_id}/0000?type=2")
    assert forged.status_code == 403
    with Session(campus) as session:
        assert session.get(MessageDelivery, delivery_id).state == "delivered"  # type: ignore[union-attr]


@pytest.fixture
def live_server_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"cloud_sms_report_token": "report-path-secret"}


def test_cloud_sms_reports_are_pushed_to_the_secret_url(
    campus: Engine, use_cloud_sms: CloudSms, live_server: LiveServer
) -> None:
    delivery_id = send_code_sms(campus, live_server, "+8613912340004")
    assert use_cloud_sms.standin.push_reports(f"{live_server.url}/contacts/reports/cloud/wrong").status_code == 403
    pushed = use_cloud_sms.standin.push_reports(f"{live_server.url}/contacts/reports/cloud/report-path-secret")
    assert pushed.json() == {"code": 0, "msg": "成功"}
    with Session(campus) as session:
        found = session.get(MessageDelivery, delivery_id)
        assert found is not None and found.state == "delivered" and found.report == "cloud:DELIVERED"
