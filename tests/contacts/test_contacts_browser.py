"""Done when: in real Chromium at 375×667 (and at a desktop size) a person logs in through CAS, sees their
numbers masked, adds a phone, receives the code through Kannel's fake SMSC, verifies it and sees it become
primary. Every page of the flow is saved as a screenshot at both sizes (tests/artifacts/screenshots/)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from factories import student
from plugins.contacts import SmtpServer, import_rows
from plugins.web import DESKTOP, PHONE, LiveServer, fonts_used, take_screenshot
from services.kannel import Kannel
from sqlmodel import Session
from standins.cas_server import DEFAULT_PASSWORD, CasStandIn

from idbroker.contacts.update_link import send_update_link
from idbroker.directory.queries import people_by_number

UID = "1120101234"


def log_in(page: Any, live_server: LiveServer, cas_server: CasStandIn) -> None:
    cas_server.add_user(UID)
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="通过统一身份认证登录").click()
    page.wait_for_url(f"{cas_server.url}/login?service=*")
    page.fill("input[name=username]", UID)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


@pytest.mark.parametrize(
    ("size", "new_phone"), [(PHONE, "13912345678"), (DESKTOP, "13912345679")], ids=["phone", "desktop"]
)
def test_log_in_see_masked_numbers_add_a_phone_verify_it_by_sms_and_it_becomes_primary(
    page: Any,
    use_kannel: Kannel,
    live_server: LiveServer,
    cas_server: CasStandIn,
    size: dict[str, int],
    new_phone: str,
) -> None:
    import_rows(
        live_server.engine,
        "student",
        [student(UID, "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678", "zs@example.edu.cn")],
    )
    page.set_viewport_size(size)
    log_in(page, live_server, cas_server)

    page.get_by_role("link", name="我的身份").click()
    page.wait_for_url(f"{live_server.url}/me")
    numbers = page.get_by_test_id("identity-number").all_inner_texts()
    assert numbers == ["112****234"] and UID not in page.content()
    assert "138****5678" in page.get_by_test_id("contacts-link").inner_text() and "13812345678" not in page.content()
    assert any("WenQuanYi" in font or "CJK" in font for font in fonts_used(page, "h1"))
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    take_screenshot(page, "me-identities")

    page.get_by_test_id("contacts-link").click()
    page.wait_for_url(f"{live_server.url}/me/contacts")
    assert page.get_by_test_id("contact-value").first.inner_text() == "138****5678"
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    take_screenshot(page, "me-contacts")

    page.fill("#phone", f"{new_phone[:3]} {new_phone[3:7]} {new_phone[7:]}")
    page.get_by_test_id("add-phone").get_by_role("button", name="发送验证码").click()
    page.wait_for_url(re.compile(r".*/me/verify/[\w-]+$"))
    masked = f"{new_phone[:3]}****{new_phone[-4:]}"
    assert masked in page.get_by_test_id("sent-to").inner_text()
    take_screenshot(page, "me-verify")

    (sms,) = use_kannel.wait_for("+86" + new_phone)  # what the fake SMSC received, UCS-2 decoded
    code = re.search(r"验证码是(\d{6})", sms.text).group(1)  # type: ignore[union-attr]
    page.fill("#code", code)
    page.get_by_test_id("verify").click()
    page.wait_for_url(f"{live_server.url}/me/contacts?done=verified")
    assert "验证成功" in page.get_by_test_id("done").inner_text()
    card = page.locator("[data-testid=contact][data-primary=yes][data-kind=phone]")
    assert card.get_by_test_id("contact-value").inner_text() == masked
    assert card.get_attribute("data-verified") == "yes" and card.get_by_test_id("badge-primary").is_visible()
    assert "短信验证码验证于" in card.inner_text()
    assert new_phone not in page.content()
    take_screenshot(page, "me-contacts-verified")

    page.get_by_role("link", name="English").click()
    assert page.locator("h1").inner_text() == "My phones and emails"
    take_screenshot(page, "me-contacts-english")


def test_the_email_link_and_update_link_pages(
    page: Any, use_kannel: Kannel, use_smtp: SmtpServer, live_server: LiveServer, cas_server: CasStandIn
) -> None:
    import_rows(
        live_server.engine,
        "student",
        [student(UID, "张帅", "男", "1992-05-17", "", "本科", "2010", "13812340099", "zs@example.edu.cn")],
    )
    page.set_viewport_size(PHONE)
    log_in(page, live_server, cas_server)
    page.goto(f"{live_server.url}/me/contacts")
    page.fill("#email", "zhang.shuai@example.edu.cn")
    page.get_by_role("button", name="发送确认链接").click()
    page.wait_for_url(f"{live_server.url}/me/contacts?done=link_sent")
    (mail,) = use_smtp.wait_for("zhang.shuai@example.edu.cn")
    link = re.search(r"http://\S+/me/email/confirm/[\w-]+", mail.get_content()).group(0)  # type: ignore[union-attr]
    page.goto(link)
    take_screenshot(page, "me-email-confirm")
    page.get_by_test_id("confirm-email").click()
    assert "邮箱已验证" in page.get_by_test_id("done").inner_text()
    take_screenshot(page, "me-email-confirmed")

    page.get_by_role("button", name="退出登录").click()
    with Session(live_server.engine) as session:
        person = people_by_number(session, UID)[0].id
        sent = send_update_link(session, person, "sms", actor="staff:helpdesk1", settings=live_server.settings)
        session.commit()
    from idbroker.contacts.delivery import attempt_now

    attempt_now(live_server.engine, sent.delivery_id, live_server.settings)
    (sms,) = use_kannel.wait_for("+8613812340099")
    page.goto(re.search(r"http://\S+/me/update/[\w-]+", sms.text).group(0))  # type: ignore[union-attr]
    take_screenshot(page, "me-update-link")
    page.get_by_test_id("continue").click()
    page.wait_for_url(f"{live_server.url}/me/contacts")
    assert page.get_by_test_id("update-session").is_visible()
    assert page.locator("[data-testid=contact][data-kind=email][data-verified=yes]").count() == 1
    take_screenshot(page, "me-contacts-update-session")
