"""The re-encryption cursor: one row per key kind, where its pass towards the current version stands.

A pass walks the tables of its kind in a fixed order, in primary-key order, a batch per transaction; the
batch's rows and the cursor commit together, so a pass killed halfway continues where it stopped.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class KeyRotation(SQLModel, table=True):
    __tablename__ = "key_rotation"

    kind: str = Field(primary_key=True, max_length=32)  # national-id-hash | encryption
    version: str = Field(max_length=16)  # the version this pass moves rows to
    table_name: str = Field(default="", max_length=64)  # the table the cursor is in ("" before the first batch)
    last_key: str | None = Field(default=None, max_length=128)  # the last primary key done in that table
    values_moved: int = 0  # so far (a row may hold several)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
