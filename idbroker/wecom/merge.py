"""Members through merges and un-merges: one member per person, and the follow is never lost.

A member's userid comes from the ID it was made for (its owner), which never changes. After a merge both
the survivor's and the absorbed person's members belong to the survivor (the absorbed ID resolves to it);
one is kept and the other retired — disabled, not deleted, so an un-merge can bring it back with its
follow. The one kept is the one the person follows (WeChat Work's follow cannot move between members);
when both or neither is followed, the survivor's own. Later syncs keep whichever member is live, so the
choice never flips back and forth. An un-merge gives the restored person back the members whose owner
resolves to them again; whoever is left without a live member gets their retired one back.

The directory events (`person.merged`, `person.unmerged`, …) tell the worker's incremental sync which
people to look at (`people_changed_since`); what to do follows from the members' owners alone, so a run
that missed an event still arrives at the same members.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import Session

from idbroker.directory.events import events_after
from idbroker.directory.models import Person
from idbroker.wecom.state import WeComCursor, WeComMember

CURSOR = "wecom.sync"


class Resolver:
    """Person ID → the person it stands for today (following merges), from one read of the merged people."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(select(Person.id, Person.merged_into).where(Person.state == "merged"))  # type: ignore[call-overload]
        self.merged_into: dict[str, str] = {pid: into for pid, into in rows if into}

    def __call__(self, person_id: str) -> str:
        seen = {person_id}
        while person_id in self.merged_into:
            person_id = self.merged_into[person_id]
            if person_id in seen:
                break
            seen.add(person_id)
        return person_id

    def absorbed_into(self, people: set[str]) -> set[str]:
        """Every ID that resolves into one of `people` (the people themselves included)."""
        return {pid for pid in self.merged_into if self(pid) in people} | people


def choose_member(holder: str, members: Sequence[WeComMember]) -> tuple[WeComMember | None, list[WeComMember]]:
    """(the member `holder` keeps, the others, which are to be retired)."""
    live = [m for m in members if not m.retired]
    pool = live or list(members)
    if not pool:
        return None, []
    kept = max(pool, key=lambda m: (m.followed, m.person_id == holder, m.in_corp, -m.created_at.timestamp()))
    return kept, [m for m in members if m is not kept]


def people_changed_since(session: Session, limit: int = 100_000) -> tuple[set[str], int]:
    """The people the directory events since the last incremental sync touched (resolved), and the new cursor."""
    cursor = session.get(WeComCursor, CURSOR)
    position = cursor.position if cursor is not None else 0
    resolve = Resolver(session)
    people: set[str] = set()
    for event in events_after(session, position, limit=limit):
        position = event.id or position
        if not event.kind.startswith("person."):  # e.g. consent.withdrawn: nothing WeChat Work holds changed
            continue
        people.add(resolve(event.person_id))
        if event.other_person_id:
            people.add(resolve(event.other_person_id))
        position = event.id or position
    return people, position


def save_cursor(session: Session, position: int) -> None:
    cursor = session.get(WeComCursor, CURSOR) or WeComCursor(name=CURSOR)
    cursor.position = max(cursor.position, position)
    session.add(cursor)
