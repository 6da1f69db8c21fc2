"""The re-encryption / re-hash pass: moves every row of a key kind to its current version, resumably.

A batch reads the kind's cursor (`key_rotation`), the next rows of its table in primary-key order, writes
their values under the current version and advances the cursor — all in the caller's transaction. A pass
killed halfway rolls back only its unfinished batch and continues from the cursor on the next run; a row
already on the current version is left alone, so running a batch twice changes nothing twice. Rows written
meanwhile by a process that still had the old keys are found by `keys status`; `keys reencrypt` starts a
new pass for them.

The job (`keys.reencrypt`) runs one batch and queues the next in the same transaction, so `idbroker
worker` drives a pass batch after batch; `idbroker keys reencrypt` runs the same batches with a progress bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings, get_settings
from idbroker.directory.protect import Protector
from idbroker.jobs.queue import enqueue
from idbroker.jobs.worker import Retry, register
from idbroker.keys.columns import TABLES, TARGETS, Target
from idbroker.keys.keyring import keyring, version_number
from idbroker.keys.models import KeyRotation

QUEUE = "keys.reencrypt"
BATCH = 500
ATTEMPTS = 100  # a worker not yet restarted after the rotation retries every minute for this long


class StaleKeys(RuntimeError):
    """This process does not have the version the pass moves rows to (it started before the rotation)."""


@dataclass(frozen=True)
class Batch:
    examined: int  # rows read
    changed: int  # values moved to the current version
    finished: bool


def _locked_cursor(session: Session, kind: str) -> KeyRotation | None:
    query = select(KeyRotation).where(KeyRotation.kind == kind)  # type: ignore[arg-type]
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalars(query).first()


def start_pass(session: Session, kind: str, version: str) -> KeyRotation:
    """Start (or restart) the kind's pass towards `version`, from its first table."""
    cursor = _locked_cursor(session, kind) or KeyRotation(kind=kind, version=version)
    cursor.version, cursor.table_name, cursor.last_key = version, TARGETS[kind][0].table, None
    cursor.values_moved, cursor.started_at, cursor.finished_at = 0, utcnow(), None
    session.add(cursor)
    session.flush()
    return cursor


def pending(session: Session, kind: str) -> KeyRotation | None:
    """The kind's unfinished pass, if any."""
    cursor = session.get(KeyRotation, kind)
    return cursor if cursor is not None and cursor.finished_at is None else None


def _key_value(target: Target, text: str | None) -> Any:
    column = TABLES[target.table].c[target.key]
    if text is None:
        return None
    return int(text) if column.type.python_type is int else text


def run_batch(session: Session, settings: Settings, kind: str, *, size: int = BATCH, actor: str = "system") -> Batch:
    """One batch of the kind's pass, in the caller's transaction (see the module docstring)."""
    cursor = _locked_cursor(session, kind)
    if cursor is None or cursor.finished_at is not None:
        return Batch(0, 0, True)
    ring = keyring(settings, kind)
    if version_number(cursor.version) > version_number(ring.current):
        raise StaleKeys(
            f"this process's current {kind} key is {ring.current}, the pass moves rows to {cursor.version}: "
            "restart it so that it reads the new key"
        )
    if cursor.version != ring.current:  # rotated again since the pass started: head for the newest
        cursor = start_pass(session, kind, ring.current)
    protector = Protector.from_settings(settings)
    targets = TARGETS[kind]
    index = next(i for i, t in enumerate(targets) if t.table == cursor.table_name)
    target = targets[index]
    table = TABLES[target.table]
    key = table.c[target.key]
    query = select(key, *(table.c[name] for name in target.columns)).order_by(key).limit(size)
    if cursor.last_key is not None:
        query = query.where(key > _key_value(target, cursor.last_key))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    rows = list(session.execute(query))
    changed = 0
    for row in rows:
        changes, moved = target.redo(protector, row)
        if changes:
            session.execute(update(table).where(key == row[0]).values(**changes))
            changed += moved
    cursor.values_moved += changed
    if len(rows) == size:
        cursor.last_key = str(rows[-1][0])
    elif index + 1 < len(targets):
        cursor.table_name, cursor.last_key = targets[index + 1].table, None
    else:
        cursor.finished_at = utcnow()
        audit(
            session,
            actor=actor,
            action="keys.reencrypted",
            details={"kind": kind, "version": cursor.version, "values": cursor.values_moved},
        )
    session.add(cursor)
    session.flush()
    return Batch(len(rows), changed, cursor.finished_at is not None)


def enqueue_pass(session: Session, kind: str, version: str) -> None:
    """Start the pass and queue its first batch for `idbroker worker`."""
    start_pass(session, kind, version)
    payload = {"kind": kind, "version": version}
    enqueue(session, QUEUE, payload, dedupe_key=f"{QUEUE}:{kind}:{version}:start", max_attempts=ATTEMPTS)


def handle(session: Session, payload: dict[str, Any]) -> None:
    """The job: one batch, then the next batch queued in the same transaction until the pass is done."""
    try:
        batch = run_batch(session, get_settings(), payload["kind"])
    except StaleKeys as exc:
        raise Retry(str(exc), after=60.0) from None
    if not batch.finished:
        enqueue(session, QUEUE, payload, max_attempts=ATTEMPTS)


register(QUEUE, handle)
