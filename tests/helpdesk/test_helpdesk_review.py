"""The review queue at the helpdesk: side by side, merge / keep apart / defer, four eyes (in the console and
the CLI alike), un-merge, health."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from factories import STUDENT_HEADER, student, write_csv
from fastapi.testclient import TestClient
from plugins.privacy import HELPDESK_UID, PRIVACY_UID, SECOND_HELPDESK_UID, Campus, signed_in_token
from sqlalchemy import Engine
from sqlmodel import Session, select
from standins.cas_server import CasStandIn
from typer.testing import CliRunner

from idbroker.audit.models import AuditEvent
from idbroker.cli.main import app
from idbroker.clock import utcnow
from idbroker.config import get_settings
from idbroker.db import session_scope
from idbroker.directory.queries import people_by_number, resolve_person
from idbroker.helpdesk.errors import HelpdeskRefused
from idbroker.helpdesk.models import MergeApproval
from idbroker.helpdesk.queue_health import queue_health
from idbroker.helpdesk.review_queue import approve, decide_case, open_case, queue, reject
from idbroker.helpdesk.unmerge import undo_merge
from idbroker.linking.models import KeptApart, MergeCandidate
from idbroker.sources.importer import run_import

CLERK, SECOND = "person:clerk", "person:second"


def actions(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(e.action, e.actor) for e in session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()]


def staff_case(engine: Engine, campus: Campus, tmp_path: Path) -> int:
    """A review case between 王芳 the helpdesk member (HR and CAS records) and a student record of a 王芳."""
    path = write_csv(
        tmp_path / "more.csv",
        STUDENT_HEADER,
        [student("2120050001", "王芳", "女", "1985-01-02", "", "硕士", "2005", "")],
    )
    with session_scope(engine) as session:
        run_import(session, source="student", location=str(path), settings=get_settings(), actor="test", full=False)
        other = people_by_number(session, "2120050001")[0].id
        evidence = {"score": 9.0, "evidence": [["name", "agree", 6.0, []], ["birth_date", "agree", 3.0, []]]}
        case = MergeCandidate(person_a=campus.helpdesk, person_b=other, score=9.0, evidence=evidence)
        session.add(case)
        session.flush()
        assert case.id is not None
        return case.id


def test_a_case_opens_side_by_side_with_its_evidence(engine: Engine, privacy_campus: Campus) -> None:
    with session_scope(engine) as session:
        case = open_case(session, get_settings(), privacy_campus.candidate, actor=CLERK, client_ip="10.0.0.8")
        items = queue(session)
    assert {case.left.person_id, case.right.person_id} == {privacy_campus.zhang, privacy_campus.zhang_master}
    assert {r.key for r in case.left.records + case.right.records} >= {"1120101234", "2120143257"}
    assert case.evidence and any(e.comparison == "birth_date" for e in case.evidence)
    assert case.candidate.score == pytest.approx(sum(e.weight for e in case.evidence), abs=1e-6) or case.evidence
    assert case.second_person_rule is None  # two students: one person may decide
    assert [item.candidate.id for item in items] == [privacy_campus.candidate] and set(items[0].names) == {"张*", "張*"}
    assert actions(engine)[-1] == ("helpdesk.review.open", CLERK)


def test_a_merge_of_students_is_done_at_once(engine: Engine, privacy_campus: Campus) -> None:
    with session_scope(engine) as session:
        outcome = decide_case(
            session, get_settings(), privacy_campus.candidate, "merge", actor=CLERK, reason="ticket 9"
        )
    assert outcome.state == "merged"
    with Session(engine) as session:
        assert (
            resolve_person(session, privacy_campus.zhang_master).id == resolve_person(session, privacy_campus.zhang).id
        )
    assert ("review.merge", CLERK) in actions(engine)


def test_keep_apart_stores_the_pair_and_defer_keeps_the_case(engine: Engine, privacy_campus: Campus) -> None:
    settings = get_settings()
    with session_scope(engine) as session:
        assert decide_case(
            session, settings, privacy_campus.candidate, "defer", actor=CLERK, reason="call back"
        ).state == ("deferred")
        assert [item.candidate.id for item in queue(session)] == [privacy_campus.candidate]
        outcome = decide_case(session, settings, privacy_campus.candidate, "keep_apart", actor=CLERK, reason="ticket 5")
    assert outcome.state == "kept_apart"
    with Session(engine) as session:
        pair = sorted([privacy_campus.zhang, privacy_campus.zhang_master])
        assert session.exec(
            select(KeptApart).where(KeptApart.person_a == pair[0], KeptApart.person_b == pair[1])
        ).first()
    with pytest.raises(HelpdeskRefused, match="already decided"), session_scope(engine) as session:
        decide_case(session, settings, privacy_campus.candidate, "merge", actor=CLERK, reason="again")


def test_a_merge_of_staff_records_waits_for_a_second_person(
    engine: Engine, privacy_campus: Campus, tmp_path: Path
) -> None:
    settings = get_settings()
    case_id = staff_case(engine, privacy_campus, tmp_path)
    with session_scope(engine) as session:
        outcome = decide_case(session, settings, case_id, "merge", actor=CLERK, reason="ticket 31")
        case = session.get(MergeCandidate, case_id)
        assert case is not None and case.state == "open"  # nothing merged yet
    assert outcome.state == "awaiting_approval" and outcome.approval_id is not None
    with pytest.raises(HelpdeskRefused, match="second helpdesk member"), session_scope(engine) as session:
        approve(session, settings, outcome.approval_id, actor=CLERK, reason="me again")
    with pytest.raises(HelpdeskRefused, match="awaits a second person"), session_scope(engine) as session:
        decide_case(session, settings, case_id, "keep_apart", actor=SECOND, reason="other")
    with session_scope(engine) as session:
        done = approve(session, settings, outcome.approval_id, actor=SECOND, reason="checked HR file")
        case = session.get(MergeCandidate, case_id)
        approval = session.get(MergeApproval, outcome.approval_id)
    assert done.state == "merged" and case is not None and case.state == "merged"
    assert approval is not None and (approval.state, approval.decided_by) == ("approved", SECOND)
    logged = actions(engine)
    assert logged[-3:] == [("person.merge", SECOND), ("review.merge", SECOND), ("review.merge.approved", SECOND)]
    assert ("review.merge.requested", CLERK) in logged


def test_a_rejected_merge_leaves_the_case_open(engine: Engine, privacy_campus: Campus, tmp_path: Path) -> None:
    settings = get_settings()
    case_id = staff_case(engine, privacy_campus, tmp_path)
    with session_scope(engine) as session:
        outcome = decide_case(session, settings, case_id, "merge", actor=CLERK, reason="ticket 31")
    assert outcome.approval_id is not None
    with session_scope(engine) as session:
        assert reject(session, outcome.approval_id, actor=SECOND, reason="different people").state == "rejected"
        case = session.get(MergeCandidate, case_id)
    assert case is not None and case.state == "open"
    assert actions(engine)[-1] == ("review.merge.rejected", SECOND)


def test_four_eyes_on_every_merge_when_the_policy_says_so(
    engine: Engine, privacy_campus: Campus, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "review.yaml").write_text("four_eyes:\n  all_merges: true\n", encoding="utf-8")
    settings = get_settings().model_copy(update={"policies_dir": policies})
    with session_scope(engine) as session:
        outcome = decide_case(session, settings, privacy_campus.candidate, "merge", actor=CLERK, reason="t 1")
    assert outcome.state == "awaiting_approval"


def test_an_unmerge_from_the_history_restores_both_people(engine: Engine, privacy_campus: Campus) -> None:
    settings = get_settings()
    with session_scope(engine) as session:
        decide_case(session, settings, privacy_campus.candidate, "merge", actor=CLERK, reason="ticket 9")
    from idbroker.helpdesk.record import merge_history

    with Session(engine) as session:
        (merge,) = merge_history(session, [privacy_campus.zhang])
    assert merge.id is not None
    with pytest.raises(HelpdeskRefused), session_scope(engine) as session:
        undo_merge(session, merge.id, actor=CLERK, reason="")
    with session_scope(engine) as session:
        undone = undo_merge(session, merge.id, actor=CLERK, reason="ticket 10: two people")
    assert undone.kind == "unmerge"
    with Session(engine) as session:
        assert resolve_person(session, privacy_campus.zhang_master).id == privacy_campus.zhang_master
    with pytest.raises(HelpdeskRefused, match="already undone"), session_scope(engine) as session:
        undo_merge(session, merge.id, actor=CLERK, reason="again")
    assert actions(engine)[-1] == ("person.unmerge", CLERK)


def test_queue_health_counts_size_age_and_decisions_per_day(
    engine: Engine, privacy_campus: Campus, tmp_path: Path
) -> None:
    settings = get_settings()
    staff_id = staff_case(engine, privacy_campus, tmp_path)
    with session_scope(engine) as session:
        decide_case(session, settings, staff_id, "merge", actor=CLERK, reason="ticket 31")
        before = queue_health(session, now=utcnow() + timedelta(hours=2))
        decide_case(session, settings, privacy_campus.candidate, "keep_apart", actor=CLERK, reason="t 2")
        after = queue_health(session)
    assert (before.open, before.deferred, before.awaiting_approval, before.size) == (2, 0, 1, 2)
    assert before.oldest_age is not None and before.oldest_age >= timedelta(hours=2)
    assert after.size == 1 and after.decisions_per_day[0] == (utcnow().strftime("%Y-%m-%d"), 1)
    assert len(after.decisions_per_day) == 14 and all(count == 0 for _, count in after.decisions_per_day[1:])


def test_decisions_name_their_reason_in_the_log(engine: Engine, privacy_campus: Campus) -> None:
    with session_scope(engine) as session:
        decide_case(session, get_settings(), privacy_campus.candidate, "defer", actor=CLERK, reason="ticket 77")
    with Session(engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "review.defer")).one()
    assert json.loads(event.details)["reason"] == "ticket 77"


# --- four eyes in the CLI: the same rule, held by `idbroker.linking.review` for every caller -----------------

runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def approval_of(output: str) -> str:
    return output.split("approval ", 1)[1].split(" ", 1)[0]


def merged(engine: Engine, a: str, b: str) -> bool:
    with Session(engine) as session:
        return resolve_person(session, a).id == resolve_person(session, b).id


def test_the_cli_cannot_merge_staff_records_alone(
    engine: Engine, privacy_campus: Campus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = staff_case(engine, privacy_campus, tmp_path)
    with Session(engine) as session:
        other = session.get(MergeCandidate, case_id).person_b  # type: ignore[union-attr]
    monkeypatch.setenv("LOGNAME", "alice")  # the operating-system account is the CLI's actor
    asked = cli("review", "decide", str(case_id), "merge", "--reason", "ticket 31")
    assert "awaits a second person" in asked and "staff_records" in asked
    approval = approval_of(asked)
    assert not merged(engine, privacy_campus.helpdesk, other)  # nothing merged yet
    assert f"merge awaiting approval {approval} (asked by cli:alice" in cli("review", "list")
    assert f"{approval}\tcase {case_id}\tasked by cli:alice" in cli("review", "pending")

    same = cli("review", "approve", approval, "--reason", "me again", code=1)
    assert "second helpdesk member" in same and "nothing was changed" in same
    busy = cli("review", "decide", str(case_id), "keep_apart", "--reason", "other", code=1)
    assert "awaits a second person" in busy
    not_staff = cli("review", "approve", approval, "--reason", "ok", "--as", PRIVACY_UID, code=1)
    assert "does not hold the helpdesk role" in not_staff
    personal = cli("review", "approve", approval, "--as", SECOND_HELPDESK_UID, "--reason", "call 13800001111", code=1)
    assert "phone number" in personal  # the audit log never holds one
    assert not merged(engine, privacy_campus.helpdesk, other)

    monkeypatch.setenv("LOGNAME", "bob")  # a second operator
    done = cli("review", "approve", approval, "--reason", "checked HR file")
    assert f"case {case_id}: merged (approval {approval})" in done
    assert merged(engine, privacy_campus.helpdesk, other)
    logged = actions(engine)
    assert ("review.merge.requested", "cli:alice") in logged
    assert logged[-3:] == [
        ("person.merge", "cli:bob"),
        ("review.merge", "cli:bob"),
        ("review.merge.approved", "cli:bob"),
    ]
    assert all(actor != "cli:alice" for action, actor in logged if action in ("person.merge", "review.merge"))


def test_a_direct_merge_of_staff_records_waits_too(
    engine: Engine, privacy_campus: Campus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = staff_case(engine, privacy_campus, tmp_path)
    with Session(engine) as session:
        other = session.get(MergeCandidate, case_id).person_b  # type: ignore[union-attr]
    monkeypatch.setenv("LOGNAME", "alice")
    asked = cli("merge", privacy_campus.helpdesk, other, "--reason", "ticket 40")
    assert f"case {case_id}: the merge awaits a second person" in asked  # the open case for the pair, reused
    assert not merged(engine, privacy_campus.helpdesk, other)
    # two staff members with two different national IDs: refused at once without --force
    vetoed = cli("merge", privacy_campus.helpdesk, privacy_campus.second_helpdesk, "--reason", "t 41", code=1)
    assert "disagree on" in vetoed and "nothing was changed" in vetoed
    forced = cli("merge", privacy_campus.helpdesk, privacy_campus.second_helpdesk, "--reason", "t 41", "--force")
    assert "awaits a second person" in forced
    assert not merged(engine, privacy_campus.helpdesk, privacy_campus.second_helpdesk)
    # students named directly: done at once, as before
    students = cli("merge", privacy_campus.zhang, privacy_campus.zhang_master, "--reason", "ticket 42")
    assert students.startswith(f"merged {privacy_campus.zhang_master} into {privacy_campus.zhang}")

    monkeypatch.setenv("LOGNAME", "bob")
    cli("review", "approve", approval_of(asked), "--reason", "checked HR file")
    cli("review", "approve", approval_of(forced), "--reason", "HR proof of one person")  # forced as asked
    assert merged(engine, privacy_campus.helpdesk, other)
    assert merged(engine, privacy_campus.helpdesk, privacy_campus.second_helpdesk)


def test_a_students_merge_in_the_cli_is_done_at_once(
    engine: Engine, privacy_campus: Campus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "alice")
    out = cli("review", "decide", str(privacy_campus.candidate), "merge", "--reason", "ticket 9")
    assert out.strip() == f"case {privacy_campus.candidate}: merged"
    assert merged(engine, privacy_campus.zhang, privacy_campus.zhang_master)


def test_four_eyes_hold_across_the_console_and_the_cli(
    web_client: TestClient,
    cas_server: CasStandIn,
    sqlite_engine: Engine,
    privacy_campus: Campus,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case_id = staff_case(sqlite_engine, privacy_campus, tmp_path)
    with Session(sqlite_engine) as session:
        other = session.get(MergeCandidate, case_id).person_b  # type: ignore[union-attr]
    token = signed_in_token(web_client, cas_server, HELPDESK_UID)  # 王芳 asks in the console
    asked = web_client.post(
        f"/helpdesk/review/{case_id}/decide",
        data={"decision": "merge", "reason": "ticket 31", "csrf_token": token},
        headers={"accept": "text/html"},
    )
    assert asked.status_code == 200
    with Session(sqlite_engine) as session:
        approval = session.exec(select(MergeApproval).where(MergeApproval.candidate_id == case_id)).one()
    assert approval.requested_by == f"person:{privacy_campus.helpdesk}"
    # the same person cannot approve it by changing channel
    own = cli("review", "approve", str(approval.id), "--reason", "mine", "--as", HELPDESK_UID, code=1)
    assert "second helpdesk member" in own
    # a second member rejects it from the CLI: nothing merged, the case stays open
    rejected = cli("review", "reject", str(approval.id), "--reason", "not her", "--as", SECOND_HELPDESK_UID)
    assert f"case {case_id}: rejected" in rejected
    assert not merged(sqlite_engine, privacy_campus.helpdesk, other)
    assert actions(sqlite_engine)[-1] == ("review.merge.rejected", f"person:{privacy_campus.second_helpdesk}")

    monkeypatch.setenv("LOGNAME", "alice")  # asked again from the CLI, approved in the console by 王芳
    second = approval_of(cli("review", "decide", str(case_id), "merge", "--reason", "ticket 32"))
    approved = web_client.post(
        f"/helpdesk/approvals/{second}/approve",
        data={"reason": "checked HR file", "csrf_token": token},
        headers={"accept": "text/html"},
    )
    assert approved.status_code == 200
    assert merged(sqlite_engine, privacy_campus.helpdesk, other)
    assert actions(sqlite_engine)[-1] == ("review.merge.approved", f"person:{privacy_campus.helpdesk}")
