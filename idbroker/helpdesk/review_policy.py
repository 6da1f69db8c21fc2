"""`policies/review.yaml`: when a merge decided at the helpdesk needs a second person (four eyes)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select
from sqlmodel import Session

from idbroker.config import Settings
from idbroker.directory.models import SourceRecord
from idbroker.policy import load_policy


class FourEyes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    staff_records: bool = True
    staff_sources: tuple[str, ...] = ("hr",)
    staff_affiliations: tuple[str, ...] = ("staff", "faculty")
    all_merges: bool = False


class ReviewPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    four_eyes: FourEyes = FourEyes()


def policy_file(settings: Settings) -> Path:
    return settings.policies_dir / "review.yaml"


def load_review_policy(settings: Settings) -> ReviewPolicy:
    return load_policy(policy_file(settings), ReviewPolicy)


def second_person_rule(session: Session, policy: ReviewPolicy, person_ids: list[str]) -> str | None:
    """The rule that sends a merge of these people to a second person, or None when one person may do it."""
    rules = policy.four_eyes
    if rules.all_merges:
        return "all_merges"
    if not rules.staff_records:
        return None
    staff = session.scalar(
        select(SourceRecord.id)
        .where(
            SourceRecord.person_id.in_(person_ids),  # type: ignore[union-attr]
            or_(
                SourceRecord.source.in_(rules.staff_sources),  # type: ignore[attr-defined]
                SourceRecord.affiliation.in_(rules.staff_affiliations),  # type: ignore[union-attr]
            ),
        )
        .limit(1)
    )
    return "staff_records" if staff is not None else None
