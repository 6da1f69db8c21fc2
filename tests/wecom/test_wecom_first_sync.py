"""A first sync in ten calls or fewer: the department tree by batch/replaceparty, members by batch/syncuser —
and replaceparty only where it cannot touch a department the broker did not put there."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import POLICIES_DIR
from plugins.wecom import Role, bulk_people, campus_person, sync, use_policy
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from standins.wecom_api import WeComStandIn
from typer.testing import CliRunner

from idbroker.cli.main import app
from idbroker.wecom.policy import load_wecom_policy
from idbroker.wecom.state import WeComBatch, WeComDepartment, WeComMember

POLICY = load_wecom_policy(POLICIES_DIR)


def apis(standin: WeComStandIn) -> Counter[str]:
    return Counter(call.api for call in standin.calls)


def corp_tree(standin: WeComStandIn) -> dict[int, tuple[str, int]]:
    with standin.lock:
        return {d["id"]: (d["name"], d["parentid"]) for d in standin.departments.values() if d["id"] != 1}


def policy_tree() -> dict[int, tuple[str, int]]:
    return {d.id: (d.name, d.parent) for d in POLICY.departments}


def student(n: int) -> Role:
    return Role("student", f"11202500{n:02d}", phone=f"+8613500{n:06d}")


def test_a_large_first_sync_takes_at_most_ten_calls(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    people = 2500  # more than the policy's batch_threshold (1000): a first sync of a whole campus
    bulk_people(engine, people)
    report = sync(engine)

    called = [call.api for call in wecom_api.calls]
    assert len(called) <= 10, called
    polls_collapsed = [api for i, api in enumerate(called) if api != "batch/getresult" or called[i - 1] != api]
    assert polls_collapsed == [
        "gettoken",
        "department/simplelist",
        "media/upload",
        "batch/replaceparty",
        "batch/getresult",
        "media/upload",
        "batch/syncuser",
        "batch/getresult",
    ]
    assert all(call.errcode == 0 for call in wecom_api.calls)
    assert corp_tree(wecom_api) == policy_tree()  # the whole tree, nothing else
    party_job, member_job = sorted(wecom_api.jobs.values(), key=lambda job: job.submitted_at)
    assert party_job.type == "replace_party" and member_job.type == "sync_user"
    assert party_job.finished_at is not None and party_job.finished_at < member_job.submitted_at  # departments first
    assert {item["errcode"] for item in member_job.result} == {0} and len(wecom_api.members) == people
    in_corp = {d for m in wecom_api.members.values() for d in m["department"]}
    assert in_corp <= set(policy_tree()) and {3, 101, 114} <= in_corp
    assert report.counts["departments"] == 20 and report.counts["created"] == people
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(WeComMember).where(WeComMember.in_corp)) == people
        assert all(session.scalars(select(WeComDepartment.in_corp)))  # type: ignore[call-overload]
        assert set(session.scalars(select(WeComBatch.state))) == {"done"}  # type: ignore[call-overload]

    wecom_api.reset_calls()
    assert sync(engine).total_calls == 0 and wecom_api.calls == []


@pytest.mark.parametrize("held", ["a department of its own", "departments of ours"])
def test_replaceparty_only_where_it_cannot_touch_what_the_broker_did_not_put_there(
    engine: Engine,
    wecom_settings: object,
    wecom_api: WeComStandIn,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
    held: str,
) -> None:
    use_policy(monkeypatch, tmp_path, batch_threshold=5)
    with wecom_api.lock:
        if held == "a department of its own":  # made by hand in the admin console, empty: replaceparty deletes it
            wecom_api._create_department({"id": 900, "name": "招生办", "parentid": 1})
        else:  # the policy's own ids — e.g. a first sync whose replaceparty job was never recorded
            wecom_api._create_department({"id": 2, "name": "学生", "parentid": 1})
            wecom_api._create_department({"id": 101, "name": "计算机系", "parentid": 2})  # renamed by hand
    for n in range(6):
        campus_person(engine, f"学生{n}", student(n))
    sync(engine)

    called = apis(wecom_api)
    tree = corp_tree(wecom_api)
    if held == "a department of its own":
        assert called["batch/replaceparty"] == 0  # a corp holding other departments never gets it
        assert called["department/create"] == 20
        assert tree == {**policy_tree(), 900: ("招生办", 1)}  # left alone
    else:
        assert called["batch/replaceparty"] == 1 and called["department/create"] == 0
        assert tree == policy_tree()  # ours, as the policy has them (the one-by-one calls would update it too)
    assert called["batch/syncuser"] == 1 and len(wecom_api.members) == 6


def test_departments_added_after_a_first_sync_go_one_by_one(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    campus_person(engine, "学生0", student(0))
    sync(engine)
    assert apis(wecom_api)["batch/replaceparty"] == 1
    wecom_api.reset_calls()

    more = [d.model_dump() for d in POLICY.departments] + [
        {"id": 201 + n, "name": f"研究院{n}", "parent": 1, "order": 0} for n in range(5)
    ]
    use_policy(monkeypatch, tmp_path, departments=more)
    result = CliRunner().invoke(app, ["wecom", "plan"])
    assert "departments to create or update: 5\n" in result.output  # no batch: the broker has pushed some
    sync(engine)
    called = apis(wecom_api)
    assert called["batch/replaceparty"] == 0 and called["department/create"] == 5
    assert {201, 205} <= set(corp_tree(wecom_api))


def test_plan_shows_the_department_batch_without_calling(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    campus_person(engine, "学生1", student(1))
    result = CliRunner().invoke(app, ["wecom", "plan"])
    assert result.exit_code == 0, result.output
    assert (
        "departments to create or update: 20 (by batch: media/upload + batch/replaceparty, "
        "if the corp holds no other department; else one by one)" in result.output
    )
    assert "WeChat Work calls needed: about 4" in result.output  # 3 for the departments, 1 user/create
    assert wecom_api.calls == []


def test_the_corp_applies_replaceparty_as_documented(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    """path/90982 and 90983, as the demo corp and the stand-in implement them (one implementation)."""
    import time

    from idbroker.config import get_settings
    from idbroker.wecom.client import WeComClient
    from idbroker.wecom.errors import WeComError

    with wecom_api.lock:
        wecom_api._create_department({"id": 300, "name": "旧名", "parentid": 1, "order": 5})
        wecom_api._create_department({"id": 900, "name": "空部门", "parentid": 1})  # absent from the file, empty
        wecom_api._create_department({"id": 901, "name": "有人", "parentid": 1})  # absent, but holds a member
        wecom_api._create_member({"userid": "zhangsan", "name": "张三", "department": [901], "email": "z@example.cn"})
    rows = [
        "部门名称,部门ID,父部门ID,排序",
        "学生,2,1,1",
        "计算机学院,101,2,",  # parent listed in the same file, before or after
        "新名,300,2,",  # renamed and moved; an empty 排序 keeps the order
        "无父,400,777,0",  # a parent nobody has
        "坏:名,401,1,0",
        "无号,abc,1,0",
    ]
    with WeComClient(get_settings(), engine) as client:
        with pytest.raises(WeComError) as refused:  # the required columns are checked when the job is submitted
            client.replace_departments(client.upload_file("d.csv", "名称,ID\n学生,2\n".encode()))
        assert refused.value.errcode == 40058
        jobid = client.replace_departments(client.upload_file("d.csv", "\n".join(rows).encode()))
        for _ in range(50):
            answer = client.batch_result(jobid)
            if answer["status"] == 3:
                break
            time.sleep(0.1)
    assert answer["type"] == "replace_party" and answer["total"] == 6
    outcome = {item["partyid"]: (item["action"], item["errcode"]) for item in answer["result"]}
    assert outcome == {2: (1, 0), 101: (1, 0), 300: (2 | 4, 0), 400: (0, 60003), 401: (0, 40058), 0: (0, 40058)}
    tree = {d["id"]: (d["name"], d["parentid"], d["order"]) for d in wecom_api.departments.values()}
    assert tree == {
        1: ("校园", 0, 0),
        2: ("学生", 1, 1),
        101: ("计算机学院", 2, 0),
        300: ("新名", 2, 5),
        901: ("有人", 1, 0),  # kept while it holds a member; the empty 900 is gone
    }
