"""Staff roles: granted and revoked on the CLI (audited with the actor), enforced on the server per request."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from plugins.web import add_person, sign_in
from sqlalchemy import Engine
from sqlmodel import Session, select
from standins.cas_server import CasStandIn
from typer.testing import CliRunner

from idbroker.audit.models import AuditEvent
from idbroker.cli.main import app
from idbroker.cli.running import cli_actor
from idbroker.staff.require import require_role
from idbroker.staff.roles import roles_of

runner = CliRunner()
STAFF = "6120170032"
STUDENT = "1120101234"


def cli(*args: str, ok: bool = True) -> str:
    result = runner.invoke(app, ["staff", *args])
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def staff_events(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as db:
        query = select(AuditEvent).where(AuditEvent.action.startswith("staff."))  # type: ignore[attr-defined]
        return list(db.exec(query.order_by(AuditEvent.seq)).all())


def test_grant_list_revoke_are_audited_with_the_actor(engine: Engine) -> None:
    person = add_person(engine, {"hr": STAFF}, name="张帅")
    assert "granted helpdesk to 6120170032" in cli("grant", STAFF, "helpdesk")
    cli("grant", STAFF, "privacy_officer")
    listed = cli("list")
    assert f"{STAFF}\thelpdesk\t{cli_actor()}" in listed and "2 grants" in listed
    assert "revoked helpdesk from 6120170032" in cli("revoke", STAFF, "helpdesk")
    with Session(engine) as db:
        assert roles_of(db, STAFF) == {"privacy_officer"}
    events = staff_events(engine)
    assert [(e.action, e.actor, e.subject) for e in events] == [
        ("staff.grant", cli_actor(), person),
        ("staff.grant", cli_actor(), person),
        ("staff.revoke", cli_actor(), person),
    ]
    assert json.loads(events[0].details) == {"uid": STAFF, "role": "helpdesk"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("grant", STAFF, "superuser"), "unknown role 'superuser'"),
        (("grant", "0000000000", "helpdesk"), "no person in the directory holds uid '0000000000'"),
        (("revoke", STAFF, "admin"), "does not hold the role admin"),
    ],
)
def test_bad_grants_are_refused_and_change_nothing(engine: Engine, args: tuple[str, ...], message: str) -> None:
    add_person(engine, {"hr": STAFF})
    output = cli(*args, ok=False)
    assert message in output and "nothing was changed" in output
    assert staff_events(engine) == [] and "0 grants" in cli("list")


def test_a_role_granted_twice_is_refused(engine: Engine) -> None:
    add_person(engine, {"hr": STAFF})
    cli("grant", STAFF, "admin")
    assert "already holds the role admin" in cli("grant", STAFF, "admin", ok=False)


def test_a_student_gets_403_and_sees_nothing(web_client: TestClient, cas_server: CasStandIn, engine: Engine) -> None:
    add_person(engine, {"student": STUDENT})
    sign_in(web_client, cas_server, STUDENT)
    api = web_client.get("/staff/whoami")
    assert api.status_code == 403 and api.json() == {"detail": "You do not hold the staff role this page needs."}
    page = web_client.get("/staff/whoami", headers={"accept": "text/html"})
    assert page.status_code == 403 and "您没有访问此页面所需的工作人员角色" in page.text
    assert STUDENT not in page.text


def test_nobody_signed_in_is_sent_to_the_login(web_client: TestClient) -> None:
    assert web_client.get("/staff/whoami").status_code == 401
    page = web_client.get("/staff/whoami?x=1", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fstaff%2Fwhoami%3Fx%3D1"


def test_a_role_works_at_once_and_a_revoked_role_stops_at_once(
    web_client: TestClient, cas_server: CasStandIn, engine: Engine
) -> None:
    add_person(engine, {"hr": STAFF})
    sign_in(web_client, cas_server, STAFF)
    assert web_client.get("/staff/whoami").status_code == 403
    cli("grant", STAFF, "helpdesk")
    assert web_client.get("/staff/whoami").json() == {"uid": STAFF, "roles": ["helpdesk"]}  # same session
    cli("revoke", STAFF, "helpdesk")
    assert web_client.get("/staff/whoami").status_code == 403


def test_require_role_knows_only_the_roles() -> None:
    with pytest.raises(ValueError, match="require_role needs roles"):
        require_role("root")
    with pytest.raises(ValueError):
        require_role()
