"""Four eyes on merges: a merge the review policy routes to a second person waits here for their approval."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class MergeApproval(SQLModel, table=True):
    """A helpdesk member asked to merge a review case; a different member approves or rejects it."""

    __tablename__ = "merge_approval"

    id: int | None = Field(default=None, primary_key=True)
    candidate_id: int = Field(foreign_key="merge_candidate.id", index=True)
    requested_by: str = Field(max_length=64)
    requested_at: datetime = Field(default_factory=utcnow)
    reason: str = Field(max_length=500)
    rule: str = Field(max_length=64)  # which rule of policies/review.yaml asked for a second person
    state: str = Field(default="pending", max_length=16, index=True)  # pending | approved | rejected
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = None
    decision_reason: str | None = Field(default=None, max_length=500)
