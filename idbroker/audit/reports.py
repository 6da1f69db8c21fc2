"""A person's access report: who read or changed what of theirs, when, for what purpose — as JSON or CSV.

This is the privacy officer's per-person report and the person's own right of access and copy (PIPL
Art. 45). It covers every ID that resolves to the person. Producing it is recorded (`audit.report`).
CSV cells that a spreadsheet would run as a formula (starting with = + - @ or a tab) are prefixed with `'`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.audit.search import AuditEntry, AuditFilter, entry_of, person_ids, record_read
from idbroker.clock import utcnow

FORMATS = ("json", "csv")
CSV_COLUMNS = (
    "seq",
    "at",
    "actor",
    "actor_kind",
    "action",
    "app",
    "purpose",
    "what",
    "client_ip",
    "result",
    "reason",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AccessReport:
    person_id: str
    ids: list[str]  # the person's own ID and every ID merged into it
    generated_at: datetime
    entries: list[AuditEntry]  # newest first


def events_about(session: Session, ids: list[str]) -> list[AuditEntry]:
    """Every event whose subject is one of `ids`, newest first (index `ix_audit_event_subject`)."""
    statement = select(AuditEvent).where(AuditEvent.subject.in_(ids)).order_by(AuditEvent.seq.desc())  # type: ignore[union-attr, attr-defined]
    return [entry_of(event) for event in session.scalars(statement)]


def access_report(
    session: Session, person: str, *, actor: str, client_ip: str | None = None, purpose: str = "privacy audit"
) -> AccessReport:
    """The report of the person `person` names (an ID or a number); recorded as an `audit.report` event."""
    ids = person_ids(session, person)
    entries = events_about(session, ids)
    record_read(
        session,
        actor=actor,
        action="audit.report",
        query=AuditFilter(person=ids[0]),
        results=len(entries),
        client_ip=client_ip,
        purpose=purpose,
    )
    return AccessReport(person_id=ids[0], ids=ids, generated_at=utcnow(), entries=entries)


def report_json(report: AccessReport) -> str:
    document = {
        "person": report.person_id,
        "ids": report.ids,
        "generated_at": report.generated_at.isoformat(),
        "events": [entry.as_dict() for entry in report.entries],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def report_csv(report: AccessReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in report.entries:
        row = entry.as_dict() | {"actor_kind": entry.actor_kind, "what": " ".join(entry.what)}
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()


def render_report(report: AccessReport, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}: one of {', '.join(FORMATS)}")
    return report_json(report) if fmt == "json" else report_csv(report)
