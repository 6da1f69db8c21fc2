"""Collecting phones and emails from source records: every record's values become claims of its source.

Run after every import, link, merge and un-merge (`catch_up` follows the directory events, so whatever
changed people is seen once; a merge asks for it just before its transaction commits, so the many merges of
one linking run cost one catch-up). More people waiting than `contacts_inline_collect_limit` (the first
import of a whole campus) are collected by the worker instead, in batches (`contacts.collect` jobs).
For each record of the people concerned:

- a value the record holds is a current claim of the record's source, on the point of the record's person
  (created if new; moved there if the record moved to another person in a merge or un-merge);
- a value the record no longer holds keeps its claim as history, no longer current (`until` = now);
- nothing here touches what a person or the helpdesk said or verified: a re-import never overwrites it.

Then the primary choices of those people — and of anyone else holding a value that changed — are recomputed.
A full import also says again every present record's values: their claims' `last_said` moves to now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, event, insert, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings, get_settings
from idbroker.contacts.models import ContactCursor
from idbroker.contacts.primary import CHOICES, holders_of, recompute
from idbroker.contacts.provenance import CHUNK, CLAIMS, POINTS, RECORDS, chunks, phone_type
from idbroker.directory.events import DirectoryEvent
from idbroker.jobs.queue import enqueue
from idbroker.jobs.worker import register
from idbroker.sources.models import ImportRun


def _values(row: Any) -> list[tuple[str, str]]:
    values = []
    if row.phone:
        values.append(("phone", row.phone))
    if row.email:
        values.append(("email", row.email))
    return values


def collect_people(
    session: Session,
    person_ids: Iterable[str],
    settings: Settings | None = None,
    *,
    recompute_all: bool = False,
    also_recompute: Iterable[str] = (),
) -> int:
    """Bring the record claims of these people up to date, then recompute the primaries that may move: of
    the people whose claims changed, of anyone else holding a value that changed, and of `also_recompute`
    (merged and un-merged people) — or of all of them with `recompute_all`.

    Returns the number of claims created, moved, ended or re-listed.
    """
    ids = sorted(set(person_ids))
    changed = 0
    touched_values: set[tuple[str, str]] = set()
    touched_people: set[str] = set(also_recompute)
    vacated: set[int] = set()
    for chunk in chunks(ids, CHUNK):
        changed += _collect_chunk(session, chunk, touched_values, touched_people, vacated)
    others = holders_of(session, touched_values) if touched_values else set()
    again = set(ids) if recompute_all else touched_people
    recompute(session, sorted(again | others), settings or get_settings())
    _drop_empty_points(session, vacated)
    return changed


def _drop_empty_points(session: Session, point_ids: set[int]) -> None:
    """Points whose record claims all moved to another person (a merge or un-merge) and that nobody else
    spoke for (no person, no helpdesk) are not that person's values: they go."""
    for chunk in chunks(sorted(point_ids)):
        empty = (
            select(POINTS.c.id)
            .where(POINTS.c.id.in_(chunk))
            .where(POINTS.c.verified_at.is_(None), POINTS.c.confirmed_at.is_(None))
            .where(POINTS.c.chosen_at.is_(None), POINTS.c.removed_at.is_(None))
            .where(~POINTS.c.id.in_(select(CLAIMS.c.contact_id).where(CLAIMS.c.contact_id.in_(chunk))))
            .where(~POINTS.c.id.in_(select(CHOICES.c.contact_id).where(CHOICES.c.contact_id.in_(chunk))))
        )
        doomed = list(session.scalars(empty))
        if doomed:
            session.execute(delete(POINTS).where(POINTS.c.id.in_(doomed)))


