"""Opening a person's full record at the helpdesk: only with a reason (a ticket or a call), always recorded.

The record shows what the helpdesk needs to help: every source record with its values and provenance,
the phones and emails with where each came from, the merge history (to un-merge), the open review cases
and the apps the person consented to. National IDs are never shown (only whether one is on file); values
set aside at import are shown with their reason, national-ID-like ones masked. Opening appends a
`helpdesk.record.open` event naming the person, the staff member, the reason, the client IP and the
parts of the record shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlmodel import Session

from idbroker.audit.chain import append
from idbroker.config import Settings
from idbroker.contacts.provenance import ContactView, contacts_of
from idbroker.directory.models import Person, SourceRecord
from idbroker.directory.protect import Protector
from idbroker.directory.queries import records_of, resolve_person
from idbroker.helpdesk.reasons import check_reason
from idbroker.linking.models import MergeCandidate, MergeOperation
from idbroker.release.consent import consents_of
from idbroker.release.pseudonyms import absorbed_ids

SHOWN = ("records", "contacts", "history", "candidates", "consents")
"""The parts of a record the helpdesk sees, as the audit event lists them."""


@dataclass(frozen=True)
class SetAside:
    field: str
    reason: str
    value: str  # decrypted; a national ID masked to its first and last characters


@dataclass(frozen=True)
class RecordLine:
    """One source record as the helpdesk sees it."""

    id: int
    source: str
    key: str
    present: bool
    name: str | None
    gender: str | None
    birth_date: date | None
    phone: str | None
    email: str | None
    org: str | None
    affiliation: str | None
    level: str | None
    status: str | None
    national_id_on_file: bool
    set_aside: list[SetAside]
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class ConsentLine:
    client_id: str
    app_name: str
    claims: list[str]
    granted_at: datetime


@dataclass(frozen=True)
class FullRecord:
    person: Person
    aliases: list[str]
    records: list[RecordLine]
    contacts: list[ContactView]
    history: list[MergeOperation]
    candidates: list[MergeCandidate]
    consents: list[ConsentLine]


def _masked_id(value: str) -> str:
    return value[:2] + "*" * max(0, len(value) - 4) + value[-2:] if len(value) > 4 else "*" * len(value)


def _set_aside(protector: Protector, record: SourceRecord) -> list[SetAside]:
    found = []
    for item in record.set_aside or []:
        try:
            value = protector.decrypt(item.get("value", ""), purpose="set_aside")
        except (ValueError, KeyError):
            value = "?"
        if item.get("field") == "national_id":
            value = _masked_id(value)
        found.append(SetAside(str(item.get("field")), str(item.get("reason")), value))
    return found


def _line(protector: Protector, record: SourceRecord) -> RecordLine:
    return RecordLine(
        id=record.id or 0,
        source=record.source,
        key=record.key,
        present=record.present,
        name=record.name,
        gender=record.gender,
        birth_date=record.birth_date,
        phone=record.phone,
        email=record.email,
        org=record.org,
        affiliation=record.affiliation,
        level=record.level,
        status=record.status,
        national_id_on_file=record.national_id_hash is not None,
        set_aside=_set_aside(protector, record),
        first_seen=record.first_seen,
        last_seen=record.last_seen,
    )


def merge_history(session: Session, person_ids: list[str]) -> list[MergeOperation]:
    """Merges and un-merges involving any of these IDs, newest first."""
    return list(
        session.scalars(
            select(MergeOperation)
            .where(or_(MergeOperation.survivor_id.in_(person_ids), MergeOperation.absorbed_id.in_(person_ids)))  # type: ignore[attr-defined]
            .order_by(MergeOperation.id.desc())  # type: ignore[union-attr]
        )
    )


def open_record(
    session: Session,
    settings: Settings,
    person_id: str,
    *,
    actor: str,
    reason: str,
    client_ip: str | None = None,
) -> FullRecord:
    """The full record of a person, for a stated reason; recorded in the audit log in the caller's transaction."""
    why = check_reason(reason)
    person = resolve_person(session, person_id)
    aliases = absorbed_ids(session, person.id)
    ids = [person.id, *aliases]
    protector = Protector.from_settings(settings)
    candidates = list(
        session.scalars(
            select(MergeCandidate).where(
                MergeCandidate.state.in_(["open", "deferred"]),  # type: ignore[attr-defined]
                or_(MergeCandidate.person_a.in_(ids), MergeCandidate.person_b.in_(ids)),  # type: ignore[attr-defined]
            )
        )
    )
    consents = [
        ConsentLine(consent.client_id, app.name if app else consent.client_id, list(consent.claims), consent.granted_at)
        for consent, app in consents_of(session, person.id)
    ]
    record = FullRecord(
        person=person,
        aliases=aliases,
        records=[_line(protector, r) for r in records_of(session, person.id)],
        contacts=contacts_of(session, person.id),
        history=merge_history(session, ids),
        candidates=candidates,
        consents=consents,
    )
    details: dict[str, object] = {"reason": why, "purpose": "helpdesk", "fields": list(SHOWN), "result": "ok"}
    if client_ip:
        details["client_ip"] = client_ip
    if person.id != person_id:
        details["asked"] = person_id
    append(session, actor=actor, action="helpdesk.record.open", subject=person.id, details=details)
    return record
