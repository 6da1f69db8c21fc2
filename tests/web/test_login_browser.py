"""CAS login in real Chromium, at a phone's size and a desktop's: pick the uid at CAS, land home, sign out."""

from __future__ import annotations

from typing import Any

import pytest
from plugins.web import DESKTOP, PHONE, LiveServer, add_person, fonts_used, take_screenshot
from standins.cas_server import DEFAULT_PASSWORD, CasStandIn

UID = "1120101234"


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_cas_login_end_to_end(page: Any, live_server: LiveServer, cas_server: CasStandIn, size: dict[str, int]) -> None:
    add_person(live_server.engine, {"student": UID, "cas": UID})
    cas_server.add_user(UID)
    page.set_viewport_size(size)
    page.goto(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "统一身份信息服务"
    take_screenshot(page, "login-start")

    page.get_by_role("link", name="通过统一身份认证登录").click()
    page.wait_for_url(f"{cas_server.url}/login?service=*")
    page.fill("input[name=username]", UID)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")

    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_test_id("whoami").inner_text().endswith("112****234")
    assert UID not in page.content()
    assert page.get_by_role("link", name="我的身份").get_attribute("href") == "/me"
    assert any("WenQuanYi" in font or "CJK" in font for font in fonts_used(page, "h1"))  # Chinese drawn, not boxes
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]  # no sideways scrolling
    take_screenshot(page, "home-signed-in")

    page.get_by_role("link", name="English").click()
    assert page.locator("h1").inner_text() == "Welcome"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("link", name="Sign in with campus CAS").is_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "idb_session"]


def test_a_replayed_ticket_in_the_browser_gets_the_refusal_page(
    page: Any, live_server: LiveServer, cas_server: CasStandIn
) -> None:
    add_person(live_server.engine, {"student": UID})
    cas_server.add_user(UID)
    page.goto(f"{live_server.url}/login?next=%2F")
    page.fill("input[name=username]", UID)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    with page.expect_request(lambda r: "ticket=ST-" in r.url) as callback:
        page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.context.clear_cookies()
    response = page.goto(callback.value.url)
    assert response.status == 400
    assert "登录未完成" in page.locator("h1").inner_text()
    take_screenshot(page, "login-refused")
