"""The change feed of one app: what happened to the people it knows, in its own pseudonyms.

Built from the directory events (`idbroker.directory.events`): a person updated, merged, un-merged or
gone. An app only hears of people it has already been given a pseudonym for, never of anyone else, and
never sees an internal ID: a merge reads `{"kind": "merged", "sub": <canonical>, "merged_sub": <the
absorbed person's own>}`, an un-merge `{"kind": "unmerged", "sub": <restored>, "from_sub": <former
survivor>}`. Each item goes through the release gate (audited, consent respected). The app keeps its own
cursor: the `next` of one page is the `after` of the next.

One notice is not a release: when a person withdraws their separate consent to an app
(`idbroker.release.consent.withdraw`), that app alone reads `{"kind": "consent_withdrawn", "sub": <its own
pseudonym of the person>}` — the one value it already holds, so that it can forget the person. The gate would
refuse it (there is no consent any more) and it carries no claim, so it bypasses the gate and is audited on
its own as `feed.notice` (actor the app, subject the person), each time the app reads it. Other apps never
see it, and an app that was never given a pseudonym of the person is not told.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.directory.events import DirectoryEvent, events_after
from idbroker.directory.queries import PersonNotFound, resolve_person
from idbroker.release.gate import ReleaseGate, ReleaseRefused
from idbroker.release.models import App
from idbroker.release.policies import AppPolicy
from idbroker.release.pseudonyms import absorbed_ids, known_people

KIND_NAMES = {
    "person.updated": "updated",
    "person.merged": "merged",
    "person.unmerged": "unmerged",
    "person.left": "left",
}
NOTICES = {"consent.withdrawn": "consent_withdrawn"}
"""Directory events told to the one app they name (`details["app"]`), outside the release gate."""
NOTICE_ACTION = "feed.notice"
MAX_PAGE = 1000


@dataclass(frozen=True)
class Change:
    cursor: int
    kind: str
    at: str
    claims: dict[str, Any]


def _family(session: Session, person_id: str) -> set[str]:
    try:
        current = resolve_person(session, person_id).id
    except PersonNotFound:
        return {person_id}
    return {person_id, current, *absorbed_ids(session, current)}


def _notice(session: Session, gate: ReleaseGate, app: App, event: DirectoryEvent) -> Change | None:
    """The app's `consent_withdrawn` notice for a `consent.withdrawn` event naming it; None for any other app."""
    if event.id is None or (event.details or {}).get("app") != app.client_id:
        return None
    if not known_people(session, app.sector, _family(session, event.person_id)):
        return None  # never given a pseudonym of the person: nothing to forget
    try:
        sub = gate.pseudonyms.canonical(session, app.sector, event.person_id)
    except PersonNotFound:
        return None
    audit(
        session,
        actor=f"app:{app.client_id}",
        action=NOTICE_ACTION,
        subject=resolve_person(session, event.person_id).id,
        details={"app": app.client_id, "notice": NOTICES[event.kind], "fields": ["pseudonym"], "via": "feed"},
    )
    return Change(cursor=event.id, kind=NOTICES[event.kind], at=event.at.isoformat(), claims={"sub": sub})


def changes(
    session: Session, gate: ReleaseGate, app: App, policy: AppPolicy, *, after: int, limit: int = 100
) -> tuple[list[Change], int]:
    """The app's changes after cursor `after` (at most `limit` events looked at) and the next cursor."""
    limit = max(1, min(limit, MAX_PAGE))
    events = events_after(session, after, limit)
    items: list[Change] = []
    for event in events:
        if event.kind in NOTICES:
            notice = _notice(session, gate, app, event)
            if notice is not None:
                items.append(notice)
            continue
        kind = KIND_NAMES.get(event.kind)
        if kind is None or event.id is None:
            continue
        main, other = event.person_id, event.other_person_id
        if kind == "merged" and other:
            # the survivor under its canonical pseudonym, with the absorbed person's own
            if not known_people(session, app.sector, {other}):
                continue
            subject, former = main, {"merged_sub": other}
        elif kind == "unmerged" and other:
            if not known_people(session, app.sector, _family(session, main) | _family(session, other)):
                continue
            subject, former = main, {}
        else:
            if not known_people(session, app.sector, _family(session, main)):
                continue
            subject, former = main, {}
        try:
            release = gate.release(session, app, policy, subject, wanted={"pseudonym"}, via="feed", former=former)
            claims = {"sub": release.sub, **{k: v for k, v in release.claims.items() if k != "sub"}}
            if kind == "unmerged" and other:
                claims["from_sub"] = gate.release(session, app, policy, other, wanted={"pseudonym"}, via="feed").sub
        except (ReleaseRefused, PersonNotFound):
            continue
        items.append(Change(cursor=event.id, kind=kind, at=event.at.isoformat(), claims=claims))
    next_cursor = events[-1].id if events and events[-1].id is not None else after
    return items, next_cursor
