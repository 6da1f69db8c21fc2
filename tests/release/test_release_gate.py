"""The release gate: only what the policy allows, under the app's pseudonym, audited in the same
transaction — and the only code that turns a person into claim values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from plugins.apps import Campus, MakeApp
from sqlalchemy import Engine, delete, func, select
from sqlmodel import Session

from idbroker.audit.chain import AuditHeadMissingError
from idbroker.audit.models import AuditEvent, AuditHead
from idbroker.config import get_settings
from idbroker.release.gate import ReleaseGate, ReleaseRefused
from idbroker.release.models import App, Pseudonym
from idbroker.release.policies import policy_for

PACKAGE = Path(__file__).resolve().parent.parent.parent / "idbroker"
EVERYTHING = {"pseudonym", "nickname", "name", "affiliation", "degree_level", "department", "student_number",
              "staff_number", "phone", "email"}  # fmt: skip


def release(engine: Engine, client_id: str, person: str, wanted: set[str] | None, via: str = "resolve") -> dict:
    settings = get_settings()
    with Session(engine) as session:
        app = session.get(App, client_id)
        assert app is not None
        result = ReleaseGate(settings).release(
            session, app, policy_for(settings.policies_dir, client_id), person, wanted=wanted, via=via
        )
        session.commit()
    return result.claims


def test_only_what_the_policy_allows_whatever_is_asked(engine: Engine, campus: Campus, make_app: MakeApp) -> None:
    make_app("mail", claims=("pseudonym", "nickname", "name", "department", "email"))
    asked_all = release(engine, "mail", campus.zhang_bachelor, EVERYTHING)
    assert set(asked_all) == {"sub", "nickname", "name", "department", "email", "email_verified"}
    assert asked_all["name"] == "张帅" and asked_all["department"] == "计算机学院"
    assert asked_all["email"] == "zhangshuai@example.edu" and asked_all["email_verified"] is False
    assert asked_all["nickname"] != "张帅"  # a nickname is not the real name unless the policy says so
    text = json.dumps(asked_all, ensure_ascii=False)
    assert "1120101234" not in text and "+86" not in text and campus.zhang_bachelor not in text

    assert set(release(engine, "mail", campus.zhang_bachelor, {"pseudonym", "phone", "student_number"})) == {"sub"}
    assert set(release(engine, "mail", campus.zhang_bachelor, None)) == set(asked_all)


def test_campus_attributes_and_a_real_name_nickname(engine: Engine, campus: Campus, make_app: MakeApp) -> None:
    make_app(
        "registry",
        claims=(
            "pseudonym",
            "nickname",
            "name",
            "affiliation",
            "degree_level",
            "student_number",
            "staff_number",
            "phone",
        ),
        nickname_is_real_name=True,
    )
    student = release(engine, "registry", campus.li, None)
    assert student["nickname"] == student["name"] == "李丽"
    assert (student["affiliation"], student["degree_level"], student["student_number"]) == (
        "student",
        "bachelor",
        "1120150001",
    )
    assert student["phone_number"] == "+8613800000003" and student["phone_number_verified"] is False
    assert "staff_number" not in student  # no value, no claim
    teacher = release(engine, "registry", campus.wang, None)
    assert teacher["staff_number"] == "6120170032" and "student_number" not in teacher


def test_every_release_is_audited(engine: Engine, campus: Campus, make_app: MakeApp) -> None:
    make_app("bus", claims=("pseudonym", "nickname"), purpose="校车时刻与乘车码")
    release(engine, "bus", campus.li, {"pseudonym", "nickname", "name"}, via="userinfo")
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "release")).one()
    assert (event.actor, event.subject) == ("app:bus", campus.li)
    assert json.loads(event.details) == {
        "app": "bus",
        "claims": ["nickname", "pseudonym"],
        "purpose": "校车时刻与乘车码",
        "via": "userinfo",
    }


def test_no_audit_record_no_release(engine: Engine, campus: Campus, make_app: MakeApp) -> None:
    """Policy check, pseudonym and audit record are one transaction: if the audit cannot be written,
    the release fails and the pseudonym it made is gone with it."""
    make_app("bus")
    settings = get_settings()
    with Session(engine) as session:
        session.execute(delete(AuditHead))
        app = session.get(App, "bus")
        assert app is not None
        with pytest.raises(AuditHeadMissingError):
            ReleaseGate(settings).release(
                session, app, policy_for(settings.policies_dir, "bus"), campus.li, wanted=None, via="resolve"
            )
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Pseudonym)) == 0


def test_a_disabled_app_gets_nothing(engine: Engine, campus: Campus, make_app: MakeApp) -> None:
    make_app("bus")
    with Session(engine) as session:
        app = session.get(App, "bus")
        assert app is not None
        app.enabled = False
        session.add(app)
        session.commit()
    with pytest.raises(ReleaseRefused) as refused:
        release(engine, "bus", campus.li, None)
    assert refused.value.reason == "app_disabled"


def test_only_the_gate_reads_claim_values() -> None:
    """Nothing about a person leaves any other way: `person_claims` is called by the gate alone, and no
    web router reads source records or pseudonyms directly."""
    callers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if re.search(r"\bperson_claims\(", path.read_text(encoding="utf-8"))
    }
    assert callers == {"release/claims.py", "release/gate.py"}
    for name in ("oidc.py", "apps_api.py"):
        source = (PACKAGE / "web" / "routers" / name).read_text(encoding="utf-8")
        assert "SourceRecord" not in source and "records_of" not in source and "Pseudonyms(" not in source
