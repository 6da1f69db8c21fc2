"""The review queue: cases the linker could not decide, resolved by a person (merge, keep apart, defer)."""

from __future__ import annotations

from sqlmodel import Session, select

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.directory.queries import records_of, resolve_person
from idbroker.linking.compare import vetoed
from idbroker.linking.fields import link_record
from idbroker.linking.merge import MergeRefused, merge_people
from idbroker.linking.models import KeptApart, MergeCandidate, MergeOperation
from idbroker.linking.records import Profile
from idbroker.linking.service import key_spaces, matching_policy

DECISIONS = ("merge", "keep_apart", "defer")


def open_candidates(session: Session, limit: int = 100) -> list[MergeCandidate]:
    return list(
        session.exec(
            select(MergeCandidate)
            .where(MergeCandidate.state.in_(["open", "deferred"]))  # type: ignore[attr-defined]
            .order_by(MergeCandidate.state.desc(), MergeCandidate.score.desc())  # type: ignore[attr-defined]
            .limit(limit)
        ).all()
    )


def _profile(session: Session, settings: Settings, person_id: str) -> Profile:
    spaces = key_spaces(settings)
    profile = Profile()
    for record in records_of(session, person_id):
        profile.add(link_record(record, spaces))
    return profile


def manual_merge(
    session: Session,
    settings: Settings,
    survivor_id: str,
    absorbed_id: str,
    *,
    actor: str,
    reason: str,
    force: bool = False,
) -> MergeOperation:
    """A person's decision to merge: refused across a veto (two different valid national IDs) unless forced."""
    survivor, absorbed = resolve_person(session, survivor_id), resolve_person(session, absorbed_id)
    veto = vetoed(
        matching_policy(settings),
        _profile(session, settings, survivor.id),
        _profile(session, settings, absorbed.id),
    )
    if veto and not force:
        raise MergeRefused(f"refused: the two people disagree on {veto} (use --force only with proof)")
    return merge_people(session, survivor.id, absorbed.id, actor=actor, reason=reason)


def decide(
    session: Session, settings: Settings, candidate_id: int, decision: str, *, actor: str, reason: str
) -> MergeCandidate:
    candidate = session.get(MergeCandidate, candidate_id)
    if candidate is None:
        raise MergeRefused(f"no merge candidate {candidate_id}")
    if candidate.state not in ("open", "deferred"):
        raise MergeRefused(f"candidate {candidate_id} is already decided ({candidate.state})")
    if decision not in DECISIONS:
        raise MergeRefused(f"unknown decision {decision!r}: one of {', '.join(DECISIONS)}")
    if not reason.strip():
        raise MergeRefused("a decision needs a reason")
    a, b = resolve_person(session, candidate.person_a), resolve_person(session, candidate.person_b)
    now = utcnow()
    if decision == "merge":
        manual_merge(session, settings, a.id, b.id, actor=actor, reason=reason)
        candidate.state = "merged"
    elif decision == "keep_apart":
        pa, pb = sorted([a.id, b.id])
        if session.exec(select(KeptApart).where(KeptApart.person_a == pa, KeptApart.person_b == pb)).first() is None:
            session.add(KeptApart(person_a=pa, person_b=pb, actor=actor, reason=reason, at=now))
        candidate.state = "kept_apart"
    else:
        candidate.state = "deferred"
    candidate.decided_at, candidate.decided_by, candidate.reason = now, actor, reason
    session.add(candidate)
    audit(
        session,
        actor=actor,
        action=f"review.{decision}",
        subject=a.id,
        details={"candidate": candidate.id, "other": b.id, "score": candidate.score, "reason": reason},
    )
    return candidate
