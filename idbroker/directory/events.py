"""Directory events: what happened to a person, in order — the feed that app change feeds and the WeChat
Work sync follow. Each consumer keeps its own cursor (the last event id it handled).

Kinds: `person.created`, `person.updated`, `person.merged` (subject: the survivor, `other`: the absorbed),
`person.unmerged` (subject: the restored person, `other`: the former survivor), `person.left` (no active
record remains), `consent.withdrawn` (the person withdrew their separate consent to one app, `details["app"]`:
only that app's change feed tells it, so that it forgets what it holds — see `idbroker.release.feed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, select
from sqlmodel import Field, Session, SQLModel

from idbroker.clock import utcnow
from idbroker.db import bulk_insert, driver_row

KINDS = ("person.created", "person.updated", "person.merged", "person.unmerged", "person.left", "consent.withdrawn")


class DirectoryEvent(SQLModel, table=True):
    __tablename__ = "directory_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=32, index=True)
    person_id: str = Field(foreign_key="person.id", max_length=32, index=True)
    other_person_id: str | None = Field(default=None, foreign_key="person.id", max_length=32)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


EVENTS = DirectoryEvent.__table__  # type: ignore[attr-defined]


def emit(session: Session, kind: str, person_id: str, *, other: str | None = None, **details: Any) -> None:
    emit_many(session, kind, [person_id], other=other, **details)


def emit_many(
    session: Session, kind: str, person_ids: Iterable[str], *, other: str | None = None, **details: Any
) -> int:
    if kind not in KINDS:
        raise ValueError(f"unknown directory event {kind!r}")
    fixed = {"at": utcnow(), "kind": kind, "other_person_id": other, "details": details}
    columns, as_row = driver_row(session, EVENTS, ["person_id"], fixed)
    rows = [as_row({"person_id": pid}) for pid in dict.fromkeys(person_ids)]
    for start in range(0, len(rows), 20_000):
        bulk_insert(session, EVENTS, columns, rows[start : start + 20_000])
    return len(rows)


def events_after(session: Session, cursor: int, limit: int = 1000) -> list[DirectoryEvent]:
    """Events with an id above `cursor`, oldest first: a consumer's next page."""
    return list(
        session.scalars(
            select(DirectoryEvent).where(DirectoryEvent.id > cursor).order_by(DirectoryEvent.id).limit(limit)
        )  # type: ignore[arg-type, operator]
    )
