"""Verifying the audit chain: every event's hash, every link, and the head, streamed in sequence order.

It finds an edited event (its hash no longer matches its content), a deleted one (a gap in the sequence
or a broken link), reordered events, and events cut from the end (the head points past the last one).
What a hash chain alone cannot show is a rewrite of the whole tail *and* the head by someone with write
access to the database; signed checkpoints held elsewhere (`checkpoints.py`) close that gap.

An event is intact when its stored hash is the v2 hash of its content (the details digest recomputed from
the details left, their salts and the leaves of removed keys, and equal to the stored digest) or, for a
whole event, the v1 hash of its details text (events written before migration 0007). Accepting either
format gives a forger nothing: an event rewritten with a fresh hash of any format no longer matches the
`prev_hash` of the next one. The `app` and `purpose` search columns must agree with the details.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlmodel import Session

from idbroker.audit.chain import GENESIS_HASH, details_digest, details_leaf, event_hash, event_hash_v2
from idbroker.audit.models import AuditEvent, AuditHead

COLUMNS = (
    AuditEvent.seq,
    AuditEvent.at,
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.subject,
    AuditEvent.details,
    AuditEvent.prev_hash,
    AuditEvent.hash,
    AuditEvent.details_salts,
    AuditEvent.details_removed,
    AuditEvent.details_digest,
    AuditEvent.app,
    AuditEvent.purpose,
)
"""The columns `event_problem` reads, in its argument order."""


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    problem: str | None = None
    bad_seq: int | None = None


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def recomputed_digest(details: dict[str, Any], salts_text: str | None, removed_text: str | None) -> str | None:
    """The digest of an event's details from what is stored; None when the parts do not fit together."""
    salts = _json_object(salts_text)
    removed = _json_object(removed_text) if removed_text is not None else {}
    if salts is None or removed is None or salts.keys() != details.keys() or removed.keys() & details.keys():
        return None
    leaves = {key: details_leaf(key, salts[key], value) for key, value in details.items()}
    leaves.update(removed)
    return details_digest(leaves)


def event_problem(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str | None,
    details: str,
    prev_hash: str,
    stored_hash: str,
    salts: str | None,
    removed: str | None,
    digest: str | None,
    app: str | None,
    purpose: str | None,
) -> str | None:
    """What is wrong with one stored event on its own (its link to the previous one aside); None if intact."""
    values = _json_object(details)
    if values is None:
        return f"event {seq} was altered: its details are not a JSON object"
    intact = False
    if digest is not None:
        computed = recomputed_digest(values, salts, removed)
        intact = computed == digest and event_hash_v2(seq, at, actor, action, subject, digest, prev_hash) == stored_hash
    if not intact and removed is None:
        intact = event_hash(seq, at, actor, action, subject, details, prev_hash) == stored_hash
    if not intact:
        return f"event {seq} was altered: its hash does not match its content"
    if app != values.get("app") or purpose != values.get("purpose"):
        return f"event {seq} was altered: its app or purpose column does not match its details"
    return None


def _failure(checked: int, seq: int, problem: str) -> VerifyReport:
    return VerifyReport(ok=False, checked=checked, problem=problem, bad_seq=seq)


def _snapshot(session: Session) -> Connection:
    """The session's connection, reading one snapshot: appends committed while the log is read (after the
    head) must not look like events missing from the head. SQLite's transaction already is one (and holds
    the write lock); PostgreSQL gets REPEATABLE READ when the session has not begun a transaction yet."""
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return session.connection()
    return session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def verify_chain(session: Session, *, batch: int = 10000) -> VerifyReport:
    """Check the whole log; stops at the first problem and names the sequence number where it is.

    Pass a session that has not begun a transaction, so that the whole log is read as one snapshot.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    connection = _snapshot(session)
    head = connection.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
    if head is None:
        problem = "the audit log has no head row: run `idbroker db upgrade`"
        return VerifyReport(ok=False, checked=0, problem=problem)

    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    while True:
        rows = connection.execute(
            select(*COLUMNS).where(AuditEvent.seq >= expected_seq).order_by(AuditEvent.seq).limit(batch)
        ).all()
        for row in rows:
            seq, stored_prev, stored_hash = row[0], row[6], row[7]
            if seq != expected_seq:
                missing = (
                    f"event {expected_seq} is missing"
                    if seq == expected_seq + 1
                    else f"events {expected_seq} to {seq - 1} are missing"
                )
                return _failure(checked, expected_seq, f"{missing}: the log jumps to event {seq}")
            if stored_prev != prev_hash:
                problem = f"event {seq} does not follow event {seq - 1}: an event was removed or reordered"
                return _failure(checked, seq, problem)
            problem = event_problem(*row)
            if problem is not None:
                return _failure(checked, seq, problem)
            prev_hash = stored_hash
            expected_seq += 1
            checked += 1
        if len(rows) < batch:
            break

    last_seq = expected_seq - 1
    if head.seq != last_seq:
        if head.seq > last_seq:
            problem = (
                f"the head records {head.seq} events but the log ends at event {last_seq}: "
                "events were removed from the end"
            )
            return _failure(checked, last_seq + 1, problem)
        return _failure(checked, head.seq + 1, f"event {head.seq + 1} and later are not recorded in the head")
    if head.hash != prev_hash:
        where = f"event {last_seq}" if last_seq else "an empty log"
        return _failure(checked, last_seq, f"the head does not match {where}: the log was rewritten")
    return VerifyReport(ok=True, checked=checked)
