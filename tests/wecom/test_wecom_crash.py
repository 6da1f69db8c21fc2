"""A sync killed halfway — a real `idbroker wecom sync` process, SIGKILLed — resumes without duplicating or
losing a change, one by one, through a batch job of members and through the departments' replaceparty job."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from plugins.wecom import Role, campus_person, member_of, subprocess_environment, sync, use_policy
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from standins.wecom_api import WeComStandIn

from idbroker.wecom.state import WeComBatch, WeComDepartment, WeComMember


def start_sync(engine: Engine, standin: WeComStandIn) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "idbroker.cli.main", "wecom", "sync"],
        env=subprocess_environment(engine, standin.base_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def kill_when(process: subprocess.Popen[bytes], ready: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if process.poll() is not None:
            raise AssertionError(f"the sync ended before it could be killed: {process.stdout.read().decode()}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise AssertionError("the sync never got halfway")
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def recorded_in_corp(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(WeComMember).where(WeComMember.in_corp)) or 0)


def test_a_sync_killed_halfway_resumes_without_duplicates_or_losses(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    use_policy(monkeypatch, tmp_path, batch_threshold=1000)
    monkeypatch.setenv("IDBROKER_WECOM_CONCURRENCY", "2")
    wecom_api.latency = 0.03
    people = [
        campus_person(engine, f"学生{n}", Role("student", f"11202200{n:02d}", phone=f"+8613600{n:06d}"))
        for n in range(60)
    ]
    process = start_sync(engine, wecom_api)
    kill_when(process, lambda: recorded_in_corp(engine) >= 20)
    halfway = recorded_in_corp(engine)
    assert 20 <= halfway < 60 and len(wecom_api.members) < 60  # really killed halfway

    report = sync(engine)  # resume (the next `idbroker wecom sync`)
    assert report.counts["created"] + report.counts["adopted"] == 60 - halfway

    created = Counter(c.userid for c in wecom_api.calls if c.api == "user/create" and c.errcode == 0)
    assert len(created) == 60 and set(created.values()) == {1}  # every member created exactly once
    assert len(wecom_api.members) == 60
    for person in people:
        member = wecom_api.member(member_of(engine, person).userid)
        assert member is not None and member["department"] == [101] and member["mobile"].startswith("+86 136")
    assert sync(engine).total_calls == 0  # nothing lost, nothing left to do


def test_a_sync_killed_while_its_batch_job_runs_waits_for_that_job(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    use_policy(monkeypatch, tmp_path, batch_threshold=5)
    sync(engine)  # the departments (by their own job), before anyone is in the directory
    wecom_api.batch_delay = 3.0
    for n in range(8):
        campus_person(engine, f"学生{n}", Role("student", f"11202201{n:02d}", phone=f"+8613601{n:06d}"))
    process = start_sync(engine, wecom_api)

    def submitted() -> bool:  # the members' job
        with Session(engine) as session:
            return session.scalar(select(func.count()).select_from(WeComBatch).where(WeComBatch.members > 0)) == 1

    kill_when(process, submitted)
    assert len(wecom_api.members) == 0  # the job had not finished

    report = sync(engine)
    assert report.counts["created"] == 8
    assert wecom_api.count("batch/syncuser") == wecom_api.count("batch/replaceparty") == 1  # never submitted again
    assert len(wecom_api.members) == 8 and recorded_in_corp(engine) == 8
    with Session(engine) as session:
        assert session.scalars(select(WeComBatch.state)).all() == ["done", "done"]  # type: ignore[call-overload]


def test_a_sync_killed_while_its_department_job_runs_waits_for_it_before_any_member(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    use_policy(monkeypatch, tmp_path, batch_threshold=5)
    wecom_api.batch_delay = 2.0
    for n in range(8):
        campus_person(engine, f"学生{n}", Role("student", f"11202202{n:02d}", phone=f"+8613602{n:06d}"))
    process = start_sync(engine, wecom_api)

    def submitted() -> bool:
        with Session(engine) as session:
            return session.scalar(select(func.count()).select_from(WeComBatch)) == 1

    kill_when(process, submitted)
    assert len(wecom_api.departments) == 1 and wecom_api.count("batch/replaceparty") == 1  # only the root yet
    with Session(engine) as session:
        assert not any(session.scalars(select(WeComDepartment.in_corp)))  # type: ignore[call-overload]

    wecom_api.batch_delay = 0.3  # (the killed sync's job keeps its own)
    report = sync(engine)  # resumes: waits for the department job, then the members
    assert wecom_api.count("batch/replaceparty") == 1 and wecom_api.count("department/create") == 0
    assert report.counts["departments"] == 20 and report.counts["created"] == 8
    assert len(wecom_api.departments) == 21 and len(wecom_api.members) == 8
    syncuser = next(job for job in wecom_api.jobs.values() if job.type == "sync_user")
    party = next(job for job in wecom_api.jobs.values() if job.type == "replace_party")
    assert party.finished_at is not None and party.finished_at < syncuser.submitted_at
    with Session(engine) as session:
        assert all(session.scalars(select(WeComDepartment.in_corp)))  # type: ignore[call-overload]
        assert session.scalars(select(WeComBatch.state)).all() == ["done", "done"]  # type: ignore[call-overload]
    assert sync(engine).total_calls == 0
