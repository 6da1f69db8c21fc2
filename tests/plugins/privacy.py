"""Fixtures for the staff consoles and the privacy officer: a small campus with staff and a review case.

- `privacy_campus` — imports (through the real importer and linker) a campus where:
  * 张帅 holds 1120101234 (bachelor, with a national ID) and is `zhang`;
  * 張帥 holds 2120143257 (master, same birth date, no ID, another phone): the linker only queues a review
    case between the two (`zhang_master`, the case `candidate`);
  * 王芳 (helpdesk, uid 6120100001), 刘洋 (second helpdesk, 6120100003), 李娜 (privacy officer, 6120100002),
    and 陈静, a student (1120109999), who holds no role; 赵磊 (6120100004) is staff with the admin role.
  Roles are granted through `idbroker.staff.roles.grant`, like `idbroker staff grant`.
- `add_events(engine, n, **kwargs)` — n audit events through `append`.
- `signed_in_token(web_client, cas_server, uid)` — sign in through CAS; the session's CSRF token.
- `audit_count(engine)` — how many events the log holds (a refused request must add none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from factories import CAS_HEADER, HR_HEADER, STUDENT_HEADER, cas, national_id, staff, student, write_csv
from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.audit.chain import append
from idbroker.audit.models import AuditEvent
from idbroker.config import get_settings
from idbroker.db import session_scope
from idbroker.directory.queries import people_by_number
from idbroker.linking.models import MergeCandidate
from idbroker.sources.importer import run_import
from idbroker.staff.roles import grant

ZHANG_ID = national_id(date(1992, 5, 17), 123)
HELPDESK_UID, PRIVACY_UID, SECOND_HELPDESK_UID, ADMIN_UID = "6120100001", "6120100002", "6120100003", "6120100004"
STUDENT_UID = "1120109999"


@dataclass(frozen=True)
class Campus:
    zhang: str  # 张帅's person id (1120101234)
    zhang_master: str  # 張帥's person id (2120143257), a review case apart from `zhang`
    candidate: int  # the review case between them
    helpdesk: str  # person ids of the staff and the student
    second_helpdesk: str
    privacy_officer: str
    admin: str
    student: str


def person_of(session: Session, number: str) -> str:
    people = people_by_number(session, number)
    assert len(people) == 1, f"{number}: {people}"
    return people[0].id


def campus_files(tmp_path: Path) -> dict[str, Path]:
    students = [
        student("1120101234", "张帅", "男", "1992-05-17", ZHANG_ID, "本科", "2010", "13800001111", "zs@example.edu.cn"),
        student("2120143257", "張帥", "男", "1992-05-17", "", "硕士", "2014", "13900002222"),
        student(
            "1120109999", "陈静", "女", "2001-03-09", national_id(date(2001, 3, 9), 88), "本科", "2019", "13700007777"
        ),
    ]
    teachers = [
        staff(
            "6120100001",
            "王芳",
            "女",
            "1985-01-02",
            national_id(date(1985, 1, 2), 11),
            "13600000001",
            category="管理人员",
            department="信息中心",
        ),
        staff(
            "6120100002",
            "李娜",
            "女",
            "1980-07-08",
            national_id(date(1980, 7, 8), 22),
            "13600000002",
            category="管理人员",
            department="保密办",
        ),
        staff(
            "6120100003",
            "刘洋",
            "男",
            "1990-11-12",
            national_id(date(1990, 11, 12), 33),
            "13600000003",
            category="管理人员",
            department="信息中心",
        ),
        staff(
            "6120100004",
            "赵磊",
            "男",
            "1979-04-05",
            national_id(date(1979, 4, 5), 44),
            "13600000004",
            category="管理人员",
            department="信息中心",
        ),
    ]
    accounts = [
        cas(uid, name, affiliation="staff")
        for uid, name in (
            (HELPDESK_UID, "王芳"),
            (PRIVACY_UID, "李娜"),
            (SECOND_HELPDESK_UID, "刘洋"),
            (ADMIN_UID, "赵磊"),
        )
    ]
    accounts += [cas("1120101234", "张帅"), cas("2120143257", "張帥"), cas(STUDENT_UID, "陈静")]
    return {
        "student": write_csv(tmp_path / "student.csv", STUDENT_HEADER, students),
        "hr": write_csv(tmp_path / "hr.csv", HR_HEADER, teachers),
        "cas": write_csv(tmp_path / "cas.csv", CAS_HEADER, accounts),
    }


def load_campus(engine: Engine, tmp_path: Path) -> Campus:
    files = campus_files(tmp_path)
    settings = get_settings()
    for source in ("student", "hr", "cas"):
        with session_scope(engine) as session:
            run_import(session, source=source, location=str(files[source]), settings=settings, actor="test")
    with session_scope(engine) as session:
        for uid, role in (
            (HELPDESK_UID, "helpdesk"),
            (SECOND_HELPDESK_UID, "helpdesk"),
            (PRIVACY_UID, "privacy_officer"),
            (ADMIN_UID, "admin"),
        ):
            grant(session, uid, role, actor="cli:test")
        zhang, master = person_of(session, "1120101234"), person_of(session, "2120143257")
        assert zhang != master, "the two 张帅 records must stay a review case, not merge"
        candidate = session.scalars(
            select(MergeCandidate).where(
                MergeCandidate.state == "open",
                MergeCandidate.person_a.in_([zhang, master]),  # type: ignore[attr-defined]
                MergeCandidate.person_b.in_([zhang, master]),  # type: ignore[attr-defined]
            )
        ).first()
        assert candidate is not None and candidate.id is not None, "the linker should queue the pair for review"
        return Campus(
            zhang=zhang,
            zhang_master=master,
            candidate=candidate.id,
            helpdesk=person_of(session, HELPDESK_UID),
            second_helpdesk=person_of(session, SECOND_HELPDESK_UID),
            privacy_officer=person_of(session, PRIVACY_UID),
            admin=person_of(session, ADMIN_UID),
            student=person_of(session, STUDENT_UID),
        )


@pytest.fixture
def privacy_campus(request: pytest.FixtureRequest, tmp_path: Path) -> Campus:
    engine = request.getfixturevalue("engine" if "engine" in request.fixturenames else "sqlite_engine")
    return load_campus(engine, tmp_path)


def add_events(engine: Engine, count: int, **kwargs: Any) -> None:
    """`count` events through `append`; `details` defaults to an app read with a client IP."""
    details = kwargs.pop("details", {"app": "bus", "claims": ["name"], "purpose": "login", "client_ip": "10.0.0.7"})
    with session_scope(engine) as session:
        for _ in range(count):
            append(
                session,
                actor=kwargs.get("actor", "app:bus"),
                action=kwargs.get("action", "release"),
                subject=kwargs.get("subject"),
                details=details,
            )


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in_token(client: Any, cas_server: Any, uid: str) -> str:
    """Sign `uid` in on a `web_client` (through a real CAS ticket) and return the CSRF token of its session."""
    from plugins.web import sign_in

    response = sign_in(client, cas_server, uid)
    assert response.status_code == 303, response.text
    match = _CSRF.search(client.get("/", headers={"accept": "text/html"}).text)
    assert match is not None
    return match.group(1)


def audit_count(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(AuditEvent.seq)).all())  # type: ignore[call-overload]
