"""Verifying the audit chain: every event's hash, every link, and the head, streamed in sequence order.

It finds an edited event (its hash no longer matches its content), a deleted one (a gap in the sequence
or a broken link), reordered events, and events cut from the end (the head points past the last one).
What a hash chain alone cannot show is a rewrite of the whole tail *and* the head by someone with write
access to the database; checkpoints held elsewhere (a later issue) close that gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlmodel import Session

from idbroker.audit.chain import GENESIS_HASH, event_hash
from idbroker.audit.models import AuditEvent, AuditHead


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    problem: str | None = None
    bad_seq: int | None = None


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

    columns = (
        AuditEvent.seq,
        AuditEvent.at,
        AuditEvent.actor,
        AuditEvent.action,
        AuditEvent.subject,
        AuditEvent.details,
        AuditEvent.prev_hash,
        AuditEvent.hash,
    )
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    while True:
        rows = connection.execute(
            select(*columns).where(AuditEvent.seq >= expected_seq).order_by(AuditEvent.seq).limit(batch)
        ).all()
        for seq, at, actor, action, subject, details, stored_prev, stored_hash in rows:
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
            if event_hash(seq, at, actor, action, subject, details, stored_prev) != stored_hash:
                return _failure(checked, seq, f"event {seq} was altered: its hash does not match its content")
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
