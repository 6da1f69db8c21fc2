"""Reconcile with user/list_id, the follow report per 学院 and per role, invitations, the CLI around them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from plugins.wecom import Role, campus_person, deliver, member_of, run_worker, subscribe_xml, sync
from sqlalchemy import Engine
from sqlmodel import Session
from standins.wecom_api import WeComStandIn
from typer.testing import CliRunner

from idbroker.cli.main import app
from idbroker.config import get_settings
from idbroker.web.app import create_app
from idbroker.wecom.client import WeComClient
from idbroker.wecom.desired import DesiredState
from idbroker.wecom.follow import follow_report
from idbroker.wecom.policy import load_wecom_policy
from idbroker.wecom.reconcile import reconcile


def campus(engine: Engine) -> dict[str, str]:
    people = {
        "cs1": campus_person(engine, "甲", Role("student", "1120230101", org="计算机学院", phone="+8613500000001")),
        "cs2": campus_person(engine, "乙", Role("student", "1120230102", org="计算机学院", phone="+8613500000002")),
        "math": campus_person(engine, "丙", Role("student", "1120230103", org="数学学院", phone="+8613500000003")),
        "staff": campus_person(engine, "丁", Role("hr", "6120170001", org="教务处", phone="+8613500000004")),
    }
    sync(engine)
    return people


def test_reconcile_reports_strangers_never_deletes_them_and_marks_the_vanished(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    people = campus(engine)
    with wecom_api.lock:
        wecom_api._create_member(
            {"userid": "admin01", "name": "管理员", "department": [1], "email": "a@example.edu.cn"}
        )
        wecom_api.api_user_delete({"userid": member_of(engine, people["math"]).userid}, None, None, 0)
    with WeComClient(get_settings(), engine) as client:
        result = reconcile(engine, client, actor="test", page=2)  # pages of two: the cursor is followed
    assert result.corp_members == 4 and result.unknown == ["admin01"]
    assert result.vanished == [member_of(engine, people["math"]).userid]
    assert wecom_api.count("user/list_id") == 2
    assert wecom_api.member("admin01") is not None and "user/delete" not in {c.api for c in wecom_api.calls}
    assert not member_of(engine, people["math"]).in_corp
    assert sync(engine).counts["created"] == 1  # the next sync puts it back

    output = CliRunner().invoke(app, ["wecom", "reconcile"]).output
    assert "unknown to the broker 1 (left alone)" in output and "admin01" in output


def test_the_follow_report_counts_per_college_and_per_role(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    people = campus(engine)
    with TestClient(create_app(get_settings())) as client:
        for key in ("cs1", "staff"):
            assert deliver(client, subscribe_xml(member_of(engine, people[key]).userid)).status_code == 200
    run_worker(engine)
    settings = get_settings()
    with Session(engine) as session:
        report = follow_report(session, DesiredState(load_wecom_policy(settings.policies_dir), settings.policies_dir))
    assert (report.members, report.followed) == (4, 2)
    assert {(r.group, r.members, r.followed) for r in report.by_org} == {
        ("计算机学院", 2, 1),
        ("数学学院", 1, 0),
        ("教务处", 1, 1),
    }
    assert {(r.group, r.members, r.followed) for r in report.by_role} == {("student", 3, 1), ("staff", 1, 1)}
    output = CliRunner().invoke(app, ["wecom", "report"]).output
    assert "members 4, followed 2 (50.0%)" in output and "计算机学院" in output and "50.0%" in output


def test_invite_asks_only_those_who_do_not_follow_and_not_twice_a_week(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    people = campus(engine)
    with TestClient(create_app(get_settings())) as client:
        deliver(client, subscribe_xml(member_of(engine, people["cs1"]).userid))
    run_worker(engine)
    result = CliRunner().invoke(app, ["wecom", "invite"])
    assert result.exit_code == 0 and "invited 3 members" in result.output
    invited = {c for c in wecom_api.invited}
    assert invited == {member_of(engine, people[k]).userid for k in ("cs2", "math", "staff")}
    assert "invited 0 members" in CliRunner().invoke(app, ["wecom", "invite"]).output


def test_commands_without_settings_say_what_is_missing(engine: Engine) -> None:
    result = CliRunner().invoke(app, ["wecom", "sync"])
    assert result.exit_code == 1 and "IDBROKER_WECOM_CORP_ID" in result.output and "Traceback" not in result.output
