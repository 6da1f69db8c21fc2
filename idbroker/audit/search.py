"""Searching the audit log: by person, app, staff member (actor), action, purpose and time, newest first.

Every event comes back as an `AuditEntry` that names the actor, the subject, what was read or changed,
the purpose, the client IP and the result (from the details keys of `idbroker.audit.chain.DETAIL_KEYS`).
A person filter covers every ID that resolves to them (IDs merged into them included). Reading the log
is itself a read of people's data: `search_events` records who searched for what in an `audit.search`
event (filters are ids and codes, never a phone or name).

Pages come in `limit` events; the next page starts before the last `seq` seen (keyset pagination, cheap
on ten million events with the indexes of migration 0007).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import Session

from idbroker.audit.chain import append
from idbroker.audit.models import AuditEvent
from idbroker.directory.queries import PersonNotFound
from idbroker.linking.explain import find_people
from idbroker.release.pseudonyms import absorbed_ids

MAX_LIMIT = 1000


class AuditSearchError(ValueError):
    """A search that cannot be run (an unknown person, a bad time range, a bad limit)."""


@dataclass(frozen=True)
class AuditFilter:
    person: str | None = None  # a person ID or any number a person holds
    app: str | None = None  # an app's client id
    actor: str | None = None  # as stored: `person:<id>` (staff), `app:<client>`, `cli:<user>`, `system`
    action: str | None = None  # exact, or a prefix ending in `*` (`helpdesk.*`)
    purpose: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_details(self) -> dict[str, Any]:
        found = {key: value for key, value in asdict(self).items() if value is not None}
        for key in ("since", "until"):
            if key in found:
                found[key] = found[key].isoformat()
        return found


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str | None
    app: str | None
    purpose: str | None
    what: list[str]  # the fields, claims or changes concerned (names, never values)
    client_ip: str | None
    result: str | None
    reason: str | None
    details: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)  # details keys retention has removed

    @property
    def actor_kind(self) -> str:
        """`self` (the person acting on their own data), `staff`, `app`, `cli` or `system`."""
        prefix, _, rest = self.actor.partition(":")
        if prefix == "person" and rest == self.subject:
            return "self"
        return {"person": "staff", "app": "app", "cli": "cli"}.get(prefix, "system")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: int | None  # pass as `before` for the next (older) page; None at the end


def _names(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    if isinstance(value, dict):
        return sorted(str(key) for key in value)
    return [str(value)] if value is not None else []


def entry_of(event: AuditEvent | Any) -> AuditEntry:
    """An `AuditEntry` from a stored event (a model instance or a row with the same column names)."""
    details: dict[str, Any] = json.loads(event.details)
    removed = sorted(json.loads(event.details_removed)) if event.details_removed else []
    what = _names(details.get("fields") or details.get("claims") or details.get("changed"))
    ip, result, reason = details.get("client_ip"), details.get("result"), details.get("reason")
    return AuditEntry(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        app=event.app,
        purpose=event.purpose,
        what=what,
        client_ip=ip if isinstance(ip, str) else None,
        result=result if isinstance(result, str) else None,
        reason=reason if isinstance(reason, str) else None,
        details=details,
        removed=removed,
    )


def person_ids(session: Session, query: str) -> list[str]:
    """The person a query names (an ID, an absorbed ID or a number) and every ID merged into them."""
    people = find_people(session, query)
    if not people:
        raise PersonNotFound(f"no person and no record with the number {query!r}")
    if len(people) > 1:
        raise AuditSearchError(f"{len(people)} people hold {query!r}: search by one of their person IDs")
    person = people[0]
    return [person.id, *absorbed_ids(session, person.id)]


def filtered(session: Session, query: AuditFilter) -> Select[Any]:
    """The SELECT of the events a filter matches (unordered, unlimited)."""
    if any("\x00" in value for value in (query.person, query.app, query.actor, query.action, query.purpose) if value):
        raise AuditSearchError("a filter cannot contain a NUL character")
    if query.since and query.until and query.since >= query.until:
        raise AuditSearchError("the start of the time range must be before its end")
    statement = select(AuditEvent)
    if query.person:
        ids = person_ids(session, query.person)
        statement = statement.where(
            AuditEvent.subject == ids[0] if len(ids) == 1 else AuditEvent.subject.in_(ids)  # type: ignore[union-attr]
        )
    if query.app:
        statement = statement.where(AuditEvent.app == query.app)
    if query.actor:
        statement = statement.where(AuditEvent.actor == query.actor)
    if query.action:
        if query.action.endswith("*"):
            prefix = query.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            statement = statement.where(AuditEvent.action.like(prefix + "%", escape="\\"))  # type: ignore[attr-defined]
        else:
            statement = statement.where(AuditEvent.action == query.action)
    if query.purpose:
        statement = statement.where(AuditEvent.purpose == query.purpose)
    if query.since:
        statement = statement.where(AuditEvent.at >= query.since)
    if query.until:
        statement = statement.where(AuditEvent.at < query.until)
    return statement


def read_page(session: Session, query: AuditFilter, *, limit: int = 100, before: int | None = None) -> AuditPage:
    """One page of matching events, newest first, without recording the read (callers record it)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise AuditSearchError(f"limit must be between 1 and {MAX_LIMIT}")
    statement = filtered(session, query)
    if before is not None:
        statement = statement.where(AuditEvent.seq < before)
    events = session.scalars(statement.order_by(AuditEvent.seq.desc()).limit(limit + 1)).all()  # type: ignore[attr-defined]
    entries = [entry_of(event) for event in events[:limit]]
    return AuditPage(entries, entries[-1].seq if len(events) > limit else None)


def record_read(
    session: Session,
    *,
    actor: str,
    action: str,
    query: AuditFilter,
    results: int,
    client_ip: str | None = None,
    purpose: str = "privacy audit",
) -> None:
    """Append the event that says who read the audit log, with which filters, and how much came back."""
    subject = None
    details: dict[str, Any] = {"filters": query.as_details(), "results": results, "purpose": purpose}
    if query.person:
        subject = person_ids(session, query.person)[0]
        details["filters"]["person"] = subject  # the ID, never a number typed into the form
    if client_ip:
        details["client_ip"] = client_ip
    append(session, actor=actor, action=action, subject=subject, details=details)


def search_events(
    session: Session,
    query: AuditFilter,
    *,
    actor: str,
    limit: int = 100,
    before: int | None = None,
    client_ip: str | None = None,
) -> AuditPage:
    """A page of matching events; the search itself is recorded as an `audit.search` event."""
    page = read_page(session, query, limit=limit, before=before)
    record_read(
        session, actor=actor, action="audit.search", query=query, results=len(page.entries), client_ip=client_ip
    )
    return page
