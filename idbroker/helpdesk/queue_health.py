"""The review queue's health: how many cases wait, how old the oldest is, how many are decided each day."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.helpdesk.models import MergeApproval
from idbroker.linking.models import MergeCandidate

WAITING = ("open", "deferred")


@dataclass(frozen=True)
class QueueHealth:
    open: int
    deferred: int
    awaiting_approval: int
    oldest_created_at: datetime | None
    oldest_age: timedelta | None
    decisions_per_day: list[tuple[str, int]]  # (YYYY-MM-DD, decisions), the last `days` days, newest first

    @property
    def size(self) -> int:
        return self.open + self.deferred


def queue_health(session: Session, *, days: int = 14, now: datetime | None = None) -> QueueHealth:
    now = now or utcnow()
    counts = dict(
        session.execute(
            select(MergeCandidate.state, func.count())
            .where(MergeCandidate.state.in_(WAITING))  # type: ignore[attr-defined]
            .group_by(MergeCandidate.state)
        ).all()
    )
    oldest = session.scalar(
        select(func.min(MergeCandidate.created_at)).where(MergeCandidate.state.in_(WAITING))  # type: ignore[attr-defined]
    )
    awaiting = session.scalar(select(func.count()).where(MergeApproval.state == "pending")) or 0
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    decided = session.scalars(
        select(MergeCandidate.decided_at).where(MergeCandidate.decided_at >= since)  # type: ignore[operator]
    ).all()
    per_day = Counter(at.strftime("%Y-%m-%d") for at in decided if at is not None)
    day_list = [(since + timedelta(days=offset)).strftime("%Y-%m-%d") for offset in range(days)]
    return QueueHealth(
        open=int(counts.get("open", 0)),
        deferred=int(counts.get("deferred", 0)),
        awaiting_approval=int(awaiting),
        oldest_created_at=oldest,
        oldest_age=(now - oldest) if oldest else None,
        decisions_per_day=[(day, per_day.get(day, 0)) for day in reversed(day_list)],
    )
