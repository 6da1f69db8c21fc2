"""The review queue: cases the linker could not decide, resolved by a person (merge, keep apart, defer).

Every decision — from the helpdesk console, the CLI or anything else — goes through `decide`, so the four
eyes of `policies/review.yaml` (`idbroker.helpdesk.review_policy`) hold whoever decides: a merge the policy
routes to a second person (a staff member's records, or every merge if set) is not done but becomes a
pending `MergeApproval` (`review.merge.requested`); a *different* actor `approve`s it (the merge is done in
their name, `review.merge.approved`) or `reject`s it (`review.merge.rejected`, the case stays open). A merge
of two people named directly (`merge_pair`, `idbroker merge A B`) is held to the same rule through a case
for the pair. `manual_merge` is the bare veto check and merge these call once nobody else must agree. The
actor is a string compared as is: `person:<id>` for a signed-in staff member (the console, or the CLI's
`--as UID`), `cli:<os user>` for the CLI otherwise. Reasons go to the audit log, so a phone number or a
national ID in one is refused (`idbroker.helpdesk.reasons`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.directory.queries import records_of, resolve_person
from idbroker.helpdesk.errors import HelpdeskRefused
from idbroker.helpdesk.models import MergeApproval
from idbroker.helpdesk.reasons import check_reason
from idbroker.helpdesk.review_policy import load_review_policy, second_person_rule
from idbroker.linking.compare import vetoed
from idbroker.linking.fields import link_record
from idbroker.linking.merge import MergeRefused, merge_people
from idbroker.linking.models import KeptApart, MergeCandidate, MergeOperation
from idbroker.linking.records import Profile
from idbroker.linking.service import key_spaces, matching_policy

DECISIONS = ("merge", "keep_apart", "defer")


class ReviewRefused(MergeRefused):
    """A decision, approval or rejection that cannot be done; nothing was changed. `code` names the case and
    `status` is what an HTTP router answers with."""

    def __init__(self, code: str, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Outcome:
    state: str  # merged | kept_apart | deferred | awaiting_approval | rejected
    candidate_id: int
    approval_id: int | None = None
    rule: str | None = None  # the four-eyes rule that asked for a second person


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
    return Profile.of(link_record(record, spaces) for record in records_of(session, person_id))


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
    _check_veto(session, settings, survivor.id, absorbed.id, force=force)
    return merge_people(session, survivor.id, absorbed.id, actor=actor, reason=reason)


def _check_veto(session: Session, settings: Settings, a: str, b: str, *, force: bool) -> None:
    veto = vetoed(matching_policy(settings), _profile(session, settings, a), _profile(session, settings, b))
    if veto and not force:
        raise MergeRefused(f"refused: the two people disagree on {veto} (use --force only with proof)")


def merge_pair(
    session: Session,
    settings: Settings,
    survivor_id: str,
    absorbed_id: str,
    *,
    actor: str,
    reason: str,
    force: bool = False,
) -> MergeOperation | Outcome:
    """A person's merge of two people named directly (`idbroker merge A B`), held to the same four eyes: a
    merge the review policy routes to a second person becomes a review case for the pair (an open one is
    reused) with a pending approval, and the `Outcome` says so; otherwise it is done and the operation is
    returned. `force` (across a veto) is kept in the case, so the approver merges as asked."""
    why = _why(reason)
    survivor, absorbed = resolve_person(session, survivor_id), resolve_person(session, absorbed_id)
    if survivor.id == absorbed.id:
        raise MergeRefused(f"{survivor_id} and {absorbed_id} are already one person ({survivor.id})")
    if second_person_rule(session, load_review_policy(settings), [survivor.id, absorbed.id]) is None:
        return manual_merge(session, settings, survivor.id, absorbed.id, actor=actor, reason=why, force=force)
    _check_veto(session, settings, survivor.id, absorbed.id, force=force)  # refused now, not at the approval
    case = session.exec(
        select(MergeCandidate).where(
            MergeCandidate.person_a == survivor.id,
            MergeCandidate.person_b == absorbed.id,
            MergeCandidate.state.in_(["open", "deferred"]),  # type: ignore[attr-defined]
        )
    ).first()
    if case is None or bool((case.evidence or {}).get("force")) != force:
        evidence = {"evidence": [], "manual": True, "force": force, "requested_by": actor}
        case = MergeCandidate(person_a=survivor.id, person_b=absorbed.id, score=0.0, evidence=evidence)
        session.add(case)
        session.flush()
    if case.id is None:  # pragma: no cover - flushed above
        raise RuntimeError("the review case was not stored")
    return decide(session, settings, case.id, "merge", actor=actor, reason=why)


def _why(reason: str | None) -> str:
    try:
        return check_reason(reason)
    except HelpdeskRefused as exc:
        raise ReviewRefused(exc.code, exc.reason) from None


def _case(session: Session, candidate_id: int) -> MergeCandidate:
    candidate = session.get(MergeCandidate, candidate_id)
    if candidate is None:
        raise ReviewRefused("case_unknown", f"no review case {candidate_id}", status=404)
    return candidate


def pending_approval(session: Session, candidate_id: int) -> MergeApproval | None:
    """The merge of this case waiting for a second person, if any."""
    return session.exec(
        select(MergeApproval).where(MergeApproval.candidate_id == candidate_id, MergeApproval.state == "pending")
    ).first()


def pending_approvals(session: Session, limit: int = 100) -> list[MergeApproval]:
    """Merges waiting for a second person, oldest first."""
    return list(
        session.exec(
            select(MergeApproval)
            .where(MergeApproval.state == "pending")
            .order_by(MergeApproval.id)  # type: ignore[arg-type]
            .limit(limit)
        ).all()
    )


def decide(
    session: Session, settings: Settings, candidate_id: int, decision: str, *, actor: str, reason: str
) -> Outcome:
    """Merge, keep apart or defer a case; a merge the review policy routes to a second person only asks."""
    if decision not in DECISIONS:
        raise ReviewRefused("decision_unknown", f"unknown decision {decision!r}: one of {', '.join(DECISIONS)}")
    why = _why(reason)
    candidate = _case(session, candidate_id)
    if candidate.state not in ("open", "deferred"):
        raise ReviewRefused("case_decided", f"case {candidate_id} is already decided ({candidate.state})", status=409)
    if pending_approval(session, candidate_id) is not None:
        raise ReviewRefused(
            "approval_pending", "a merge of this case awaits a second person: approve or reject it first", status=409
        )
    if decision == "merge":
        a, b = resolve_person(session, candidate.person_a), resolve_person(session, candidate.person_b)
        rule = second_person_rule(session, load_review_policy(settings), [a.id, b.id])
        if rule is not None:
            approval = MergeApproval(candidate_id=candidate_id, requested_by=actor, reason=why, rule=rule)
            session.add(approval)
            session.flush()
            audit(
                session,
                actor=actor,
                action="review.merge.requested",
                subject=a.id,
                details={
                    "candidate": candidate_id,
                    "other": b.id,
                    "approval": approval.id,
                    "rule": rule,
                    "reason": why,
                },
            )
            return Outcome("awaiting_approval", candidate_id, approval.id, rule)
    return Outcome(_apply(session, settings, candidate, decision, actor=actor, reason=why).state, candidate_id)


def _apply(
    session: Session, settings: Settings, candidate: MergeCandidate, decision: str, *, actor: str, reason: str
) -> MergeCandidate:
    """Carry out a decision nobody else needs to agree to (any more)."""
    a, b = resolve_person(session, candidate.person_a), resolve_person(session, candidate.person_b)
    now = utcnow()
    if decision == "merge":
        force = bool((candidate.evidence or {}).get("force"))  # only `merge_pair` sets it, as the operator asked
        manual_merge(session, settings, a.id, b.id, actor=actor, reason=reason, force=force)
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


def _second_person(session: Session, approval_id: int, actor: str) -> MergeApproval:
    approval = session.get(MergeApproval, approval_id)
    if approval is None or approval.state != "pending":
        raise ReviewRefused("approval_unknown", f"no merge awaiting approval with number {approval_id}", status=404)
    if approval.requested_by == actor:
        raise ReviewRefused(
            "same_person", "four eyes: a second helpdesk member must approve the merge you asked for", status=403
        )
    return approval


def _settle(session: Session, approval: MergeApproval, state: str, *, actor: str, reason: str) -> None:
    approval.state, approval.decided_by, approval.decided_at, approval.decision_reason = state, actor, utcnow(), reason
    session.add(approval)


def approve(session: Session, settings: Settings, approval_id: int, *, actor: str, reason: str) -> Outcome:
    """The second person agrees: the merge is done in their name, with both reasons."""
    why = _why(reason)
    approval = _second_person(session, approval_id, actor)
    _settle(session, approval, "approved", actor=actor, reason=why)
    candidate = _case(session, approval.candidate_id)
    if candidate.state not in ("open", "deferred"):
        raise ReviewRefused("case_decided", f"case {candidate.id} is already decided ({candidate.state})", status=409)
    joint = f"{approval.reason} (asked by {approval.requested_by}; approved: {why})"[:500]
    decided = _apply(session, settings, candidate, "merge", actor=actor, reason=joint)
    _audit_verdict(session, approval, "approved", decided.person_a, actor=actor, reason=why)
    return Outcome(decided.state, approval.candidate_id, approval.id, approval.rule)


def reject(session: Session, approval_id: int, *, actor: str, reason: str) -> Outcome:
    """The second person disagrees: nothing is merged and the case stays in the queue."""
    why = _why(reason)
    approval = _second_person(session, approval_id, actor)
    _settle(session, approval, "rejected", actor=actor, reason=why)
    candidate = _case(session, approval.candidate_id)
    _audit_verdict(session, approval, "rejected", candidate.person_a, actor=actor, reason=why)
    return Outcome("rejected", approval.candidate_id, approval.id, approval.rule)


def _audit_verdict(
    session: Session, approval: MergeApproval, verdict: str, person_id: str, *, actor: str, reason: str
) -> None:
    audit(
        session,
        actor=actor,
        action=f"review.merge.{verdict}",
        subject=resolve_person(session, person_id).id,
        details={
            "candidate": approval.candidate_id,
            "approval": approval.id,
            "requested_by": approval.requested_by,
            "reason": reason,
        },
    )
