"""The audit log: append-only events, each holding the hash of the one before; signed checkpoints of it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    # Searches filter on one column and want the newest events first: each index ends with seq, so a
    # page is a short backward walk of one index on PostgreSQL too (SQLite indexes end with the rowid anyway).
    __table_args__ = (
        Index("ix_audit_event_subject_seq", "subject", "seq"),
        Index("ix_audit_event_actor_seq", "actor", "seq"),
        Index("ix_audit_event_action_seq", "action", "seq"),
        Index("ix_audit_event_app_seq", "app", "seq"),
        Index("ix_audit_event_purpose_seq", "purpose", "seq"),
        Index("ix_audit_event_retention", "retention_level", "seq"),
    )

    seq: int = Field(primary_key=True)  # 1, 2, 3 … assigned under the head lock, never reused
    at: datetime = Field(index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    subject: str | None = Field(default=None, max_length=32)  # person id
    details: str  # canonical JSON of what is left of the details (all of them until retention reduces them)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # Retention-safe hashing (format v2, see chain.py): the hash covers `details_digest`, the digest of one
    # salted leaf per details key; a key removed by retention leaves its leaf in `details_removed`.
    details_salts: str | None = None  # canonical JSON {key: salt} of the keys still in `details`
    details_removed: str | None = None  # canonical JSON {key: leaf} of the keys retention removed
    details_digest: str | None = Field(default=None, max_length=64)
    # Search columns, copies of details["app"] and details["purpose"] (verify checks they agree).
    app: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(default=None, max_length=500)
    # Retention bookkeeping, outside the hash: 0 whole, 1 network details removed, 2 processing details reduced.
    retention_level: int = Field(default=0)
    reduced_at: datetime | None = None


class AuditHead(SQLModel, table=True):
    """One row: the last sequence number and hash. Updating it serialises appends on every database."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """The head of the log at one moment, signed with the broker's checkpoint key (Ed25519)."""

    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True)
    hash: str = Field(max_length=64)
    at: datetime
    key_id: str = Field(max_length=32)
    public_key: str = Field(max_length=64)  # raw Ed25519 public key, URL-safe base64
    signature: str = Field(max_length=128)  # over the canonical statement (see checkpoints.py), URL-safe base64
    actor: str = Field(max_length=64)
