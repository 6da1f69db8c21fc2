"""Merge and un-merge: operations with history (who, when, why), so every merge can be undone exactly.

A merge keeps one survivor; the absorbed ID stays as an alias (`merged_into`) that resolves to it.
Un-merge gives the absorbed person back the records it brought, revives its ID and marks the pair as
kept apart, so the linker never joins them again on the same evidence.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.contacts.collect import catch_up_before_commit
from idbroker.directory.events import emit
from idbroker.directory.models import Person, SourceRecord
from idbroker.directory.queries import resolve_person
from idbroker.linking.models import KeptApart, MergeCandidate, MergeOperation


class MergeRefused(ValueError):
    """The merge or un-merge cannot be done; the message says why."""


def merge_people(
    session: Session,
    survivor_id: str,
    absorbed_id: str,
    *,
    actor: str,
    reason: str,
    score: float | None = None,
    evidence: dict[str, Any] | None = None,
) -> MergeOperation:
    survivor = resolve_person(session, survivor_id)
    absorbed = resolve_person(session, absorbed_id)
    if survivor.id == absorbed.id:
        raise MergeRefused(f"{survivor_id} and {absorbed_id} are already one person ({survivor.id})")
    if not reason.strip():
        raise MergeRefused("a merge needs a reason")
    record_ids = list(
        session.exec(select(SourceRecord.id).where(SourceRecord.person_id == absorbed.id)).all()  # type: ignore[call-overload]
    )
    session.execute(
        update(SourceRecord).where(SourceRecord.person_id == absorbed.id).values(person_id=survivor.id)  # type: ignore[arg-type]
    )
    now = utcnow()
    absorbed.state, absorbed.merged_into, absorbed.updated_at = "merged", survivor.id, now
    survivor.updated_at = now
    session.add_all([absorbed, survivor])
    operation = MergeOperation(
        kind="merge",
        survivor_id=survivor.id,
        absorbed_id=absorbed.id,
        record_ids=record_ids,
        actor=actor,
        reason=reason,
        score=score,
        evidence=evidence,
        at=now,
    )
    session.add(operation)
    for candidate in session.exec(
        select(MergeCandidate).where(
            MergeCandidate.state.in_(["open", "deferred"]),  # type: ignore[attr-defined]
            MergeCandidate.person_a.in_([survivor.id, absorbed.id]),  # type: ignore[attr-defined]
            MergeCandidate.person_b.in_([survivor.id, absorbed.id]),  # type: ignore[attr-defined]
        )
    ):
        candidate.state, candidate.decided_at, candidate.decided_by = "merged", now, actor
        candidate.reason = reason
        session.add(candidate)
    session.flush()
    emit(session, "person.merged", survivor.id, other=absorbed.id, operation=operation.id)
    catch_up_before_commit(session)  # contacts (issue 3): the survivor's values and primaries
    audit(
        session,
        actor=actor,
        action="person.merge",
        subject=survivor.id,
        details={
            "absorbed": absorbed.id,
            "operation": operation.id,
            "records": len(record_ids),
            "reason": reason,
            "score": score,
        },
    )
    return operation


def unmerge(session: Session, operation_id: int, *, actor: str, reason: str) -> MergeOperation:
    merge = session.get(MergeOperation, operation_id)
    if merge is None or merge.kind != "merge":
        raise MergeRefused(f"no merge operation {operation_id}")
    if merge.undone_by is not None:
        raise MergeRefused(f"merge {operation_id} was already undone by operation {merge.undone_by}")
    if not reason.strip():
        raise MergeRefused("an un-merge needs a reason")
    absorbed = session.get(Person, merge.absorbed_id)
    if absorbed is None or absorbed.merged_into != merge.survivor_id:
        raise MergeRefused(f"{merge.absorbed_id} is no longer merged into {merge.survivor_id}")
    holder = resolve_person(session, merge.survivor_id)
    session.execute(
        update(SourceRecord)
        .where(SourceRecord.id.in_(merge.record_ids), SourceRecord.person_id == holder.id)  # type: ignore[union-attr]
        .values(person_id=absorbed.id)
    )
    now = utcnow()
    absorbed.state, absorbed.merged_into, absorbed.updated_at = "active", None, now
    session.add(absorbed)
    a, b = sorted([merge.survivor_id, absorbed.id])
    if session.exec(select(KeptApart).where(KeptApart.person_a == a, KeptApart.person_b == b)).first() is None:
        session.add(KeptApart(person_a=a, person_b=b, actor=actor, reason=f"un-merge: {reason}", at=now))
    operation = MergeOperation(
        kind="unmerge",
        survivor_id=merge.survivor_id,
        absorbed_id=absorbed.id,
        record_ids=merge.record_ids,
        actor=actor,
        reason=reason,
        at=now,
    )
    session.add(operation)
    session.flush()
    merge.undone_by = operation.id
    session.add(merge)
    emit(session, "person.unmerged", absorbed.id, other=merge.survivor_id, operation=operation.id)
    catch_up_before_commit(session)  # contacts (issue 3): each person's values and primaries again
    audit(
        session,
        actor=actor,
        action="person.unmerge",
        subject=absorbed.id,
        details={
            "survivor": merge.survivor_id,
            "operation": operation.id,
            "undoes": merge.id,
            "records": len(merge.record_ids),
            "reason": reason,
        },
    )
    return operation
