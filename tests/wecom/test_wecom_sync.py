"""Syncing the directory into WeChat Work: a first sync by batch, increments one call per change, leavers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from plugins.wecom import Role, campus_person, change_record, member_of, sync, use_policy
from sqlalchemy import Engine, select
from sqlmodel import Session
from standins.wecom_api import WeComStandIn
from typer.testing import CliRunner

from idbroker.audit.models import AuditEvent
from idbroker.cli.main import app
from idbroker.clock import utcnow
from idbroker.wecom.state import WeComDepartment, WeComMember

MEMBER_APIS = ("user/create", "user/update", "media/upload", "batch/syncuser")


def student(n: int, **extra: object) -> Role:
    return Role("student", f"11202300{n:02d}", phone=f"+8613900{n:06d}", email=f"s{n}@stu.example.edu.cn", **extra)  # type: ignore[arg-type]


def apis(standin: WeComStandIn) -> list[str]:
    return [call.api for call in standin.calls]


def test_a_first_sync_creates_departments_then_members_by_batch(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    use_policy(monkeypatch, tmp_path, batch_threshold=5)
    people = [campus_person(engine, f"学生{n}", student(n)) for n in range(6)]
    teacher = campus_person(
        engine,
        "Li Lei",
        Role("hr", "6120170032", org="数学学院", phone="+8613700000001"),
        Role("cas", "6120170032", name="李雷"),
    )
    report = sync(engine)

    called = apis(wecom_api)
    assert called[:2] == ["gettoken", "department/simplelist"]
    assert called.count("batch/replaceparty") == 1 and "department/create" not in called  # 20 departments at once
    assert called.index("batch/syncuser") > called.index("batch/replaceparty")
    assert called.count("media/upload") == 2 and called.count("batch/syncuser") == 1
    assert "user/create" not in called and len(called) <= 10  # token, list, 2 × (upload, job, result)
    assert report.counts["created"] == 7
    first = wecom_api.member(member_of(engine, people[0]).userid)
    assert first is not None
    assert (first["name"], first["department"], first["mobile"], first["email"]) == (
        "学生0",
        [101],
        "+86 13900000000",
        "s0@stu.example.edu.cn",
    )
    lecturer = wecom_api.member(member_of(engine, teacher).userid)
    assert (
        lecturer is not None and lecturer["name"] == "李雷" and lecturer["department"] == [3]
    )  # characters beat pinyin
    with Session(engine) as session:
        assert session.scalar(select(WeComDepartment).where(WeComDepartment.id == 101)).in_corp  # type: ignore[union-attr]
        recorded = session.scalars(select(WeComMember)).all()
        assert all(
            m.in_corp and m.pending_job is None and m.mobile_hash and m.mobile_hash.startswith("k1$") for m in recorded
        )
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "wecom.sync")).one()
        assert '"created":7' in event.details and "139" not in event.details

    wecom_api.reset_calls()
    assert sync(engine).total_calls == 0 and wecom_api.calls == []  # nothing changed: not even a token


def test_an_increment_costs_one_call_per_changed_member(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    people = [campus_person(engine, f"学生{n}", student(n)) for n in range(5)]
    sync(engine)
    assert apis(wecom_api).count("user/create") == 5  # under the batch threshold: one by one
    wecom_api.reset_calls()

    change_record(engine, "student", "1120230000", phone="+8613911111111")  # mobile
    change_record(engine, "student", "1120230001", org="物理学院", name="学生一")  # department and name: one call
    change_record(engine, "student", "1120230002", email="new2@stu.example.edu.cn")
    newcomer = campus_person(engine, "新生", student(9))
    report = sync(engine)

    assert sorted(apis(wecom_api)) == ["user/create", "user/update", "user/update", "user/update"]
    assert report.counts == {"created": 1, "updated": 3}
    updates = {c.userid: c for c in wecom_api.calls if c.api == "user/update"}
    assert set(updates) == {member_of(engine, p).userid for p in people[:3]}
    moved = wecom_api.member(member_of(engine, people[1]).userid)
    assert moved is not None and (moved["name"], moved["department"], moved["mobile"]) == (
        "学生一",
        [103],
        "+86 13900000001",
    )
    assert wecom_api.member(member_of(engine, people[0]).userid)["mobile"] == "+86 13911111111"  # type: ignore[index]
    assert wecom_api.member(member_of(engine, newcomer).userid) is not None


def test_plan_prints_counts_and_a_sample_without_calling(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    for n in range(3):
        campus_person(engine, f"学生{n}", student(n))
    result = CliRunner().invoke(app, ["wecom", "plan"])
    assert result.exit_code == 0, result.output
    assert "members to create: 3 (one by one)" in result.output
    assert "departments to create or update: 20" in result.output
    assert "create   wx-" in result.output and "mobile" in result.output
    assert "139" not in result.output  # field names, never values
    assert wecom_api.calls == []
    result = CliRunner().invoke(app, ["wecom", "sync"])
    assert result.exit_code == 0, result.output
    assert "created 3" in result.output
    assert "members to create: 0" in CliRunner().invoke(app, ["wecom", "plan"]).output


def test_a_leaver_is_disabled_after_the_grace_period_never_deleted(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    leaver = campus_person(engine, "毕业生", student(1))
    sync(engine)
    userid = member_of(engine, leaver).userid
    change_record(engine, "student", "1120230001", status="graduated")
    wecom_api.reset_calls()

    now = utcnow()
    sync(engine, now=now)  # the grace period starts; no call
    assert wecom_api.calls == [] and member_of(engine, leaver).inactive_since is not None
    sync(engine, now=now + timedelta(days=29))
    assert wecom_api.calls == [] and wecom_api.member(userid)["enable"] == 1  # type: ignore[index]
    sync(engine, now=now + timedelta(days=31))
    assert apis(wecom_api) == ["user/update"]  # the token cached in the database still serves
    member = wecom_api.member(userid)
    assert member is not None and member["enable"] == 0 and member["status"] == 2  # disabled, still there
    assert "user/delete" not in apis(wecom_api) and not member_of(engine, leaver).enabled

    change_record(engine, "student", "1120230001", status="active")  # back (a second degree, say)
    sync(engine, now=now + timedelta(days=40))
    assert wecom_api.member(userid)["enable"] == 1  # type: ignore[index]
    recorded = member_of(engine, leaver)
    assert recorded.enabled and recorded.inactive_since is None


def test_a_leaver_back_within_the_grace_period_costs_nothing(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    person = campus_person(engine, "休学生", student(2))
    sync(engine)
    change_record(engine, "student", "1120230002", status="withdrawn")
    sync(engine)
    change_record(engine, "student", "1120230002", status="active")
    wecom_api.reset_calls()
    sync(engine)
    assert wecom_api.calls == [] and member_of(engine, person).inactive_since is None


def test_people_without_any_usable_contact_are_skipped(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    campus_person(engine, "无联系", Role("student", "1120230077", phone="+861062782114"))  # a fixed line only
    campus_person(engine, "有邮箱", Role("student", "1120230078", email="only@stu.example.edu.cn"))
    result = CliRunner().invoke(app, ["wecom", "plan"])
    assert "people without a member yet: 1 (no usable mobile or email 1)" in result.output
    sync(engine)
    assert apis(wecom_api).count("user/create") == 1
