"""A person's own privacy pages: who used my data, my consents (with withdraw), download my data.

- `data_uses` — the apps and staff that read or changed the person's data, when and why, from the audit
  log (every ID that resolves to them; their own actions left out): one line per app (how often, when
  last, which claims, for what purpose), and each use by staff. Staff appear by role, never by name or
  uid; apps by their registered name. The page turns each `DataUse` into a sentence in the person's
  language; this module knows no language.
- `my_consents` / `withdraw_consent` — the separate consents (PIPL Art. 23) and their withdrawal, through
  the release module (`idbroker.release.consent`), which revokes the app's sign-ins at once.
- `my_data` — everything the broker holds on the person as one JSON document (PIPL Art. 45: access and
  copy), recorded as `privacy.download`. National IDs are never in it (only whether one is on file).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from idbroker.audit.chain import DETAIL_KEYS, append
from idbroker.audit.models import AuditEvent
from idbroker.audit.search import AuditEntry, entry_of
from idbroker.clock import utcnow
from idbroker.contacts.primary import primary_contacts
from idbroker.contacts.provenance import contacts_of
from idbroker.directory.models import SourceRecord
from idbroker.directory.queries import records_of, resolve_person
from idbroker.linking.models import MergeOperation
from idbroker.release.consent import consents_of, withdraw
from idbroker.release.models import App, Consent, Pseudonym
from idbroker.release.pseudonyms import absorbed_ids
from idbroker.staff.models import StaffRole
from idbroker.staff.roles import ROLES

USES = {
    "release": "app_received",
    "helpdesk.record.open": "staff_opened",
    "helpdesk.review.open": "staff_reviewed",
    "contact.helpdesk.corrected": "staff_corrected",
    "contact.update_link.sent": "staff_sent_link",
    "review.merge": "staff_merged",
    "review.keep_apart": "staff_kept_apart",
    "person.merge": "records_merged",
    "person.unmerge": "records_unmerged",
    "audit.report": "officer_report",
    "audit.search": "officer_search",
}
"""Events that are a use of the person's data, and the kind of sentence each becomes."""
MAX_USES = 200
RECENT_TIMES = 10


@dataclass(frozen=True)
class DataUse:
    at: datetime
    kind: str  # a value of USES
    who: str  # an app's name, or a staff role (helpdesk, privacy_officer, admin), or "system"
    what: list[str]  # claims or fields
    purpose: str | None
    reason: str | None


@dataclass(frozen=True)
class AppSummary:
    app: str
    name: str
    times: int
    last: datetime
    claims: list[str]
    purpose: str | None
    recent: list[datetime]  # the latest RECENT_TIMES releases, newest first


@dataclass(frozen=True)
class DataUses:
    uses: list[DataUse]  # by staff and the system, newest first, at most MAX_USES
    apps: list[AppSummary] = field(default_factory=list)  # releases to apps, one line per app


def my_ids(session: Session, person_id: str) -> list[str]:
    person = resolve_person(session, person_id)
    return [person.id, *absorbed_ids(session, person.id)]


def _staff_role(session: Session, actor: str) -> str:
    """The role a staff actor (`person:<id>`) holds, for the sentence; the person is never named."""
    person_id = actor.partition(":")[2]
    uids = session.scalars(select(SourceRecord.key).where(SourceRecord.person_id == person_id)).all()
    roles = set(session.scalars(select(StaffRole.role).where(StaffRole.uid.in_(uids))).all()) if uids else set()  # type: ignore[attr-defined]
    for role in ROLES:
        if role in roles:
            return role
    return "staff"


def _who(session: Session, entry: AuditEntry, apps: dict[str, str], roles: dict[str, str]) -> str:
    if entry.actor.startswith("app:"):
        client = entry.app or entry.actor[4:]
        if client not in apps:
            app = session.get(App, client)
            apps[client] = app.name if app else client
        return apps[client]
    if entry.actor.startswith("person:"):
        if entry.actor not in roles:
            roles[entry.actor] = _staff_role(session, entry.actor)
        return roles[entry.actor]
    return "system"