def _collect_chunk(
    session: Session,
    people: list[str],
    touched: set[tuple[str, str]],
    touched_people: set[str],
    vacated: set[int],
) -> int:
    now = utcnow()
    records = list(
        session.execute(
            select(
                RECORDS.c.id,
                RECORDS.c.person_id,
                RECORDS.c.source,
                RECORDS.c.present,
                RECORDS.c.phone,
                RECORDS.c.email,
                RECORDS.c.first_seen,
                RECORDS.c.last_seen,
            ).where(RECORDS.c.person_id.in_(people))
        )
    )
    if not records:
        return 0
    by_id = {r.id: r for r in records}
    wanted = {(r.id, kind, value): r for r in records for kind, value in _values(r)}
    claims = list(
        session.execute(
            select(
                CLAIMS.c.id,
                CLAIMS.c.contact_id,
                CLAIMS.c.source_record_id,
                CLAIMS.c.current,
                CLAIMS.c.listed,
                CLAIMS.c.first_said,
                CLAIMS.c.last_said,
                CLAIMS.c.until,
                POINTS.c.person_id,
                POINTS.c.kind,
                POINTS.c.value,
            )
            .select_from(CLAIMS.join(POINTS, POINTS.c.id == CLAIMS.c.contact_id))
            .where(CLAIMS.c.source_record_id.in_(list(by_id)))
        )
    )
    collected_before = {c.source_record_id for c in claims}
    points = _points_for(session, people, {(by_id[rid].person_id, kind, value) for rid, kind, value in wanted}, now)

    updates: list[dict[str, Any]] = []
    seen: set[tuple[int, str, str]] = set()
    for claim in claims:
        key = (claim.source_record_id, claim.kind, claim.value)
        row = {
            "cid": claim.id,
            "contact_id": claim.contact_id,
            "current": claim.current,
            "listed": claim.listed,
            "first_said": claim.first_said,
            "last_said": claim.last_said,
            "until": claim.until,
        }
        record = wanted.get(key)
        if record is None:
            if claim.current:  # the record no longer gives this value: keep it as history
                updates.append({**row, "current": False, "until": now})
                touched.add((claim.kind, claim.value))
                touched_people.add(claim.person_id)
            continue
        seen.add(key)
        moved = claim.person_id != record.person_id
        changed = {
            "contact_id": points[(record.person_id, claim.kind, claim.value)],
            "current": True,
            "listed": bool(record.present),
            "first_said": claim.first_said if claim.current else record.last_seen,
            "last_said": max(claim.last_said, record.last_seen),
            "until": None,
        }
        if any(row[name] != value for name, value in changed.items()):
            updates.append({**row, **changed})
        if moved or not claim.current or claim.listed != bool(record.present):
            touched.add((claim.kind, claim.value))
            touched_people.update({claim.person_id, record.person_id})
        if moved:
            vacated.add(claim.contact_id)
    if updates:
        session.execute(update(CLAIMS).where(CLAIMS.c.id == bindparam("cid")), updates)

    inserts = []
    for (rid, kind, value), record in wanted.items():
        if (rid, kind, value) in seen:
            continue
        # A record collected before that now gives a new value changed it at its last import; a record
        # never collected (the first run over an existing directory) has said it since it was first seen.
        since = record.last_seen if rid in collected_before else record.first_seen
        inserts.append(
            {
                "contact_id": points[(record.person_id, kind, value)],
                "source": record.source,
                "source_record_id": rid,
                "current": True,
                "listed": bool(record.present),
                "first_said": since,
                "last_said": record.last_seen,
                "until": None,
            }
        )
        touched.add((kind, value))
        touched_people.add(record.person_id)
    for part in chunks(inserts, 1000):
        session.execute(insert(CLAIMS), part)
    return len(updates) + len(inserts)


def _points_for(
    session: Session, people: list[str], needed: set[tuple[str, str, str]], now: Any
) -> dict[tuple[str, str, str], int]:
    """The ids of the points (person, kind, value) of these people, the missing ones made."""
    points = {
        (p.person_id, p.kind, p.value): p.id
        for p in session.execute(
            select(POINTS.c.id, POINTS.c.person_id, POINTS.c.kind, POINTS.c.value).where(POINTS.c.person_id.in_(people))
        )
    }
    rows = [
        {
            "person_id": pid,
            "kind": kind,
            "value": value,
            "phone_type": phone_type(value) if kind == "phone" else None,
            "state": "active",
            "created_at": now,
            "updated_at": now,
        }
        for pid, kind, value in sorted(needed - set(points))
    ]
    for part in chunks(rows, 1000):
        for point_id, pid, kind, value in session.execute(
            insert(POINTS).returning(POINTS.c.id, POINTS.c.person_id, POINTS.c.kind, POINTS.c.value), part
        ):
            points[(pid, kind, value)] = point_id
    return points


@dataclass
class Pending:
    """People named by directory events after the cursor, up to a cap, and where that stops."""

    people: set[str] = field(default_factory=set)
    regrouped: set[str] = field(default_factory=set)  # merged or un-merged: their primaries are chosen again
    last_event: int = 0
    more: bool = False  # events beyond the cap remain


def _pending(session: Session, after: int, cap: int) -> Pending:
    """Events after `after`, whole events only, until more than `cap` people are named."""
    found = Pending(last_event=after)
    while True:
        rows = list(
            session.execute(
                select(DirectoryEvent.id, DirectoryEvent.kind, DirectoryEvent.person_id, DirectoryEvent.other_person_id)  # type: ignore[call-overload]
                .where(DirectoryEvent.id > found.last_event)
                .order_by(DirectoryEvent.id)
                .limit(5_000)
            )
        )
        if not rows:
            return found
        for event_id, kind, person_id, other in rows:
            if not kind.startswith("person."):  # e.g. consent.withdrawn: nobody's contacts changed
                found.last_event = event_id
                continue
            named = {person_id, other} - {None}
            if found.people and len(found.people) + len(named - found.people) > cap:
                found.more = True
                return found
            found.people |= named
            if kind in ("person.merged", "person.unmerged"):
                found.regrouped |= named
            found.last_event = event_id


