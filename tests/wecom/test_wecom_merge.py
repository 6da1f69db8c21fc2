"""Done when: a student who follows as an undergraduate keeps the same member, still followed, after their
master's number is merged in — whether the linker joins the new number at import or two people are merged;
an un-merge restores both members."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from factories import STUDENT_HEADER, national_id, student, write_csv
from fastapi.testclient import TestClient
from plugins.wecom import Role, campus_person, change_record, deliver, member_of, run_worker, subscribe_xml, sync
from sqlalchemy import Engine, select
from sqlmodel import Session
from standins.wecom_api import WeComStandIn
from typer.testing import CliRunner

from idbroker.cli.main import app
from idbroker.config import get_settings
from idbroker.directory.queries import people_by_number
from idbroker.linking.merge import merge_people, unmerge
from idbroker.web.app import create_app
from idbroker.wecom.state import WeComMember

NID = national_id(date(2002, 3, 4), 21)
UNDERGRAD = student("1120201234", "张帅", "男", "2002-03-04", NID, "本科", "2020", "13812345678", college="数学学院")


def follow(engine: Engine, standin: WeComStandIn, userid: str) -> None:
    """The student follows: the member activates in WeChat Work, which tells the broker by a callback."""
    standin.follow(userid)
    with TestClient(create_app(get_settings())) as client:
        assert deliver(client, subscribe_xml(userid)).status_code == 200
    run_worker(engine)


def enabled_members(standin: WeComStandIn) -> list[dict[str, object]]:
    with standin.lock:
        return [dict(m) for m in standin.members.values() if m["enable"]]


def test_the_master_number_joined_at_import_keeps_the_undergraduate_member_followed(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, tmp_path: Path
) -> None:
    runner = CliRunner()
    first = write_csv(tmp_path / "s1.csv", STUDENT_HEADER, [UNDERGRAD])
    assert runner.invoke(app, ["import", "student", str(first)]).exit_code == 0
    sync(engine)
    with Session(engine) as session:
        person = people_by_number(session, "1120201234")[0].id
    userid = member_of(engine, person).userid
    follow(engine, wecom_api, userid)

    graduated = [*UNDERGRAD[:-1], "毕业"]
    master = student("2120243257", "张帅", "男", "2002-03-04", NID, "硕士", "2024", "13912345678", college="计算机学院")
    second = write_csv(tmp_path / "s2.csv", STUDENT_HEADER, [graduated, master])
    result = runner.invoke(app, ["import", "student", str(second)])
    assert result.exit_code == 0, result.output
    wecom_api.reset_calls()
    sync(engine)

    with Session(engine) as session:
        assert {p.id for p in people_by_number(session, "2120243257")} == {person}
        assert session.scalars(select(WeComMember.userid)).all() == [userid]  # type: ignore[call-overload]
    assert [c.api for c in wecom_api.calls] == ["user/update"]  # the same member, updated; no create
    member = wecom_api.member(userid)
    assert member is not None and member["enable"] == 1 and member["department"] == [101]  # now 计算机学院
    assert member_of(engine, person).followed


@pytest.mark.parametrize("survivor", ["undergraduate", "master"])
def test_merging_two_people_keeps_the_followed_member_and_unmerge_restores_both(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, survivor: str
) -> None:
    undergrad = campus_person(engine, "张帅", Role("student", "1120201234", org="数学学院", phone="+8613812345678"))
    master = campus_person(engine, "张帅", Role("student", "2120243257", phone="+8613912345678"))
    sync(engine)
    kept, retired = member_of(engine, undergrad).userid, member_of(engine, master).userid
    follow(engine, wecom_api, kept)
    change_record(engine, "student", "1120201234", status="graduated")  # the bachelor's degree is done

    with Session(engine) as session:
        pair = (undergrad, master) if survivor == "undergraduate" else (master, undergrad)
        operation = merge_people(session, *pair, actor="helpdesk:li", reason="same person, ticket 42").id
        session.commit()
    report = sync(engine)

    assert report.counts["retired"] == 1
    assert [m["userid"] for m in enabled_members(wecom_api)] == [kept]  # one member for the one person
    assert wecom_api.member(kept)["department"] == [101]  # type: ignore[index]  # the master's 学院
    assert wecom_api.member(kept)["status"] == 1  # type: ignore[index]  # activated, never touched
    gone = wecom_api.member(retired)
    assert (
        gone is not None and gone["enable"] == 0 and gone["mobile"] == "" and gone["email"] == ""
    )  # retired, not deleted
    assert member_of(engine, undergrad).followed and member_of(engine, master).retired
    wecom_api.reset_calls()
    assert sync(engine).total_calls == 0  # settled: the choice does not flip back and forth

    with Session(engine) as session:
        unmerge(session, operation, actor="helpdesk:li", reason="two people after all")
        session.commit()
    sync(engine)
    change_record(engine, "student", "1120201234", status="active")  # (their own record, active again)
    sync(engine)
    restored = {m["userid"]: m for m in enabled_members(wecom_api)}
    assert set(restored) == {kept, retired}
    assert restored[kept]["department"] == [102] and restored[kept]["mobile"] == "+86 13812345678"
    assert restored[retired]["department"] == [101] and restored[retired]["mobile"] == "+86 13912345678"
    assert member_of(engine, undergrad).followed and not member_of(engine, master).retired


def test_sync_changed_follows_the_directory_events(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    runner = CliRunner()
    first = campus_person(engine, "甲", Role("student", "1120201001", phone="+8613812340001"))
    second = campus_person(engine, "乙", Role("student", "1120201002", phone="+8613812340002"))
    assert "created 2" in runner.invoke(app, ["wecom", "sync", "--changed"]).output  # no cursor yet: everyone
    with Session(engine) as session:
        operation = merge_people(session, first, second, actor="helpdesk:li", reason="one person").id
        session.commit()
    assert "members to retire (merged people): 1" in runner.invoke(app, ["wecom", "plan", "--changed"]).output
    wecom_api.reset_calls()
    result = runner.invoke(app, ["wecom", "sync", "--changed"])
    assert result.exit_code == 0 and "retired 1" in result.output
    assert [c.api for c in wecom_api.calls] == ["user/update", "user/update"]  # retire 乙's, update 甲's (mobile)
    assert "nothing to change" in runner.invoke(app, ["wecom", "sync", "--changed"]).output  # the cursor moved on
    with Session(engine) as session:
        unmerge(session, operation, actor="helpdesk:li", reason="two people")
        session.commit()
    assert "updated 2" in runner.invoke(app, ["wecom", "sync", "--changed"]).output  # 乙 back, 甲 its own mobile again
    assert wecom_api.member(member_of(engine, second).userid)["enable"] == 1  # type: ignore[index]
