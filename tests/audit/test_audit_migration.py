"""Migration 0007 on a log that already holds events: their hashes stay, their search columns are filled."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlmodel import Session, select

from idbroker.audit.chain import GENESIS_HASH, append, canonical_json, event_hash
from idbroker.audit.models import AuditEvent
from idbroker.audit.verify import verify_chain
from idbroker.db import session_scope
from idbroker.migrate import downgrade, upgrade


def test_existing_events_keep_their_hashes_and_get_their_search_columns(engine: Engine) -> None:
    downgrade(engine, "0006")
    prev = GENESIS_HASH
    rows = []
    for seq, details in enumerate(
        [{"source": "student", "counts": {"read": 3}}, {"app": "bus", "claims": ["name"], "purpose": "login"}], start=1
    ):
        at = datetime(2026, 1, seq, 8, 0, tzinfo=UTC)
        text_ = canonical_json(details)
        digest = event_hash(seq, at, "cli:old", "import.run", None, text_, prev)
        rows.append({"seq": seq, "at": at, "details": text_, "prev": prev, "hash": digest})
        prev = digest
    with engine.begin() as connection:
        for row in rows:
            connection.execute(
                text(
                    "INSERT INTO audit_event (seq, at, actor, action, subject, details, prev_hash, hash) "
                    "VALUES (:seq, :at, 'cli:old', 'import.run', NULL, :details, :prev, :hash)"
                ),
                row,
            )
        connection.execute(text("UPDATE audit_head SET seq = 2, hash = :hash WHERE id = 1"), {"hash": prev})

    upgrade(engine)
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.hash for e in events] == [row["hash"] for row in rows]  # history is not rewritten
    assert (events[1].app, events[1].purpose) == ("bus", "login") and events[0].app is None
    assert all(e.details_digest is None for e in events)  # format v1: the hash covers the details text
    with session_scope(engine) as session:
        append(session, actor="system", action="after.upgrade", details={"app": "bus"})
    with Session(engine) as session:
        report = verify_chain(session)
        last = session.get(AuditEvent, 3)
    assert report.ok and report.checked == 3
    assert last is not None and last.prev_hash == rows[-1]["hash"] and json.loads(last.details) == {"app": "bus"}
