"""The review queue at the helpdesk: side by side, merge / keep apart / defer, four eyes, un-merge, health."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from factories import STUDENT_HEADER, student, write_csv
from plugins.privacy import Campus
from sqlalchemy import Engine
from sqlmodel import Session, select

from idbroker.audit.models import AuditEvent
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
