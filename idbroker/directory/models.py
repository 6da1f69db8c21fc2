"""The directory: people and the source records that speak of them.

A person is only an opaque ID; everything known about them lives in source records, each of which
keeps where it came from (source, import run, when first and last seen). Merged people stay as rows
whose `merged_into` points at the survivor, so an absorbed ID still resolves.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class Person(SQLModel, table=True):
    __tablename__ = "person"

    id: str = Field(primary_key=True, max_length=32)
    state: str = Field(default="active", max_length=16)  # active | merged
    merged_into: str | None = Field(default=None, foreign_key="person.id", max_length=32, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SourceRecord(SQLModel, table=True):
    """One row of one source system, normalised. Its key is its number within its source."""

    __tablename__ = "source_record"
    __table_args__ = (
        UniqueConstraint("source", "key", name="uq_source_record_source_key"),
        Index("ix_source_record_name_birth", "name_key", "birth_date"),
        Index("ix_source_record_pinyin_birth", "name_pinyin", "birth_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    key: str = Field(max_length=64, index=True)
    person_id: str | None = Field(default=None, foreign_key="person.id", max_length=32, index=True)
    present: bool = True  # false once a full export no longer lists it; never deleted

    name: str | None = Field(default=None, max_length=128)
    name_key: str | None = Field(default=None, max_length=128)  # characters, simplified, no spaces
    name_pinyin: str | None = Field(default=None, max_length=160)  # canonical pinyin key
    gender: str | None = Field(default=None, max_length=1)  # M | F
    birth_date: date | None = None
    national_id_hash: str | None = Field(default=None, max_length=64, index=True)
    national_id_cipher: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=20, index=True)  # E.164
    email: str | None = Field(default=None, max_length=254, index=True)
    org: str | None = Field(default=None, max_length=128)  # 学院 / 部门
    affiliation: str | None = Field(default=None, max_length=32)  # student | staff | faculty | …
    level: str | None = Field(default=None, max_length=16)  # bachelor | master | doctoral
    status: str | None = Field(default=None, max_length=32)  # the source's own status, mapped
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Values that failed validation: kept for the helpdesk (encrypted), never used for matching.
    set_aside: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    row_hash: str = Field(max_length=64)

    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)
    import_run_id: int | None = Field(default=None, foreign_key="import_run.id")

    link_score: float | None = None
    link_evidence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    linked_at: datetime | None = None