def data_uses(session: Session, person_id: str) -> DataUses:
    """Who used the person's data: recent uses in plain terms, and a summary per app."""
    ids = my_ids(session, person_id)
    own = {f"person:{pid}" for pid in ids}
    statement = (
        select(AuditEvent)
        .where(AuditEvent.subject.in_(ids), AuditEvent.action.in_(list(USES)))  # type: ignore[union-attr, attr-defined]
        .order_by(AuditEvent.seq.desc())  # type: ignore[attr-defined]
    )
    apps: dict[str, str] = {}
    roles: dict[str, str] = {}
    uses: list[DataUse] = []
    per_app: dict[str, list[AuditEntry]] = {}
    for event in session.scalars(statement):
        if event.actor in own:
            continue
        entry = entry_of(event)
        if entry.action == "release" and entry.app:
            per_app.setdefault(entry.app, []).append(entry)
        elif len(uses) < MAX_USES:
            who = _who(session, entry, apps, roles)
            uses.append(DataUse(entry.at, USES[entry.action], who, entry.what, entry.purpose, entry.reason))
    summaries = []
    for client, entries in per_app.items():
        claims = Counter(claim for entry in entries for claim in entry.what)
        summaries.append(
            AppSummary(
                app=client,
                name=apps.get(client) or _who(session, entries[0], apps, roles),
                times=len(entries),
                last=entries[0].at,
                claims=sorted(claims),
                purpose=entries[0].purpose,
                recent=[entry.at for entry in entries[:RECENT_TIMES]],
            )
        )
    return DataUses(uses, sorted(summaries, key=lambda summary: summary.last, reverse=True))


def my_consents(session: Session, person_id: str) -> list[tuple[Consent, App | None]]:
    return consents_of(session, person_id)


def withdraw_consent(session: Session, person_id: str, client_id: str, *, actor: str) -> bool:
    """Withdraw the person's consent to an app (the release module refuses its later requests)."""
    return withdraw(session, person_id, client_id, actor=actor)


def _event_for_person(entry: AuditEntry) -> dict[str, Any]:
    """An event as the person's copy gives it: what, when, who (as stored), why; no other person's IDs."""
    kept = {key: value for key, value in entry.details.items() if key in DETAIL_KEYS or key == "claims"}
    return {"at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action, "details": kept}


def _record(record: SourceRecord) -> dict[str, Any]:
    return {
        "source": record.source,
        "number": record.key,
        "in_latest_export": record.present,
        "name": record.name,
        "gender": record.gender,
        "birth_date": record.birth_date.isoformat() if record.birth_date else None,
        "phone": record.phone,
        "email": record.email,
        "org": record.org,
        "affiliation": record.affiliation,
        "level": record.level,
        "status": record.status,
        "national_id_on_file": record.national_id_hash is not None,
        "values_set_aside": [{"field": item.get("field"), "reason": item.get("reason")} for item in record.set_aside],
        "first_seen": record.first_seen.isoformat(),
        "last_seen": record.last_seen.isoformat(),
    }


def my_data(session: Session, person_id: str, *, actor: str, client_ip: str | None = None) -> dict[str, Any]:
    """Everything the broker holds on the person, as one JSON-ready document; the download is recorded."""
    ids = my_ids(session, person_id)
    person = resolve_person(session, ids[0])
    primary = primary_contacts(session, person.id)
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.subject.in_(ids)).order_by(AuditEvent.seq)  # type: ignore[union-attr, arg-type]
    )
    history = session.scalars(
        select(MergeOperation)
        .where(or_(MergeOperation.survivor_id.in_(ids), MergeOperation.absorbed_id.in_(ids)))  # type: ignore[attr-defined]
        .order_by(MergeOperation.id)  # type: ignore[arg-type]
    )
    pseudonyms = session.scalars(select(Pseudonym).where(Pseudonym.person_id.in_(ids)))  # type: ignore[attr-defined]
    document: dict[str, Any] = {
        "generated_at": utcnow().isoformat(),
        "person": {"id": person.id, "former_ids": ids[1:], "created_at": person.created_at.isoformat()},
        "records": [_record(record) for record in records_of(session, person.id)],
        "contacts": [
            {
                "kind": view.kind,
                "value": view.value,
                "removed": view.removed,
                "verified_at": view.verified_at.isoformat() if view.verified_at else None,
                "sources": sorted({claim.source for claim in view.claims}),
            }
            for view in contacts_of(session, person.id)
        ],
        "primary": {"phone": primary.phone, "email": primary.email},
        "consents": [
            {
                "app": consent.client_id,
                "app_name": app.name if app else consent.client_id,
                "claims": list(consent.claims),
                "granted_at": consent.granted_at.isoformat(),
            }
            for consent, app in my_consents(session, person.id)
        ],
        "pseudonyms": [{"sector": row.sector, "value": row.value} for row in pseudonyms],
        "merges": [
            {"kind": op.kind, "at": op.at.isoformat(), "reason": op.reason, "records": len(op.record_ids)}
            for op in history
        ],
        "events": [_event_for_person(entry_of(event)) for event in events],
    }
    details: dict[str, Any] = {"purpose": "right of access and copy", "result": "ok"}
    if client_ip:
        details["client_ip"] = client_ip
    append(session, actor=actor, action="privacy.download", subject=person.id, details=details)
    return document


def my_data_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)
