"""Retention: the details of old audit events are reduced as `policies/retention.yaml` says, and the chain
still verifies.

Two steps, each after its own period:

1. network logs (Cybersecurity Law Art. 21: kept at least 6 months) — after `network_logs.keep_days` the
   details keys listed there (client IP, user agent) are removed;
2. processing records (PIPL Art. 56: kept at least 3 years) — after `processing_records.keep_days` only
   `processing_records.keep_keys` remain (which app, for what purpose, with what result).

Who did what to whom and when (seq, time, actor, action, subject) is never reduced: it is what the hash
covers directly. A removed key leaves its leaf hash behind (see `idbroker.audit.chain`), so the details
digest, the event's hash and every link stay verifiable, and the values kept are still checked.

This is the one path that changes stored events, and it is deliberate and audited: on PostgreSQL the
append-only trigger lets an UPDATE through only inside a transaction that set
`idbroker.audit_retention = on`, and only when nothing the hash covers changes; every run appends an
`audit.retention` event with its counts. An event whose content does not verify is never reduced (that
would destroy the evidence): it is reported instead. Events written before migration 0007 (hash format
v1, which covers the whole details text) are kept whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, bindparam, select, text, update
from sqlmodel import Session

from idbroker.audit.chain import append, canonical_json, details_leaf
from idbroker.audit.models import AuditEvent
from idbroker.audit.verify import COLUMNS, event_problem
from idbroker.clock import utcnow
from idbroker.config import Settings, get_settings
from idbroker.jobs.queue import enqueue
from idbroker.jobs.worker import register
from idbroker.policy import load_policy

SIX_MONTHS_DAYS = 183
THREE_YEARS_DAYS = 1096
QUEUE = "audit.retention"
NETWORK, PROCESSING = 1, 2  # retention_level after each step


class NetworkLogs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_days: int = Field(ge=SIX_MONTHS_DAYS, description="network logs are kept at least 6 months")
    keys: tuple[str, ...] = Field(min_length=1)


class ProcessingRecords(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_days: int = Field(ge=THREE_YEARS_DAYS, description="processing records are kept at least 3 years")
    keep_keys: tuple[str, ...] = ()


class RetentionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    network_logs: NetworkLogs
    processing_records: ProcessingRecords
    batch: int = Field(default=5000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _network_first(self) -> RetentionPolicy:
        if self.processing_records.keep_days < self.network_logs.keep_days:
            raise ValueError("processing_records.keep_days must not be shorter than network_logs.keep_days")
        overlap = set(self.network_logs.keys) & set(self.processing_records.keep_keys)
        if overlap:
            raise ValueError(f"network log keys cannot be kept as processing records: {', '.join(sorted(overlap))}")
        return self


def policy_file(settings: Settings) -> Path:
    return settings.policies_dir / "retention.yaml"


def load_retention_policy(settings: Settings) -> RetentionPolicy:
    return load_policy(policy_file(settings), RetentionPolicy)


@dataclass
class RetentionReport:
    network: int = 0  # events whose network details were removed
    processing: int = 0  # events reduced to their processing record
    legacy_kept: int = 0  # v1 events kept whole
    unverifiable: list[int] = field(default_factory=list)  # events not reduced because they do not verify

    def as_details(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "processing": self.processing,
            "legacy_kept": self.legacy_kept,
            "unverifiable": len(self.unverifiable),
            "first_unverifiable": self.unverifiable[0] if self.unverifiable else None,
        }


def _reduce(row: Any, remove: set[str] | None, keep: set[str] | None) -> dict[str, Any] | None:
    """The new stored form of one verified v2 event: keys in `remove` (or all but `keep`) removed."""
    values: dict[str, Any] = json.loads(row.details)
    salts: dict[str, str] = json.loads(row.details_salts)
    removed: dict[str, str] = json.loads(row.details_removed) if row.details_removed else {}
    dropping = [key for key in values if (key in remove if remove is not None else key not in (keep or set()))]
    if not dropping:
        return None
    for key in dropping:
        removed[key] = details_leaf(key, salts.pop(key), values.pop(key))
    return {
        "b_seq": row.seq,
        "b_details": canonical_json(values),
        "b_salts": canonical_json(salts),
        "b_removed": canonical_json(removed) if removed else None,
        "b_app": values.get("app"),
        "b_purpose": values.get("purpose"),
    }


def _last_seq_before(connection: Connection, cutoff: datetime) -> int:
    found = connection.execute(
        select(AuditEvent.seq).where(AuditEvent.at < cutoff).order_by(AuditEvent.at.desc()).limit(1)  # type: ignore[attr-defined]
    ).scalar()
    return int(found or 0)


def _step(
    connection: Connection,
    policy: RetentionPolicy,
    report: RetentionReport,
    *,
    level: int,
    cutoff: datetime,
    remove: set[str] | None,
    keep: set[str] | None,
    now: datetime,
) -> int:
    bound = _last_seq_before(connection, cutoff)
    done = 0
    statement = (
        update(AuditEvent)
        .where(AuditEvent.seq == bindparam("b_seq"))
        .values(
            details=bindparam("b_details"),
            details_salts=bindparam("b_salts"),
            details_removed=bindparam("b_removed"),
            app=bindparam("b_app"),
            purpose=bindparam("b_purpose"),
            retention_level=level,
            reduced_at=now,
        )
    )
    for source_level in range(level):
        cursor = 0
        while True:
            rows = connection.execute(
                select(*COLUMNS, AuditEvent.retention_level)
                .where(
                    AuditEvent.retention_level == source_level,
                    AuditEvent.seq > cursor,
                    AuditEvent.seq <= bound,
                    AuditEvent.at < cutoff,
                )
                .order_by(AuditEvent.seq)
                .limit(policy.batch)
            ).all()
            if not rows:
                break
            cursor = rows[-1].seq
            changes: list[dict[str, Any]] = []
            untouched: list[int] = []  # nothing to remove (or format v1): only marked as handled
            for row in rows:
                if row.details_digest is None:
                    untouched.append(row.seq)
                    report.legacy_kept += 1
                elif event_problem(*row[: len(COLUMNS)]) is not None:
                    report.unverifiable.append(row.seq)
                elif (change := _reduce(row, remove, keep)) is None:
                    untouched.append(row.seq)
                else:
                    changes.append(change)
            if changes:
                connection.execute(statement, changes)
                done += len(changes)
            if untouched:
                connection.execute(
                    update(AuditEvent).where(AuditEvent.seq.in_(untouched)).values(retention_level=level)  # type: ignore[attr-defined]
                )
    return done


def apply_retention(
    session: Session, policy: RetentionPolicy, *, actor: str, now: datetime | None = None
) -> RetentionReport:
    """Reduce every event older than the policy's periods, in the caller's transaction, and record the run."""
    now = now or utcnow()
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:  # the deliberate path through the append-only trigger, for this transaction only
        connection.execute(text("SELECT set_config('idbroker.audit_retention', 'on', true)"))
    report = RetentionReport()
    try:
        report.network = _step(
            connection,
            policy,
            report,
            level=NETWORK,
            cutoff=now - timedelta(days=policy.network_logs.keep_days),
            remove=set(policy.network_logs.keys),
            keep=None,
            now=now,
        )
        report.processing = _step(
            connection,
            policy,
            report,
            level=PROCESSING,
            cutoff=now - timedelta(days=policy.processing_records.keep_days),
            remove=None,
            keep=set(policy.processing_records.keep_keys),
            now=now,
        )
    finally:
        if postgres:
            connection.execute(text("SELECT set_config('idbroker.audit_retention', 'off', true)"))
    details = report.as_details() | {
        "network_keep_days": policy.network_logs.keep_days,
        "processing_keep_days": policy.processing_records.keep_days,
    }
    append(session, actor=actor, action="audit.retention", details=details)
    return report


def run_retention_job(session: Session, payload: dict[str, Any]) -> None:
    """The worker's periodic retention run, then the next one queued."""
    settings = get_settings()
    apply_retention(session, load_retention_policy(settings), actor="system:retention")
    schedule(session, settings.audit_retention_interval_seconds)


def schedule(session: Session, interval_seconds: int) -> None:
    """Queue the next periodic retention run (one per interval, however often this is called)."""
    slot = int((utcnow() + timedelta(seconds=interval_seconds)).timestamp()) // interval_seconds
    enqueue(session, QUEUE, {}, delay=interval_seconds, dedupe_key=f"{QUEUE}:{interval_seconds}:{slot}")


register(QUEUE, run_retention_job)  # `idbroker worker` runs it (idbroker.jobs.handlers.HANDLER_MODULES)
