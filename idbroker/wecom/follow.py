"""Follow status: who follows the corp, from the subscribe/unsubscribe callbacks; the follow report; invites.

Every member event a callback brings (subscribe, unsubscribe, create/update/delete_user) is written once to
`wecom_member_event`, keyed by the callback it came from — the history of a member, and the proof that no
callback was applied twice. A member's follow status changes only for an event newer (by its CreateTime)
than the last one applied, so a late retry of an old subscribe cannot undo a newer unsubscribe.

The follow report counts, per 学院 and per role, the people whose member is enabled, and how many of them
follow: the university's "about 90 % of students follow".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Field, Session, SQLModel

from idbroker.clock import utcnow
from idbroker.wecom.client import INVITE_CHUNK, WeComClient
from idbroker.wecom.desired import DesiredState
from idbroker.wecom.merge import Resolver
from idbroker.wecom.state import WeComMember


class WeComMemberEvent(SQLModel, table=True):
    __tablename__ = "wecom_member_event"

    id: int | None = Field(default=None, primary_key=True)
    callback_id: int = Field(foreign_key="wecom_callback.id", unique=True)
    userid: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=32)  # subscribe | unsubscribe | create_user | update_user | delete_user
    at: datetime  # the event's CreateTime
    known: bool  # the userid is one of the broker's members


@dataclass(frozen=True)
class FollowRow:
    group: str  # "学院 计算机学院" or "role student"
    members: int
    followed: int

    @property
    def rate(self) -> float:
        return self.followed / self.members if self.members else 0.0


@dataclass(frozen=True)
class FollowReport:
    members: int
    followed: int
    by_org: list[FollowRow]
    by_role: list[FollowRow]

    @property
    def rate(self) -> float:
        return self.followed / self.members if self.members else 0.0


def follow_report(session: Session, desired: DesiredState) -> FollowReport:
    """Members that stand for a person today (enabled, not retired), by the 学院 and role of their active roles."""
    resolve = Resolver(session)
    members = [
        m
        for m in session.scalars(select(WeComMember).where(WeComMember.in_corp, WeComMember.enabled))  # type: ignore[arg-type]
        if not m.retired
    ]
    wanted = desired.compute(session, {resolve(m.person_id) for m in members})
    by_org: Counter[tuple[str, bool]] = Counter()
    by_role: Counter[tuple[str, bool]] = Counter()
    for member in members:
        person = wanted.get(resolve(member.person_id))
        roles = person.roles if person is not None else ()
        for org in sorted({role.org or "—" for role in roles}) or ["—"]:
            by_org[(org, member.followed)] += 1
        for role in sorted({role.role for role in roles}) or ["—"]:
            by_role[(role, member.followed)] += 1

    def rows(counter: Counter[tuple[str, bool]]) -> list[FollowRow]:
        groups = sorted({group for group, _ in counter})
        return [FollowRow(g, counter[(g, True)] + counter[(g, False)], counter[(g, True)]) for g in groups]

    followed = sum(1 for m in members if m.followed)
    return FollowReport(len(members), followed, rows(by_org), rows(by_role))


def invite_unfollowed(
    session_factory: Callable[[], Session],
    client: WeComClient,
    *,
    again_after: timedelta = timedelta(days=7),
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """`batch/invite` the enabled members who do not follow (not invited in the last week): (invited, refused)."""
    now = utcnow()
    with session_factory() as session:
        due = [
            m.userid
            for m in session.scalars(
                select(WeComMember).where(
                    WeComMember.in_corp,
                    WeComMember.enabled,
                    WeComMember.followed.is_(False),  # type: ignore[attr-defined, arg-type]
                )
            )
            if not m.retired and (m.invited_at is None or now - m.invited_at >= again_after)
        ]
    invited = refused = 0
    for start in range(0, len(due), INVITE_CHUNK):
        chunk = due[start : start + INVITE_CHUNK]
        answer = client.invite(chunk)
        bad = {str(u).lower() for u in answer.get("invaliduser", [])}
        with session_factory() as session:
            for member in session.scalars(select(WeComMember).where(WeComMember.userid.in_(chunk))):  # type: ignore[attr-defined]
                if member.userid.lower() not in bad:
                    member.invited_at = now
                    session.add(member)
            session.commit()
        refused += len(bad)
        invited += len(chunk) - len(bad)
        if progress is not None:
            progress(len(chunk))
    return invited, refused
