"""The admin API of the app registry: admins only (by their CAS session and role), audited as them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plugins.apps import Campus, write_policy
from plugins.web import sign_in
from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.release.models import App
from idbroker.staff.roles import grant

ADMIN, STUDENT = "6120170032", "1120150001"
NEW = {"client_id": "grades", "name": "成绩查询", "redirect_uris": ["https://grades.example.edu/cb"]}


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


def test_admins_manage_the_registry(
    sqlite_engine: Engine, campus: Campus, apps_policies: Path, web_client: Any, cas_server: Any
) -> None:
    write_policy(apps_policies, "grades", claims=["pseudonym"])
    assert web_client.get("/api/admin/apps").status_code == 401
    for uid in (ADMIN, STUDENT):
        cas_server.add_user(uid)
    sign_in(web_client, cas_server, STUDENT)
    assert web_client.post("/api/admin/apps", json=NEW).status_code == 403

    with Session(sqlite_engine) as session:
        grant(session, ADMIN, "admin", actor="test")
        session.commit()
    web_client.cookies.clear()
    sign_in(web_client, cas_server, ADMIN)
    created = web_client.post("/api/admin/apps", json=NEW)
    assert created.status_code == 201, created.text
    secret = created.json()["client_secret"]
    assert created.json()["app"]["sector"] == "grades.example.edu"
    assert web_client.post("/api/admin/apps", json=NEW).status_code == 409
    bad = web_client.post("/api/admin/apps", json={**NEW, "client_id": "ghost"})
    assert bad.status_code == 400 and "no release policy" in bad.json()["detail"]
    unsafe = web_client.post(
        "/api/admin/apps", json={**NEW, "client_id": "grades2", "redirect_uris": ["http://x.edu/"]}
    )
    assert unsafe.status_code == 400

    rotated = web_client.post("/api/admin/apps/grades/rotate-secret").json()["client_secret"]
    assert rotated != secret
    old = web_client.post("/oidc/token", data={"grant_type": "client_credentials"}, auth=("grades", secret))
    assert old.status_code == 401
    token = web_client.post("/oidc/token", data={"grant_type": "client_credentials"}, auth=("grades", rotated))
    assert token.status_code == 200
    assert web_client.post("/api/admin/apps/grades/disable").json()["enabled"] is False
    assert (
        web_client.post("/oidc/token", data={"grant_type": "client_credentials"}, auth=("grades", rotated)).status_code
        == 401
    )
    assert web_client.post("/api/admin/apps/nothing/disable").status_code == 404
    assert [app["client_id"] for app in web_client.get("/api/admin/apps").json()] == ["grades"]

    with Session(sqlite_engine) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("app.%")).order_by(AuditEvent.seq)
        ).all()
        assert [(e.action, e.actor) for e in events] == [
            ("app.register", f"person:{campus.wang}"),
            ("app.rotate_secret", f"person:{campus.wang}"),
            ("app.disable", f"person:{campus.wang}"),
        ]
        assert session.get(App, "grades") is not None
