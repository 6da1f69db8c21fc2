"""The recorded state: what the broker pushed to WeChat Work, member by member and department by department.

WeChat Work no longer returns members' mobiles and emails to the contacts secret (48009), so the broker
keeps its own record of what it pushed and compares the directory against that. Mobiles and emails are
recorded only as keyed hashes: enough to see that a value changed, never the value.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class WeComMember(SQLModel, table=True):
    __tablename__ = "wecom_member"

    userid: str = Field(primary_key=True, max_length=64)
    # The person whose ID the userid was derived from: never changes, even when that ID is merged away.
    person_id: str = Field(foreign_key="person.id", max_length=32, unique=True)
    in_corp: bool = False  # created, adopted or synced by a batch job: the member exists in the corp
    pending_job: str | None = Field(default=None, max_length=128, index=True)  # a batch job creating it
    name: str | None = Field(default=None, max_length=64)
    departments: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    mobile_hash: str | None = Field(default=None, max_length=64)
    email_hash: str | None = Field(default=None, max_length=64)
    enabled: bool = True
    retired: bool = False  # a merge gave the person another member; an un-merge may bring this one back
    inactive_since: datetime | None = None  # first sync that saw no active role (the leaver grace starts)
    followed: bool = False  # from subscribe / unsubscribe callbacks
    follow_changed_at: datetime | None = None
    invited_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    pushed_at: datetime | None = None


class WeComConflict(SQLModel, table=True):
    """Something the sync could not push and will not force: for the helpdesk to resolve.

    `field` is mobile, email or userid; `reason` taken (another member holds it; mobiles and emails are
    unique in a corp), invalid (WeChat Work refused the value) or missing (no mobile and no email at all).
    While the person's value keeps the same hash, the sync does not push it again; once it changes (or the
    other member lets go of it and the sync succeeds), the conflict is gone.
    """

    __tablename__ = "wecom_conflict"
    __table_args__ = (UniqueConstraint("userid", "field", name="uq_wecom_conflict_userid_field"),)

    id: int | None = Field(default=None, primary_key=True)
    userid: str = Field(max_length=64, index=True)
    person_id: str = Field(foreign_key="person.id", max_length=32)
    field: str = Field(max_length=16)
    reason: str = Field(max_length=16)
    value_hash: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow)


class WeComDepartment(SQLModel, table=True):
    __tablename__ = "wecom_department"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    name: str = Field(max_length=64)
    parent_id: int
    order: int = 0
    in_corp: bool = False
    pushed_at: datetime | None = None


class WeComBatch(SQLModel, table=True):
    """A `batch/syncuser` job: submitted, then finished (its result read) — or lost (its id unknown)."""

    __tablename__ = "wecom_batch"

    jobid: str = Field(primary_key=True, max_length=128)
    state: str = Field(default="submitted", max_length=16)  # submitted | done | lost
    members: int = 0
    failures: int = 0
    submitted_at: datetime = Field(default_factory=utcnow)
    callback_at: datetime | None = None  # the batch_job_result callback arrived
    finished_at: datetime | None = None


class WeComCursor(SQLModel, table=True):
    """How far a follower of the directory events has read (the last event id it handled)."""

    __tablename__ = "wecom_cursor"

    name: str = Field(primary_key=True, max_length=32)
    position: int = 0