PENDING = "contacts.catch_up_pending"
QUEUE = "contacts.collect"
BATCH = 2000
log = logging.getLogger("idbroker.contacts.collect")


def catch_up_before_commit(session: Session) -> None:
    """Collect once, just before this transaction commits (a merge or un-merge changed people): many merges
    in one linking run cost one catch-up, and no caller can forget it."""
    session.info[PENDING] = True


@event.listens_for(OrmSession, "before_commit")
def _before_commit(session: Session) -> None:
    if session.info.pop(PENDING, False):
        catch_up(session)


@event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)


def _cursor(session: Session) -> ContactCursor:
    cursor = session.execute(
        select(ContactCursor).where(ContactCursor.id == 1).with_for_update()  # type: ignore[arg-type]
    ).scalar_one_or_none()
    if cursor is None:  # the migration makes the row; a database restored without it gets it back here
        cursor = ContactCursor(id=1, event_id=0)
        session.add(cursor)
        session.flush()
    return cursor


def catch_up(session: Session, settings: Settings | None = None) -> int:
    """Collect the people of every directory event since the last catch-up, in the caller's transaction.

    More than `contacts_inline_collect_limit` people waiting (a first import of a whole campus) is work for
    the worker: a `contacts.collect` job is queued instead, which collects them in batches, each committed.
    Returns the number of people collected here.
    """
    settings = settings or get_settings()
    session.info.pop(PENDING, None)
    cursor = _cursor(session)
    found = _pending(session, cursor.event_id, settings.contacts_inline_collect_limit)
    if found.more:
        enqueue(session, QUEUE, {"after": cursor.event_id}, dedupe_key=f"{QUEUE}:{cursor.event_id}")
        log.info("contacts: more than %d people changed; the worker collects them", len(found.people))
        return 0
    return _collect_pending(session, cursor, found, settings)


def _collect_pending(session: Session, cursor: ContactCursor, found: Pending, settings: Settings) -> int:
    if found.last_event != cursor.event_id:
        cursor.event_id = found.last_event
        session.add(cursor)
    if not found.people:
        return 0
    collect_people(session, found.people, settings, also_recompute=found.regrouped)
    return len(found.people)


def collect_in_batches(session: Session, settings: Settings | None = None, *, batch: int = BATCH) -> int:
    """Catch up however many people are waiting: each person once, `batch` people per committed transaction,
    the cursor moved at the end (a crash half-way collects again, which changes nothing twice)."""
    settings = settings or get_settings()
    start = _cursor(session).event_id
    found = _pending(session, start, cap=2**62)
    session.commit()
    people = sorted(found.people)
    for first in range(0, len(people), batch):
        part = people[first : first + batch]
        collect_people(session, part, settings, also_recompute=found.regrouped & set(part))
        session.commit()
    cursor = _cursor(session)
    if found.last_event > cursor.event_id:
        cursor.event_id = found.last_event
        session.add(cursor)
    session.commit()
    return len(people)


def collect_job(session: Session, payload: dict[str, Any]) -> None:
    """The worker's handler for `contacts.collect` (queued by a catch-up with too many people waiting)."""
    collected = collect_in_batches(session)
    log.info("contacts: collected %d people", collected)


register(QUEUE, collect_job)


def collect_after_import(session: Session, run: ImportRun, settings: Settings | None = None) -> int:
    """After an import: a full export said every present record's values again; then catch up on events."""
    if run.full:
        now = utcnow()
        present = select(RECORDS.c.id).where(RECORDS.c.source == run.source, RECORDS.c.present)
        session.execute(
            update(CLAIMS).where(CLAIMS.c.source_record_id.in_(present), CLAIMS.c.current).values(last_said=now)
        )
    # A record listed again after an absence (revived) changes no person, so no event names it.
    revived = select(RECORDS.c.person_id).where(
        RECORDS.c.source == run.source,
        RECORDS.c.present,
        RECORDS.c.last_seen >= run.started_at,
        RECORDS.c.import_run_id != run.id,
        RECORDS.c.person_id.is_not(None),
    )
    people = set(session.scalars(revived))
    if people:
        collect_people(session, people, settings)
    return catch_up(session, settings) + len(people)
