"""The `staff_role` table: a role granted to a CAS uid."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class StaffRole(SQLModel, table=True):
    __tablename__ = "staff_role"
    __table_args__ = (UniqueConstraint("uid", "role", name="uq_staff_role_uid_role"),)

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(max_length=64, index=True)  # the CAS uid (工号) the staff member signs in with
    role: str = Field(max_length=32)  # helpdesk | privacy_officer | admin
    granted_by: str = Field(max_length=64)  # the audit actor who granted it
    at: datetime = Field(default_factory=utcnow)
