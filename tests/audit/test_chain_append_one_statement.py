"""The audit append's hash, made by PostgreSQL in one statement there and by Python on SQLite, is the documented
one for any text: quotes, backslashes, control characters and non-ASCII in actor, action and subject."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from idbroker.audit import verify_chain
from idbroker.audit.chain import append, event_hash_v2
from idbroker.audit.models import AuditEvent, AuditHead
from idbroker.db import session_scope

AWKWARD = [
    ("cli:张帅", "import.run", '人员"引号\\反斜杠'),
    ("person:\t\n\x01\x7f", "x.\u2028y", None),
    ("app:é'𝄞", "release", "not NUL, 'odd' ✓"),
]


def test_the_stored_hash_is_the_documented_one_for_any_text(engine: Engine) -> None:
    written = []
    with session_scope(engine) as session:
        for actor, action, subject in AWKWARD:
            written.append(append(session, actor=actor, action=action, subject=subject, details={"k": "值"}))
    with Session(engine) as session:
        for event in written:
            row = session.get(AuditEvent, event.seq)
            assert row is not None and (row.hash, row.prev_hash, row.actor, row.subject) == (
                event.hash,
                event.prev_hash,
                event.actor,
                event.subject,
            )
            expected = event_hash_v2(row.seq, row.at, row.actor, row.action, row.subject, row.details_digest or "",
                                     row.prev_hash)  # fmt: skip
            assert row.hash == expected
        head = session.get(AuditHead, 1)
        assert head is not None and (head.seq, head.hash) == (written[-1].seq, written[-1].hash)
        assert [e.prev_hash for e in written[1:]] == [e.hash for e in written[:-1]]
        assert verify_chain(session).ok
