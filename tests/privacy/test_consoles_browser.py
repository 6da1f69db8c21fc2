"""The consoles in real Chromium: a helpdesk member finds 张帅 by pinyin, opens the record with a reason and
merges a queued case; the privacy officer then sees both actions; the person sees the access in "who used
my data". Screenshots of every console page at desktop size (and phone size), Chinese rendered."""

from __future__ import annotations

from typing import Any

from plugins.privacy import HELPDESK_UID, PRIVACY_UID, Campus, add_events
from plugins.web import DESKTOP, LiveServer, fonts_used, log_in, take_screenshot
from sqlmodel import Session
from standins.cas_server import CasStandIn

from idbroker.linking.models import MergeCandidate


def chinese_drawn(page: Any, selector: str = "h1") -> bool:
    return any("WenQuanYi" in font or "CJK" in font for font in fonts_used(page, selector))


def switch_user(page: Any, server: LiveServer, cas: CasStandIn, uid: str, next_path: str) -> None:
    page.context.clear_cookies()
    log_in(page, server, cas, uid, next_path)


def test_helpdesk_merge_then_privacy_officer_then_the_person(
    page: Any, live_server: LiveServer, cas_server: CasStandIn, privacy_campus: Campus
) -> None:
    campus = privacy_campus
    page.set_viewport_size(DESKTOP)
    for person in (campus.zhang, campus.student):  # an app that read a lot today: statistics and an alert
        add_events(live_server.engine, 60, subject=person, actor="app:bus")

    # The helpdesk member finds 张帅 by the pinyin of the name.
    log_in(page, live_server, cas_server, HELPDESK_UID, "/helpdesk")
    assert page.locator("h1").inner_text() == "查找人员" and chinese_drawn(page)
    page.fill("#q", "Zhang Shuai")
    page.get_by_role("button", name="查找").click()
    page.get_by_test_id("results").wait_for()
    assert page.get_by_test_id(f"hit-{campus.zhang}").is_visible()
    assert page.get_by_test_id(f"hit-{campus.zhang_master}").is_visible()
    assert "13800001111" not in page.content() and "张*" in page.get_by_test_id(f"hit-{campus.zhang}").inner_text()
    take_screenshot(page, "helpdesk-search")

    # … opens the full record with a reason …
    page.get_by_test_id(f"hit-{campus.zhang}").get_by_role("link", name="查看完整记录").click()
    page.fill("#reason", "工单 2024-118，本人来电")
    page.get_by_role("button", name="填写事由并查看").click()
    page.get_by_test_id("records").wait_for()
    assert "+8613800001111" in page.get_by_test_id("records").inner_text()
    assert "工单 2024-118" in page.get_by_test_id("record-reason").inner_text()
    take_screenshot(page, "helpdesk-record")

    # … and merges the queued case after comparing the two side by side.
    page.get_by_role("link", name="合并审核").click()
    assert page.get_by_test_id("queue-size").inner_text() == "1"
    take_screenshot(page, "helpdesk-review")
    page.get_by_test_id(f"case-{campus.candidate}").get_by_role("link").click()
    page.get_by_test_id("side-by-side").wait_for()
    assert "2120143257" in page.get_by_test_id("side-by-side").inner_text()
    take_screenshot(page, "helpdesk-case")
    page.get_by_label("是同一人，合并").check()
    page.fill("#reason", "工单 2024-118：学号与出生日期核对一致")
    page.get_by_role("button", name="提交决定").click()
    assert page.get_by_test_id("done-message").inner_text() == "已合并。"
    with Session(live_server.engine) as session:
        case = session.get(MergeCandidate, campus.candidate)
    assert case is not None and case.state == "merged"

    # The privacy officer sees both actions, by the helpdesk member, on 张帅.
    switch_user(page, live_server, cas_server, PRIVACY_UID, "/privacy?person=1120101234")
    events = page.get_by_test_id("events")
    events.wait_for()
    actor = f"person:{campus.helpdesk}"
    for action in ("helpdesk.record.open", "review.merge"):
        row = events.locator(f"tr[data-action='{action}']").first
        assert actor in row.inner_text(), action
    assert "工单 2024-118，本人来电" in events.inner_text()
    assert chinese_drawn(page)
    take_screenshot(page, "privacy-search")
    page.get_by_role("link", name="查看此人的访问报告").click()
    page.get_by_test_id("report-person").wait_for()
    take_screenshot(page, "privacy-report")
    page.get_by_role("link", name="应用统计与告警").click()
    assert "app:bus" in page.get_by_test_id("alerts").inner_text()
    assert page.get_by_test_id("app-stats").locator("tbody tr").count() == 1
    take_screenshot(page, "privacy-apps")
    page.get_by_role("link", name="签名检查点").click()
    page.get_by_role("button", name="立即签名当前日志").click()
    page.get_by_test_id("checkpoints").wait_for()
    take_screenshot(page, "privacy-checkpoints")

    # The person sees the access in "who used my data".
    switch_user(page, live_server, cas_server, "1120101234", "/me/privacy")
    uses = page.get_by_test_id("uses")
    uses.wait_for()
    opened = uses.locator("li[data-kind='staff_opened']").first
    assert "服务台工作人员查看了您的完整记录" in opened.inner_text()
    assert "工单 2024-118，本人来电" in opened.inner_text()
    assert HELPDESK_UID not in page.content() and campus.helpdesk not in page.content()
    assert chinese_drawn(page)
    take_screenshot(page, "me-privacy")
    page.get_by_role("link", name="English").click()
    assert "Helpdesk staff opened your full record" in page.get_by_test_id("uses").inner_text()
