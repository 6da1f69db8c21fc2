"""Liveness and readiness over HTTP: ready only when the database answers and is migrated to head."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from services.availability import free_port
from sqlalchemy import Engine

from idbroker.config import Settings
from idbroker.migrate import head_revision
from idbroker.web.app import create_app


def client_for(database_url: str) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url)))


def test_live_answers_without_a_database(tmp_path: Path) -> None:
    response = client_for(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none").get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_on_a_migrated_database(engine: Engine) -> None:
    response = client_for(engine.url.render_as_string(hide_password=False)).get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "schema": head_revision()}


def test_not_ready_before_migration(tmp_path: Path) -> None:
    response = client_for(f"sqlite:///{tmp_path / 'empty.db'}").get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "ok" and body["schema"] is None
    assert "idbroker db upgrade" in body["reason"]


def test_not_ready_when_the_database_is_unreachable() -> None:
    url = f"postgresql+psycopg://nobody:hunter2secret@127.0.0.1:{free_port()}/idbroker"
    response = client_for(url).get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "unreachable" and body["schema"] is None
    assert "unreachable" in body["reason"]
    assert "hunter2secret" not in response.text and "nobody" not in response.text


def test_the_app_is_named_and_versioned() -> None:
    app = create_app(Settings(database_url="sqlite://"))
    assert app.title == "idbroker"
    assert app.version and app.version[0].isdigit()
