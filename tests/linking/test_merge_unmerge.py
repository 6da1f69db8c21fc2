"""Merge and un-merge: history, aliases that resolve, an exact restore, and a pair kept apart afterwards."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from factories import STUDENT_HEADER, national_id, student, write_csv
from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.audit.verify import verify_chain
from idbroker.config import get_settings
from idbroker.directory.models import SourceRecord
from idbroker.directory.queries import people_by_number, resolve_person
from idbroker.linking.merge import MergeRefused, unmerge
from idbroker.linking.models import KeptApart, MergeCandidate, MergeOperation
from idbroker.linking.review import decide, manual_merge
from idbroker.linking.service import link_records
from idbroker.sources.importer import run_import


def two_people(engine: Engine, tmp_path: Path, *, second_id: str = "") -> tuple[str, str]:
    """One student twice: the second record without an ID and with a new phone — a review case."""
    rows = [
        student(
            "1120150001",
            "陈静",
            "女",
            "1997-04-01",
            national_id(date(1997, 4, 1), 2),
            "本科",
            "2015",
            "13800000001",
        ),
        student("2120190001", "陈静", "女", "1997-04-01", second_id, "硕士", "2019", "13800000002"),
    ]
    with Session(engine) as session:
        run_import(
            session,
            source="student",
            location=str(write_csv(tmp_path / "s.csv", STUDENT_HEADER, rows)),
            settings=get_settings(),
            actor="test",
        )
        session.commit()
        a, b = (people_by_number(session, n)[0].id for n in ("1120150001", "2120190001"))
    return a, b


def test_uncertain_pair_is_queued_then_merged_and_unmerged(engine: Engine, tmp_path: Path) -> None:
    a, b = two_people(engine, tmp_path)
    assert a != b
    settings = get_settings()
    with Session(engine) as session:
        (case,) = session.scalars(select(MergeCandidate).where(MergeCandidate.state == "open")).all()
        assert {case.person_a, case.person_b} == {a, b}
        names = {e[0] for e in case.evidence["evidence"]}
        assert {"name", "birth_date"} <= names
        decide(session, settings, case.id, "merge", actor="helpdesk:wang", reason="ticket 42")
        session.commit()
    with Session(engine) as session:
        survivor_id = resolve_person(session, a).id
        assert resolve_person(session, b).id == survivor_id  # the absorbed ID resolves to the survivor
        absorbed = b if survivor_id == a else a
        keys = set(session.scalars(select(SourceRecord.key).where(SourceRecord.person_id == survivor_id)))
        assert keys == {"1120150001", "2120190001"}
        op = session.scalars(select(MergeOperation).where(MergeOperation.kind == "merge")).one()
        assert (op.actor, op.reason, op.absorbed_id) == ("helpdesk:wang", "ticket 42", absorbed)
        op_id = op.id
        unmerge(session, op_id, actor="helpdesk:li", reason="two different people after all")
        session.commit()
    with Session(engine) as session:
        assert resolve_person(session, absorbed).id == absorbed
        assert resolve_person(session, survivor_id).id == survivor_id
        assert {p.id for p in people_by_number(session, "2120190001")} | {
            p.id for p in people_by_number(session, "1120150001")
        } == {a, b}
        assert session.scalars(select(KeptApart)).one() is not None
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        assert actions.index("person.merge") < actions.index("person.unmerge")
        with pytest.raises(MergeRefused, match="already undone"):
            unmerge(session, op_id, actor="x", reason="again")
        # a full re-link never joins what a person kept apart, nor proposes it again
        report = link_records(session, settings=settings, actor="test", full=True)
        session.commit()
        assert report.merged == 0
        assert resolve_person(session, absorbed).id == absorbed
        assert verify_chain(session).ok


def test_keep_apart_is_final(engine: Engine, tmp_path: Path) -> None:
    two_people(engine, tmp_path)
    settings = get_settings()
    with Session(engine) as session:
        (case,) = session.scalars(select(MergeCandidate)).all()
        decide(session, settings, case.id, "keep_apart", actor="helpdesk:wang", reason="called her")
        session.commit()
        assert link_records(session, settings=settings, actor="t", full=True).queued == 0
        with pytest.raises(MergeRefused, match="already decided"):
            decide(session, settings, case.id, "merge", actor="x", reason="y")


def test_a_manual_merge_across_two_valid_national_ids_is_refused(engine: Engine, tmp_path: Path) -> None:
    a, b = two_people(engine, tmp_path, second_id=national_id(date(1997, 4, 1), 4))
    assert a != b
    with Session(engine) as session:
        assert session.scalars(select(MergeCandidate)).all() == []  # a veto is never proposed
        with pytest.raises(MergeRefused, match="national_id"):
            manual_merge(session, get_settings(), a, b, actor="helpdesk:wang", reason="looks the same")
