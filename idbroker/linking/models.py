"""Linking state: merge candidates for review, merges with their history, pairs kept apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class MergeCandidate(SQLModel, table=True):
    """Two people the linker could not decide about: a case for a human."""

    __tablename__ = "merge_candidate"

    id: int | None = Field(default=None, primary_key=True)
    person_a: str = Field(foreign_key="person.id", max_length=32, index=True)
    person_b: str = Field(foreign_key="person.id", max_length=32, index=True)
    record_id: int | None = Field(default=None, foreign_key="source_record.id")
    score: float
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="open", max_length=16, index=True)  # open | merged | kept_apart | deferred
    created_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=500)


class KeptApart(SQLModel, table=True):
    """A human said these two are different people: never propose or merge them again."""

    __tablename__ = "kept_apart"
    __table_args__ = (UniqueConstraint("person_a", "person_b", name="uq_kept_apart_pair"),)

    id: int | None = Field(default=None, primary_key=True)
    person_a: str = Field(foreign_key="person.id", max_length=32, index=True)
    person_b: str = Field(foreign_key="person.id", max_length=32, index=True)
    actor: str = Field(max_length=64)
    reason: str | None = Field(default=None, max_length=500)
    at: datetime = Field(default_factory=utcnow)


class MergeOperation(SQLModel, table=True):
    """A merge (or its undoing) with who, when and why, and what moved, so it can be undone exactly."""

    __tablename__ = "merge_operation"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # merge | unmerge
    survivor_id: str = Field(foreign_key="person.id", max_length=32, index=True)
    absorbed_id: str = Field(foreign_key="person.id", max_length=32, index=True)
    record_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    actor: str = Field(max_length=64)
    reason: str = Field(max_length=500)
    score: float | None = None
    evidence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow)
    undone_by: int | None = Field(default=None, foreign_key="merge_operation.id")
