"""The review queue at the helpdesk: each case side by side with its evidence; merge, keep apart or defer.

Decisions, approvals and rejections are `idbroker.linking.review`'s (`decide`, `approve`, `reject`): the one
place that holds the four eyes of `policies/review.yaml` — a merge touching staff records (or every merge) by
one member becomes a request (`review.merge.requested`) that a *different* member approves
(`review.merge.approved`, the merge done in the approver's name) or rejects (`review.merge.rejected`, the
case stays open) — for the console and the CLI alike. This module adds what the console shows (the queue
with masked names, a case side by side) and turns a refusal into `HelpdeskRefused`. Opening a case shows
two people's records, so it is recorded too (`helpdesk.review.open`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from idbroker.audit.chain import append
from idbroker.config import Settings
from idbroker.directory.models import SourceRecord
from idbroker.directory.queries import records_of, resolve_person
from idbroker.helpdesk.errors import HelpdeskRefused
from idbroker.helpdesk.models import MergeApproval
from idbroker.helpdesk.review_policy import load_review_policy, second_person_rule
from idbroker.helpdesk.search import mask_name
from idbroker.linking.merge import MergeRefused
from idbroker.linking.models import MergeCandidate
from idbroker.linking.review import (
    Outcome,
    ReviewRefused,
    decide,
    open_candidates,
    pending_approval,
)
from idbroker.linking.review import approve as approve_merge
from idbroker.linking.review import reject as reject_merge


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


def evidence_of(candidate: MergeCandidate) -> list[Evidence]:
    items: list[Any] = (candidate.evidence or {}).get("evidence", [])
    return [Evidence(str(item[0]), str(item[1]), float(item[2])) for item in items if len(item) >= 3]


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


def _refused(exc: MergeRefused) -> HelpdeskRefused:
    if isinstance(exc, ReviewRefused):
        return HelpdeskRefused(exc.code, exc.reason, status=exc.status)
    return HelpdeskRefused("merge_refused", str(exc), status=409)


def decide_case(
    session: Session, settings: Settings, candidate_id: int, decision: str, *, actor: str, reason: str
) -> Outcome:
    """Merge, keep apart or defer a case; a merge the policy routes to a second person waits for approval."""
    try:
        return decide(session, settings, candidate_id, decision, actor=actor, reason=reason)
    except MergeRefused as exc:
        raise _refused(exc) from None


def approve(session: Session, settings: Settings, approval_id: int, *, actor: str, reason: str) -> Outcome:
    """The second person agrees: the merge is done in their name, with both reasons."""
    try:
        return approve_merge(session, settings, approval_id, actor=actor, reason=reason)
    except MergeRefused as exc:
        raise _refused(exc) from None


def reject(session: Session, approval_id: int, *, actor: str, reason: str) -> Outcome:
    """The second person disagrees: nothing is merged and the case stays in the queue."""
    try:
        return reject_merge(session, approval_id, actor=actor, reason=reason)
    except MergeRefused as exc:
        raise _refused(exc) from None
