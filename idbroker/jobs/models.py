"""Jobs: work done after the request that asked for it (deliveries, callbacks, syncs), kept in the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (Index("ix_job_claim", "queue", "state", "run_after"),)

    id: int | None = Field(default=None, primary_key=True)
    queue: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="ready", max_length=16)  # ready | running | done | dead
    attempts: int = 0
    max_attempts: int = 8
    run_after: datetime = Field(default_factory=utcnow)
    locked_by: str | None = Field(default=None, max_length=64)
    locked_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)
    dedupe_key: str | None = Field(default=None, max_length=128, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
