"""Path traversal where a name that becomes a path comes from outside the operator's own files: the source
of an import (`idbroker import SOURCE PATH` → `policies/sources/<SOURCE>.yaml`), an app's client id (the
admin API's body and path → `policies/apps/<client_id>.yaml`), the static files; and what an import path may
point at — a symlink to a device, a FIFO, a directory or a /proc file is refused before anything is read
(never a hang, never a partial import).

A mapping or a policy planted outside `policies/` (valid, so only the name check stops it) is never used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from attack_support import snapshot
from factories import STUDENT_HEADER, student, write_csv
from fastapi.testclient import TestClient
from plugins.apps import Campus, write_policy
from plugins.web import sign_in
from sqlalchemy import Engine
from sqlmodel import Session

from idbroker.config import get_settings
from idbroker.policy import PolicyError
from idbroker.sources.importer import run_import
from idbroker.sources.mapping import UnknownSourceError
from idbroker.sources.tables import UnreadableFile
from idbroker.staff.roles import grant

ADMIN = "6120170032"
TRAVERSALS = [
    "../outside",
    "../../outside",
    "..",
    "sources/../../outside",
    "/tmp/outside",
    "..\\outside",
    "%2e%2e%2foutside",
    "outside\x00",
    "student/../hr",
    "Student",
]


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def planted(apps_policies: Path) -> Path:
    """Valid-looking files one and two levels above `policies/sources` and `policies/apps`."""
    shutil.copy(apps_policies / "sources" / "student.yaml", apps_policies / "outside.yaml")
    shutil.copy(apps_policies / "sources" / "student.yaml", apps_policies.parent / "outside.yaml")
    write_policy(apps_policies, "outside", claims=["pseudonym"])
    (apps_policies / "apps" / "outside.yaml").rename(apps_policies / "outside.yaml.app")
    return apps_policies


@pytest.mark.parametrize("source", TRAVERSALS)
def test_an_import_source_is_a_name_never_a_path(
    sqlite_engine: Engine, planted: Path, tmp_path: Path, source: str
) -> None:
    row = student("1120101234", "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678")
    export = write_csv(tmp_path / "student.csv", STUDENT_HEADER, [row])
    before = snapshot(sqlite_engine)
    with Session(sqlite_engine) as session, pytest.raises(UnknownSourceError) as caught:
        run_import(session, source=source, location=str(export), settings=get_settings(), actor="test")
    assert "known sources: billing, cas, hr, student" in str(caught.value)
    assert snapshot(sqlite_engine) == before


@pytest.mark.parametrize(
    "target",
    ["/dev/zero", "/dev/urandom", "/proc/self/environ", "fifo", "directory", "dangling"],
)
def test_an_import_path_that_is_not_a_regular_file_is_refused_before_reading(
    sqlite_engine: Engine, tmp_path: Path, target: str
) -> None:
    engine = sqlite_engine
    link = tmp_path / "student.csv"  # looks like an export; is a symlink to something that is not one
    if target == "fifo":
        os.mkfifo(tmp_path / "pipe")  # opening it would block forever: it must never be opened
        link.symlink_to(tmp_path / "pipe")
    elif target == "directory":
        link.symlink_to(tmp_path)
    elif target == "dangling":
        link.symlink_to(tmp_path / "gone.csv")
    else:
        link.symlink_to(target)
    before = snapshot(engine)
    with Session(engine) as session, pytest.raises(UnreadableFile) as caught:
        run_import(session, source="student", location=str(link), settings=get_settings(), actor="test")
    assert str(link) in str(caught.value)
    assert any(
        reason in caught.value.reason
        for reason in ("not a regular file", "is a directory", "the file is empty", "no such file")
    ), caught.value.reason
    assert snapshot(engine) == before


def test_an_app_client_id_is_a_name_never_a_path(
    sqlite_engine: Engine, campus: Campus, planted: Path, web_client: TestClient, cas_server: Any
) -> None:
    with Session(sqlite_engine) as session:
        grant(session, ADMIN, "admin", actor="test")
        session.commit()
    cas_server.add_user(ADMIN)
    sign_in(web_client, cas_server, ADMIN)
    before = snapshot(sqlite_engine)
    for client_id in [*TRAVERSALS, "../outside.yaml.app", "apps/../outside"]:
        body = {"client_id": client_id, "name": "x", "redirect_uris": ["https://x.example.edu/cb"]}
        created = web_client.post("/api/admin/apps", json=body)
        assert created.status_code in (400, 422), (client_id, created.status_code)
        for action in ("disable", "rotate-secret"):
            quoted = quote(client_id, safe="")
            response = web_client.post(f"/api/admin/apps/{quoted}/{action}")
            assert response.status_code in (404, 405, 422), (client_id, action, response.status_code)
    assert snapshot(sqlite_engine) == before
    from idbroker.release.registry import register

    with Session(sqlite_engine) as session:
        for client_id in ("../outside", "../../outside"):
            with pytest.raises((PolicyError, ValueError)):
                register(session, planted, client_id=client_id, name="x", redirect_uris=["https://x.example.edu/cb"],
                         actor="test")  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/....//....//pyproject.toml",
        "/static/..\\..\\pyproject.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ],
)
def test_static_files_stay_in_their_folder(web_client: TestClient, path: str) -> None:
    response = web_client.get(path)
    assert response.status_code in (400, 404), (path, response.status_code)
    assert "[project]" not in response.text and "root:" not in response.text
