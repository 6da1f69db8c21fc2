"""`idbroker export identities PATH`: which record belongs to which person (a privacy-officer operation)."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.directory.models import SourceRecord
from idbroker.linking.models import MergeCandidate

RECORDS = SourceRecord.__table__  # type: ignore[attr-defined]
IDENTITY_COLUMNS = ("person", "source", "record", "status")


def export_identities(session: Session, path: Path, *, actor: str) -> int:
    query = select(RECORDS.c.person_id, RECORDS.c.source, RECORDS.c.key, RECORDS.c.present).order_by(
        RECORDS.c.person_id, RECORDS.c.source, RECORDS.c.key
    )
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(IDENTITY_COLUMNS)
        for person, source, key, present in session.execute(query):
            writer.writerow([person or "", source, key, "active" if present else "inactive"])
            rows += 1
    audit(session, actor=actor, action="export.identities", details={"file": path.name, "rows": rows})
    return rows


def export_candidates(session: Session, path: Path, *, actor: str) -> int:
    query = select(MergeCandidate).where(MergeCandidate.state.in_(["open", "deferred"]))  # type: ignore[attr-defined]
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["candidate", "person_a", "person_b", "score", "state"])
        for (c,) in session.execute(query):
            writer.writerow([c.id, c.person_a, c.person_b, c.score, c.state])
            rows += 1
    audit(session, actor=actor, action="export.candidates", details={"file": path.name, "rows": rows})
    return rows
