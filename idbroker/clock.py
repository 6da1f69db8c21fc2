"""The one clock: aware UTC datetimes, stored the same way on SQLite and PostgreSQL."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
