"""Per-app statistics from the audit log: per day, how many people an app received data about, how many
claims it received, and in how many releases (the gate's `release` events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, text
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.clock import utcnow

RELEASE_ACTION = "release"


@dataclass(frozen=True)
class AppDay:
    app: str
    day: str  # YYYY-MM-DD (UTC)
    people: int
    claims: int
    releases: int


def _day(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", AuditEvent.at), "YYYY-MM-DD")
    return func.substr(AuditEvent.at, 1, 10)  # SQLite stores "YYYY-MM-DD HH:MM:SS.ffffff" in UTC


def _claims(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.coalesce(func.json_array_length(text("(audit_event.details::json) -> 'claims'")), 0)
    return func.coalesce(func.json_array_length(AuditEvent.details, "$.claims"), 0)


def app_statistics(
    session: Session, *, app: str | None = None, days: int = 30, now: datetime | None = None
) -> list[AppDay]:
    """Each app's releases per day over the last `days` days, newest day first."""
    if not 1 <= days <= 366:
        raise ValueError("days must be between 1 and 366")
    now = now or utcnow()
    dialect = session.get_bind().dialect.name
    day = _day(dialect).label("day")
    statement = (
        select(
            AuditEvent.app,
            day,
            func.count(func.distinct(AuditEvent.subject)),
            func.sum(_claims(dialect)),
            func.count(),
        )
        .where(AuditEvent.action == RELEASE_ACTION, AuditEvent.at >= now - timedelta(days=days))
        .group_by(AuditEvent.app, day)
        .order_by(day.desc(), AuditEvent.app)
    )
    if app is not None:
        statement = statement.where(AuditEvent.app == app)
    return [
        AppDay(app=row[0] or "?", day=row[1], people=int(row[2]), claims=int(row[3] or 0), releases=int(row[4]))
        for row in session.execute(statement)
    ]
