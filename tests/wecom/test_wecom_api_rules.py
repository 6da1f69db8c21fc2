"""The API's rules handled where they arise: tokens shared and refreshed once, limits, busy, 60102/60104/60111."""

from __future__ import annotations

import threading
import time

import pytest
from plugins.wecom import Role, campus_person, change_record, member_of, set_env, sync, use_policy
from sqlalchemy import Engine, select
from sqlmodel import Session
from standins.wecom_api import WeComStandIn

from idbroker.config import get_settings
from idbroker.wecom.client import WeComClient
from idbroker.wecom.errors import WeComError
from idbroker.wecom.state import WeComConflict
from idbroker.wecom.token_cache import WeComToken
from idbroker.wecom.userid import userid_for


def student(n: int, phone: str | None = None) -> Role:
    return Role("student", f"11202400{n:02d}", phone=phone or f"+8613800{n:06d}", email=f"p{n}@stu.example.edu.cn")


def stranger(standin: WeComStandIn, **fields: object) -> None:
    """A member someone created by hand in the admin console."""
    with standin.lock:
        standin._create_member({"userid": "zhangsan", "name": "张三", "department": [1], **fields})


# --- tokens ---------------------------------------------------------------------------------------------


def test_workers_share_one_token_fetched_once(engine: Engine, wecom_settings: object, wecom_api: WeComStandIn) -> None:
    clients = [WeComClient(get_settings(), engine) for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def work(client: WeComClient) -> None:
        try:
            barrier.wait()
            client.department_ids()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert wecom_api.count("gettoken") == 1 and wecom_api.count("department/simplelist") == 6
    with Session(engine) as session:
        row = session.scalars(select(WeComToken)).one()
        tokens = list(wecom_api.tokens)
        assert row.fetches == 1 and row.token_cipher and tokens[0] not in row.token_cipher  # stored encrypted
    for client in clients:
        client.close()


def test_a_revoked_or_expired_token_is_fetched_again_once(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    with WeComClient(get_settings(), engine) as client:
        client.department_ids()
        wecom_api.revoke_tokens()  # 40014 on the next call
        client.department_ids()
        assert wecom_api.count("gettoken") == 2 and wecom_api.count(errcode=40014) == 1
        wecom_api.fail_next("department/simplelist", 42001)
        client.department_ids()
        assert wecom_api.count("gettoken") == 3
        wecom_api.fail_next("department/simplelist", 40014, times=2)  # refused again: once is enough
        with pytest.raises(WeComError) as refused:
            client.department_ids()
        assert refused.value.errcode == 40014 and wecom_api.count("gettoken") == 4
    wecom_api.token_ttl = 2  # a short-lived token is refreshed before it runs out, not after a refusal
    with WeComClient(get_settings(), engine) as client:
        wecom_api.revoke_tokens()
        client.department_ids()
        time.sleep(2.1)
        before = wecom_api.count(errcode=42001)
        client.department_ids()
        assert wecom_api.count(errcode=42001) == before


def test_a_bad_secret_is_a_clear_error(engine: Engine, wecom_settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, wecom_contacts_secret="wrong")
    with WeComClient(get_settings(), engine) as client, pytest.raises(WeComError, match="40001"):
        client.department_ids()


# --- limits and busy --------------------------------------------------------------------------------------


def test_a_rate_limited_run_backs_off_until_the_window_passes(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    wecom_api.rate_limit, wecom_api.rate_window = 10, 1.0  # per API per second; the client waits 1 s on 45009
    people = [campus_person(engine, f"学生{n}", student(n)) for n in range(25)]
    report = sync(engine)

    assert report.counts["created"] == 25 and not report.failures
    assert all(wecom_api.member(member_of(engine, p).userid) for p in people)
    creates = [c for c in wecom_api.calls if c.api == "user/create"]
    limited = [c for c in creates if c.errcode == 45009]
    assert limited, "the stand-in should have limited this run"
    assert len(limited) <= 3 * 8  # a pause, not a hammering: at most the calls already in flight
    for refusal in limited:
        later = [c.at for c in creates if c.at > refusal.at and c.errcode == 0]
        assert not later or min(later) >= refusal.at + 0.9  # nothing got through before the window passed


def test_concurrency_stays_under_the_cap_and_45033_is_retried(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    wecom_api.latency, wecom_api.concurrency_cap = 0.05, 3
    for n in range(12):
        campus_person(engine, f"学生{n}", student(n))
    set_env(monkeypatch, wecom_concurrency=3)
    sync(engine)
    assert wecom_api.peak_in_flight <= 3 and wecom_api.count(errcode=45033) == 0
    assert wecom_api.count("user/create") == 12

    for n in range(12):
        change_record(engine, "student", f"11202400{n:02d}", name=f"同学{n}")
    set_env(monkeypatch, wecom_concurrency=8)  # above the corp's cap: refused calls wait and come back
    report = sync(engine)
    assert wecom_api.count(errcode=45033) > 0 and report.counts["updated"] == 12 and not report.failures


def test_busy_is_retried_and_a_persistent_failure_waits_for_the_next_sync(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    person = campus_person(engine, "学生", student(1))
    wecom_api.fail_next("user/create", -1, times=2)
    assert sync(engine).counts["created"] == 1
    assert wecom_api.count("user/create") == 3

    change_record(engine, "student", "1120240001", name="学生甲")
    wecom_api.fail_next("user/update", -1, times=4)
    report = sync(engine)
    assert report.failures == [f"{member_of(engine, person).userid}: user/update -1"]
    assert member_of(engine, person).name == "学生"  # not recorded: not done
    assert (
        sync(engine).counts["updated"] == 1 and wecom_api.member(member_of(engine, person).userid)["name"] == "学生甲"
    )  # type: ignore[index]


# --- member rules ------------------------------------------------------------------------------------------


def test_a_mobile_another_member_holds_is_reported_not_forced(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    stranger(wecom_api, mobile="+86 13800000001")
    person = campus_person(engine, "学生", student(1))
    report = sync(engine)
    userid = member_of(engine, person).userid
    created = wecom_api.member(userid)
    assert created is not None and created["mobile"] == "" and created["email"] == "p1@stu.example.edu.cn"
    assert wecom_api.member("zhangsan")["mobile"] == "+86 13800000001"  # type: ignore[index]  # untouched
    assert report.counts["conflict_mobile"] == 1
    with Session(engine) as session:
        conflict = session.scalars(select(WeComConflict)).one()
        assert (conflict.userid, conflict.field, conflict.reason, conflict.person_id) == (
            userid,
            "mobile",
            "taken",
            person,
        )

    wecom_api.reset_calls()
    assert sync(engine).total_calls == 0  # the same value is not pushed again and again

    change_record(engine, "student", "1120240001", phone="+8613800000099")  # the person's mobile changed
    sync(engine)
    assert wecom_api.member(userid)["mobile"] == "+86 13800000099"  # type: ignore[index]
    with Session(engine) as session:
        assert session.scalars(select(WeComConflict)).all() == []


def test_a_taken_mobile_freed_later_in_the_run_is_not_a_conflict(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    old = campus_person(engine, "甲", student(1))
    new = campus_person(engine, "乙", student(2))
    sync(engine)
    change_record(engine, "student", "1120240001", phone="+8613800000077")  # 甲 lets go of the number …
    change_record(engine, "student", "1120240002", phone="+8613800000001")  # … that 乙 takes in the same run
    report = sync(engine)
    assert report.counts["updated"] == 2 and not report.counts["conflict_mobile"]
    assert wecom_api.member(member_of(engine, new).userid)["mobile"] == "+86 13800000001"  # type: ignore[index]
    assert wecom_api.member(member_of(engine, old).userid)["mobile"] == "+86 13800000077"  # type: ignore[index]


def test_an_existing_member_is_adopted_only_when_it_is_the_same_person(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    same = campus_person(engine, "学生", student(1))
    other = campus_person(engine, "学生乙", student(2))
    key = get_settings().key("national_id_hash_key")  # the userids the plan will use
    same_id, other_id = userid_for(key, same), userid_for(key, other)
    with wecom_api.lock:  # an earlier run created this one (its answer was lost) …
        wecom_api._create_member({"userid": same_id, "name": "学生", "department": [1], "email": "x@example.edu.cn"})
        # … and someone took this userid for a different person
        wecom_api._create_member({"userid": other_id, "name": "王五", "department": [1], "email": "w5@example.edu.cn"})
    report = sync(engine)

    assert report.counts["adopted"] == 1 and report.counts["conflict_userid"] == 1
    adopted = wecom_api.member(same_id)
    assert adopted is not None and adopted["department"] == [101] and adopted["email"] == "p1@stu.example.edu.cn"
    assert wecom_api.member(other_id)["name"] == "王五"  # type: ignore[index]  # never taken over
    assert member_of(engine, same).in_corp and not member_of(engine, other).in_corp
    assert len(wecom_api.members) == 2  # no duplicate member for either person


def test_a_member_that_vanished_is_created_again(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    person = campus_person(engine, "学生", student(1))
    sync(engine)
    userid = member_of(engine, person).userid
    with wecom_api.lock:
        wecom_api.api_user_delete({"userid": userid}, None, None, 0)  # deleted in the admin console
    change_record(engine, "student", "1120240001", name="学生丙")
    report = sync(engine)
    assert report.counts["created"] == 1 and wecom_api.member(userid)["name"] == "学生丙"  # type: ignore[index]
    assert [c.errcode for c in wecom_api.calls if c.api.startswith("user/")][-2:] == [60111, 0]


def test_a_first_sync_through_batch_reports_conflicts_and_creates_the_rest_one_by_one(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    use_policy(monkeypatch, tmp_path, batch_threshold=3)
    stranger(wecom_api, mobile="+86 13800000002")
    people = [campus_person(engine, f"学生{n}", student(n)) for n in range(4)]
    report = sync(engine)
    assert report.counts["created"] == 4 and report.counts["batch_failed"] == 1
    taken = wecom_api.member(member_of(engine, people[2]).userid)
    assert taken is not None and taken["mobile"] == "" and taken["email"] == "p2@stu.example.edu.cn"
    with Session(engine) as session:
        assert [(c.field, c.reason) for c in session.scalars(select(WeComConflict))] == [("mobile", "taken")]
