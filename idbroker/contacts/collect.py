"""Collecting phones and emails from source records: every record's values become claims of its source.

Run after every import, link, merge and un-merge (`catch_up` follows the directory events, so whatever
changed people is seen once). For each record of the people concerned:

- a value the record holds is a current claim of the record's source, on the point of the record's person
  (created if new; moved there if the record moved to another person in a merge or un-merge);
- a value the record no longer holds keeps its claim as history, no longer current (`until` = now);
- nothing here touches what a person or the helpdesk said or verified: a re-import never overwrites it.

Then the primary choices of those people — and of anyone else holding a value that changed — are recomputed.
A full import also says again every present record's values: their claims' `last_said` moves to now.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings, get_settings
from idbroker.contacts.models import ContactCursor
from idbroker.contacts.primary import CHOICES, holders_of, recompute
from idbroker.contacts.provenance import CHUNK, CLAIMS, POINTS, RECORDS, chunks, phone_type
from idbroker.directory.events import DirectoryEvent
from idbroker.sources.models import ImportRun


def _values(row: Any) -> list[tuple[str, str]]:
    values = []
    if row.phone:
        values.append(("phone", row.phone))
    if row.email:
        values.append(("email", row.email))
    return values


def collect_people(session: Session, person_ids: Iterable[str], settings: Settings | None = None) -> int:
    """Bring the record claims of these people up to date, then recompute the primaries it may move.

    Returns the number of claims created, moved or ended.
    """
    ids = sorted(set(person_ids))
    changed = 0
    touched_values: set[tuple[str, str]] = set()
    vacated: set[int] = set()
    for chunk in chunks(ids, CHUNK):
        changed += _collect_chunk(session, chunk, touched_values, vacated)
    others = holders_of(session, touched_values) - set(ids) if touched_values else set()
    recompute(session, [*ids, *sorted(others)], settings or get_settings())
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


def _collect_chunk(session: Session, people: list[str], touched: set[tuple[str, str]], vacated: set[int]) -> int:
    now = utcnow()
    records = list(
        session.execute(
            select(
                RECORDS.c.id,
                RECORDS.c.person_id,
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
                CLAIMS.c.last_said,
                POINTS.c.person_id,
                POINTS.c.kind,
                POINTS.c.value,
            )
            .select_from(CLAIMS.join(POINTS, POINTS.c.id == CLAIMS.c.contact_id))
            .where(CLAIMS.c.source_record_id.in_(list(by_id)))
        )
    )
    collected_before = {c.source_record_id for c in claims}
    points = {
        (p.person_id, p.kind, p.value): p.id
        for p in session.execute(
            select(POINTS.c.id, POINTS.c.person_id, POINTS.c.kind, POINTS.c.value).where(POINTS.c.person_id.in_(people))
        )
    }
    missing = sorted({(by_id[rid].person_id, kind, value) for rid, kind, value in wanted} - set(points))
    if missing:
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
            for pid, kind, value in missing
        ]
        for part in chunks(rows, 1000):
            for point_id, pid, kind, value in session.execute(
                insert(POINTS).returning(POINTS.c.id, POINTS.c.person_id, POINTS.c.kind, POINTS.c.value), part
            ):
                points[(pid, kind, value)] = point_id

    updates: list[dict[str, Any]] = []
    seen: set[tuple[int, str, str]] = set()
    for claim in claims:
        key = (claim.source_record_id, claim.kind, claim.value)
        record = wanted.get(key)
        if record is None:
            if claim.current:  # the record no longer gives this value: keep it as history
                updates.append({"cid": claim.id, "contact_id": None, "current": False, "last_said": claim.last_said})
                touched.add((claim.kind, claim.value))
            continue
        seen.add(key)
        target = points[(record.person_id, claim.kind, claim.value)]
        moved = claim.person_id != record.person_id
        last_said = max(claim.last_said, record.last_seen)
        if moved or not claim.current or last_said != claim.last_said:
            updates.append(
                {
                    "cid": claim.id,
                    "contact_id": target if moved else None,
                    "current": True,
                    "last_said": last_said,
                    "first_said": record.last_seen if not claim.current else None,
                }
            )
            if moved or not claim.current:
                touched.add((claim.kind, claim.value))
            if moved:
                vacated.add(claim.contact_id)
    _apply_updates(session, updates, now)

    sources = dict(session.execute(select(RECORDS.c.id, RECORDS.c.source).where(RECORDS.c.id.in_(list(by_id)))).all())
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
                "source": sources[rid],
                "source_record_id": rid,
                "current": True,
                "first_said": since,
                "last_said": record.last_seen,
                "until": None,
            }
        )
        touched.add((kind, value))
    for part in chunks(inserts, 1000):
        session.execute(insert(CLAIMS), part)
    return len(updates) + len(inserts)


def _apply_updates(session: Session, updates: list[dict[str, Any]], now: Any) -> None:
    for update_ in updates:
        values: dict[str, Any] = {"current": update_["current"], "last_said": update_["last_said"]}
        values["until"] = None if update_["current"] else now
        if update_["contact_id"] is not None:
            values["contact_id"] = update_["contact_id"]
        if update_.get("first_said") is not None:
            values["first_said"] = update_["first_said"]
        session.execute(update(CLAIMS).where(CLAIMS.c.id == update_["cid"]).values(**values))


def _event_people(session: Session, after: int) -> tuple[set[str], int]:
    people: set[str] = set()
    last = after
    while True:
        rows = list(
            session.execute(
                select(DirectoryEvent.id, DirectoryEvent.person_id, DirectoryEvent.other_person_id)  # type: ignore[call-overload]
                .where(DirectoryEvent.id > last)
                .order_by(DirectoryEvent.id)
                .limit(10_000)
            )
        )
        if not rows:
            return people, last
        for event_id, person_id, other in rows:
            people.add(person_id)
            if other:
                people.add(other)
            last = event_id


def catch_up(session: Session, settings: Settings | None = None) -> int:
    """Collect the people of every directory event since the last catch-up (in the caller's transaction)."""
    cursor = session.execute(
        select(ContactCursor).where(ContactCursor.id == 1).with_for_update()  # type: ignore[arg-type]
    ).scalar_one_or_none()
    if cursor is None:
        cursor = ContactCursor(id=1, event_id=0)
        session.add(cursor)
        session.flush()
    people, last = _event_people(session, cursor.event_id)
    if last != cursor.event_id:
        cursor.event_id = last
        session.add(cursor)
    if not people:
        return 0
    collect_people(session, people, settings)
    return len(people)


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
    done = catch_up(session, settings)
    if people:
        collect_people(session, people, settings)
    return done + len(people)
