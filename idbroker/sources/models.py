"""Import runs: one row per `idbroker import`, with its counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class ImportRun(SQLModel, table=True):
    __tablename__ = "import_run"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    location: str = Field(max_length=255)  # file name or LDAP URL, never a credential
    full: bool = True
    actor: str = Field(max_length=64)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
