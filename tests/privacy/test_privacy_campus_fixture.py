"""The fixture campus is what the console tests assume: a review case between two 张帅, staff with roles."""

from __future__ import annotations

from plugins.privacy import Campus
from sqlalchemy import Engine
from sqlmodel import Session

from idbroker.staff.roles import roles_of


def test_the_campus_has_a_review_case_and_staff_roles(sqlite_engine: Engine, privacy_campus: Campus) -> None:
    assert privacy_campus.zhang != privacy_campus.zhang_master
    with Session(sqlite_engine) as session:
        assert roles_of(session, "6120100001") == {"helpdesk"}
        assert roles_of(session, "6120100002") == {"privacy_officer"}
        assert roles_of(session, "1120109999") == frozenset()
