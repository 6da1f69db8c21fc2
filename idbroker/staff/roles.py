"""Granting, revoking and reading staff roles; every change goes into the audit log with its actor."""

from __future__ import annotations

from sqlmodel import Session, select

from idbroker.audit import chain
from idbroker.directory.queries import people_by_number
from idbroker.staff.models import StaffRole

ROLES = ("helpdesk", "privacy_officer", "admin")
"""helpdesk: find people, fix contacts, review merges · privacy_officer: the audit log · admin: operate the broker."""


class StaffRoleError(ValueError):
    """An unknown role, a uid nobody holds, or a grant that does not exist."""


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise StaffRoleError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")


def _person_of(session: Session, uid: str) -> str:
    people = people_by_number(session, uid)
    if len(people) != 1:
        found = "no person" if not people else f"{len(people)} people"
        raise StaffRoleError(
            f"{found} in the directory hold{'s' if not people else ''} uid {uid!r}: roles go to "
            "the uid of exactly one person (import the HR or CAS export first)"
        )
    return people[0].id


def roles_of(session: Session, uid: str) -> frozenset[str]:
    """The roles `uid` holds right now."""
    return frozenset(session.exec(select(StaffRole.role).where(StaffRole.uid == uid)).all())


def list_grants(session: Session, uid: str | None = None) -> list[StaffRole]:
    statement = select(StaffRole).order_by(StaffRole.uid, StaffRole.role)  # type: ignore[arg-type]
    if uid is not None:
        statement = statement.where(StaffRole.uid == uid)
    return list(session.exec(statement).all())


def grant(session: Session, uid: str, role: str, *, actor: str) -> StaffRole:
    """Give `uid` the role (refused if the role is unknown, the uid is nobody's, or it is held already)."""
    _check_role(role)
    person_id = _person_of(session, uid)
    if role in roles_of(session, uid):
        raise StaffRoleError(f"{uid} already holds the role {role}")
    row = StaffRole(uid=uid, role=role, granted_by=actor)
    session.add(row)
    session.flush()
    chain.append(session, actor=actor, action="staff.grant", subject=person_id, details={"uid": uid, "role": role})
    return row


def revoke(session: Session, uid: str, role: str, *, actor: str) -> None:
    """Take the role away; it stops working on the holder's next request."""
    _check_role(role)
    row = session.exec(select(StaffRole).where(StaffRole.uid == uid, StaffRole.role == role)).first()
    if row is None:
        raise StaffRoleError(f"{uid} does not hold the role {role}")
    session.delete(row)
    session.flush()
    people = people_by_number(session, uid)
    subject = people[0].id if len(people) == 1 else None
    chain.append(session, actor=actor, action="staff.revoke", subject=subject, details={"uid": uid, "role": role})
