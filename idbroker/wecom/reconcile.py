"""Reconcile the recorded state with the corp itself, through `user/list_id` (path/96067).

- Members the corp has and the broker does not know are reported — never deleted: they may be the corp's
  own accounts, created by hand.
- Members the broker recorded as in the corp but the corp no longer has are marked so; the next sync
  creates them again if the directory still wants them.
- Members the broker was unsure of (created by a call whose answer was lost) and the corp has are reported:
  the next sync's create meets 60102 and adopts them after checking they are the same person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.wecom.client import LIST_ID_LIMIT, WeComClient
from idbroker.wecom.state import WeComMember


@dataclass
class Reconciliation:
    corp_members: int = 0
    unknown: list[str] = field(default_factory=list)  # userids the broker does not know (reported only)
    vanished: list[str] = field(default_factory=list)  # recorded as in the corp, but not there
    found: list[str] = field(default_factory=list)  # not recorded as in the corp, but there (to be adopted)


def reconcile(
    engine: Engine,
    client: WeComClient,
    *,
    actor: str,
    progress: Callable[[int], None] | None = None,
    page: int = LIST_ID_LIMIT,
) -> Reconciliation:
    in_corp: set[str] = set()
    for row in client.list_ids(page):
        in_corp.add(str(row.get("userid", "")).lower())
        if progress is not None:
            progress(1)
    result = Reconciliation(corp_members=len(in_corp))
    with Session(engine) as session:
        members = {m.userid.lower(): m for m in session.scalars(select(WeComMember))}
        result.unknown = sorted(in_corp - set(members))
        for key, member in members.items():
            if member.pending_job is not None:
                continue
            if member.in_corp and key not in in_corp:
                member.in_corp = False
                result.vanished.append(member.userid)
                session.add(member)
            elif not member.in_corp and key in in_corp:
                result.found.append(member.userid)
        audit(
            session,
            actor=actor,
            action="wecom.reconcile",
            details={
                "corp_members": result.corp_members,
                "unknown": len(result.unknown),
                "vanished": len(result.vanished),
                "found": len(result.found),
            },
        )
        session.commit()
    return result
