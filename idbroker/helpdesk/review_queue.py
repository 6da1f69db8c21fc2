"""The review queue at the helpdesk: each case side by side with its evidence; merge, keep apart or defer.

Decisions go through `idbroker.linking.review.decide` (audited there as `review.<decision>`; keeping
apart stores the pair so the linker never proposes it again). When `policies/review.yaml` asks for four
eyes (a merge touching staff records, or every merge), a helpdesk member's merge becomes a request
(`review.merge.requested`) that a *different* member approves (`review.merge.approved`, and the merge is
done in the approver's name) or rejects (`review.merge.rejected`, the case stays open). Opening a case
shows two people's records, so it is recorded too (`helpdesk.review.open`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from idbroker.audit.chain import append
from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.directory.models import SourceRecord
from idbroker.directory.queries import records_of, resolve_person
from idbroker.helpdesk.errors import HelpdeskRefused
from idbroker.helpdesk.models import MergeApproval
from idbroker.helpdesk.reasons import check_reason
from idbroker.helpdesk.review_policy import load_review_policy, second_person_rule
from idbroker.helpdesk.search import mask_name
from idbroker.linking.merge import MergeRefused
from idbroker.linking.models import MergeCandidate
from idbroker.linking.review import DECISIONS, decide, open_candidates


@dataclass(frozen=True)
class Evidence:
    comparison: str
    level: str
    weight: float


@dataclass(frozen=True)
class Side:
    person_id: str
    records: list[SourceRecord]


@dataclass(frozen=True)
class QueueItem:
    candidate: MergeCandidate
    names: tuple[str, str]  # masked
    approval: MergeApproval | None


@dataclass(frozen=True)
class ReviewCase:
    candidate: MergeCandidate
    left: Side
    right: Side
    evidence: list[Evidence]
    veto: str | None
    approval: MergeApproval | None  # a merge waiting for a second person
    second_person_rule: str | None  # why a merge of this pair needs a second person (None: it does not)


@dataclass(frozen=True)
class Outcome:
    state: str  # merged | kept_apart | deferred | awaiting_approval | rejected
    approval_id: int | None = None


def evidence_of(candidate: MergeCandidate) -> list[Evidence]:
    items: list[Any] = (candidate.evidence or {}).get("evidence", [])
    return [Evidence(str(item[0]), str(item[1]), float(item[2])) for item in items if len(item) >= 3]


def pending_approval(session: Session, candidate_id: int) -> MergeApproval | None:
    return session.scalars(
        select(MergeApproval).where(MergeApproval.candidate_id == candidate_id, MergeApproval.state == "pending")
    ).first()


def _names(session: Session, person_id: str) -> str:
    names = session.scalars(
        select(SourceRecord.name).where(SourceRecord.person_id == person_id, SourceRecord.name.is_not(None))  # type: ignore[union-attr]
    ).all()
    return mask_name(names[0]) if names else "?"


def queue(session: Session, limit: int = 100) -> list[QueueItem]:
    """Open and deferred cases, strongest evidence first, with masked names and any pending approval."""
    items = []
    for candidate in open_candidates(session, limit):
        a, b = resolve_person(session, candidate.person_a).id, resolve_person(session, candidate.person_b).id
        items.append(
            QueueItem(candidate, (_names(session, a), _names(session, b)), pending_approval(session, candidate.id))
        )  # type: ignore[arg-type]
    return items


def _candidate(session: Session, candidate_id: int) -> MergeCandidate:
    candidate = session.get(MergeCandidate, candidate_id)
    if candidate is None:
        raise HelpdeskRefused("case_unknown", f"no review case {candidate_id}", status=404)
    return candidate


def open_case(
    session: Session, settings: Settings, candidate_id: int, *, actor: str, client_ip: str | None = None
) -> ReviewCase:
    """One case side by side with its evidence and score; recorded as `helpdesk.review.open`."""
    candidate = _candidate(session, candidate_id)
    a, b = resolve_person(session, candidate.person_a), resolve_person(session, candidate.person_b)
    details: dict[str, object] = {"candidate": candidate_id, "other": b.id, "purpose": "helpdesk review"}
    if client_ip:
        details["client_ip"] = client_ip
    append(session, actor=actor, action="helpdesk.review.open", subject=a.id, details=details)
    return ReviewCase(
        candidate=candidate,
        left=Side(a.id, records_of(session, a.id)),
        right=Side(b.id, records_of(session, b.id)),
        evidence=evidence_of(candidate),
        veto=(candidate.evidence or {}).get("veto"),
        approval=pending_approval(session, candidate_id),
        second_person_rule=second_person_rule(session, load_review_policy(settings), [a.id, b.id]),
    )


def decide_case(
    session: Session, settings: Settings, candidate_id: int, decision: str, *, actor: str, reason: str
) -> Outcome:
    """Merge, keep apart or defer a case; a merge the policy routes to a second person waits for approval."""
    why = check_reason(reason)
    if decision not in DECISIONS:
        raise HelpdeskRefused("decision_unknown", f"unknown decision {decision!r}: one of {', '.join(DECISIONS)}")
    candidate = _candidate(session, candidate_id)
    if candidate.state not in ("open", "deferred"):
        raise HelpdeskRefused("case_decided", f"case {candidate_id} is already decided ({candidate.state})", status=409)
    if pending_approval(session, candidate_id) is not None:
        raise HelpdeskRefused(
            "approval_pending", "a merge of this case awaits a second person: approve or reject it first", status=409
        )
    if decision == "merge":
        a, b = resolve_person(session, candidate.person_a), resolve_person(session, candidate.person_b)
        rule = second_person_rule(session, load_review_policy(settings), [a.id, b.id])
        if rule is not None:
            approval = MergeApproval(candidate_id=candidate_id, requested_by=actor, reason=why, rule=rule)
            session.add(approval)
            session.flush()
            append(
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
            return Outcome("awaiting_approval", approval.id)
    try:
        decided = decide(session, settings, candidate_id, decision, actor=actor, reason=why)
    except MergeRefused as exc:
        raise HelpdeskRefused("merge_refused", str(exc), status=409) from None
    return Outcome(decided.state)


def _approval(session: Session, approval_id: int, actor: str) -> MergeApproval:
    approval = session.get(MergeApproval, approval_id)
    if approval is None or approval.state != "pending":
        raise HelpdeskRefused("approval_unknown", f"no merge awaiting approval with number {approval_id}", status=404)
    if approval.requested_by == actor:
        raise HelpdeskRefused(
            "same_person", "four eyes: a second helpdesk member must approve the merge you asked for", status=403
        )
    return approval


def approve(session: Session, settings: Settings, approval_id: int, *, actor: str, reason: str) -> Outcome:
    """The second person agrees: the merge is done in their name, with both reasons."""
    why = check_reason(reason)
    approval = _approval(session, approval_id, actor)
    approval.state, approval.decided_by, approval.decided_at, approval.decision_reason = (
        "approved",
        actor,
        utcnow(),
        why,
    )
    session.add(approval)
    try:
        decided = decide(
            session,
            settings,
            approval.candidate_id,
            "merge",
            actor=actor,
            reason=f"{approval.reason} (asked by {approval.requested_by}; approved: {why})"[:500],
        )
    except MergeRefused as exc:
        raise HelpdeskRefused("merge_refused", str(exc), status=409) from None
    append(
        session,
        actor=actor,
        action="review.merge.approved",
        subject=resolve_person(session, decided.person_a).id,
        details={
            "candidate": approval.candidate_id,
            "approval": approval.id,
            "requested_by": approval.requested_by,
            "reason": why,
        },
    )
    return Outcome(decided.state, approval.id)


def reject(session: Session, approval_id: int, *, actor: str, reason: str) -> Outcome:
    """The second person disagrees: nothing is merged and the case stays in the queue."""
    why = check_reason(reason)
    approval = _approval(session, approval_id, actor)
    approval.state, approval.decided_by, approval.decided_at, approval.decision_reason = (
        "rejected",
        actor,
        utcnow(),
        why,
    )
    session.add(approval)
    candidate = _candidate(session, approval.candidate_id)
    append(
        session,
        actor=actor,
        action="review.merge.rejected",
        subject=resolve_person(session, candidate.person_a).id,
        details={
            "candidate": approval.candidate_id,
            "approval": approval.id,
            "requested_by": approval.requested_by,
            "reason": why,
        },
    )
    return Outcome("rejected", approval.id)
