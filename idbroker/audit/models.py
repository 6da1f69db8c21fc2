"""The audit log: append-only events, each holding the hash of the one before."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    seq: int = Field(primary_key=True)  # 1, 2, 3 … assigned under the head lock, never reused
    at: datetime
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64, index=True)
    subject: str | None = Field(default=None, max_length=32, index=True)  # person id
    details: str  # canonical JSON, exactly the text that was hashed
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the last sequence number and hash. Updating it serialises appends on every database."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)
