"""The `db`, `keys`, `audit`, `openapi` and `serve` commands, run as an operator runs them."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from services.availability import free_port
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from idbroker.audit import append
from idbroker.cli.main import app
from idbroker.config import Settings, get_settings
from idbroker.db import session_scope
from idbroker.migrate import current_revision, head_revision
from idbroker.openapi_doc import OPENAPI_PATH

KEYS = ("IDBROKER_NATIONAL_ID_HASH_KEY", "IDBROKER_ENCRYPTION_KEY")


def run(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    # Expected failures end with a message and an exit status, never with an exception.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def env_values(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# --- keys ---------------------------------------------------------------------------------------------------


def test_keys_init_creates_both_keys_privately(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "var" / "idbroker.env"
    result = run("keys", "init", "--env-file", str(env_file))
    assert result.exit_code == 0, result.output
    values = env_values(env_file)
    assert set(values) == set(KEYS)
    for name in KEYS:
        assert f"created {name}" in result.output
        assert values[name] not in result.output
        assert len(base64.urlsafe_b64decode(values[name])) == 32
    assert values[KEYS[0]] != values[KEYS[1]]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    # The broker reads what it wrote.
    for name in KEYS:
        monkeypatch.delenv(name)
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert len(settings.key("national_id_hash_key")) == 32
    assert len(settings.key("encryption_key")) == 32


def test_keys_init_never_overwrites_a_key(tmp_path: Path) -> None:
    env_file = tmp_path / "idbroker.env"
    run("keys", "init", "--env-file", str(env_file))
    before = env_file.read_text()
    result = run("keys", "init", "--env-file", str(env_file))
    assert result.exit_code == 0
    assert "created" not in result.output and result.output.count("kept the existing") == 2
    assert env_file.read_text() == before


def test_keys_init_adds_only_the_missing_key(tmp_path: Path) -> None:
    env_file = tmp_path / "idbroker.env"
    existing = base64.urlsafe_b64encode(bytes(range(32))).decode()
    env_file.write_text(f"# operator settings\nIDBROKER_DATABASE_URL=sqlite:///x.db\nexport {KEYS[1]}={existing}")
    env_file.chmod(0o644)
    result = run("keys", "init", "--env-file", str(env_file))
    assert result.exit_code == 0, result.output
    assert f"created {KEYS[0]}" in result.output and f"kept the existing {KEYS[1]}" in result.output
    text = env_file.read_text()
    assert text.startswith(f"# operator settings\nIDBROKER_DATABASE_URL=sqlite:///x.db\nexport {KEYS[1]}={existing}\n")
    assert text.count(KEYS[0]) == 1 and text.count(existing) == 1
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_keys_init_refuses_an_empty_key(tmp_path: Path) -> None:
    env_file = tmp_path / "idbroker.env"
    env_file.write_text(f"{KEYS[0]}=\n")
    result = run("keys", "init", "--env-file", str(env_file))
    assert result.exit_code == 1
    assert f"{KEYS[0]} is set but empty" in result.output
    assert env_file.read_text() == f"{KEYS[0]}=\n"


# --- db -----------------------------------------------------------------------------------------------------


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    before = run("db", "current")
    assert before.exit_code == 0
    assert "revision none (not at head" in before.output

    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"upgraded to revision {head_revision()} (at head)" in result.output

    after = run("db", "current")
    assert after.exit_code == 0
    assert after.output.strip() == f"revision {head_revision()} (at head)"


def test_db_upgrade_to_a_named_revision(tmp_path: Path) -> None:
    head = head_revision()
    assert head is not None
    result = run("db", "upgrade", head)
    assert result.exit_code == 0, result.output
    assert f"upgraded to revision {head}" in result.output


def test_db_current_on_a_migrated_database(engine: Engine) -> None:
    result = run("db", "current")
    assert result.exit_code == 0
    assert result.output.strip() == f"revision {current_revision(engine)} (at head)"


def test_db_upgrade_to_an_unknown_revision_is_a_clear_error() -> None:
    result = run("db", "upgrade", "nosuchrevision")
    assert result.exit_code == 1
    assert "migration error" in result.output and "nosuchrevision" in result.output


def test_an_unreachable_database_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql+psycopg://operator:s3cretpw@127.0.0.1:{free_port()}/idbroker"
    monkeypatch.setenv("IDBROKER_DATABASE_URL", url)
    get_settings.cache_clear()  # the settings fixture read the environment before this test changed it
    for command in (("db", "upgrade"), ("db", "current"), ("audit", "verify")):
        result = run(*command)
        assert result.exit_code == 1, command
        assert "database error on postgresql+psycopg://operator:***@127.0.0.1" in result.output
        assert "s3cretpw" not in result.output


def test_invalid_settings_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDBROKER_ENCRYPTION_KEY", "too-short")
    get_settings.cache_clear()
    result = run("db", "current")
    assert result.exit_code == 1
    assert "invalid settings" in result.output and "encryption_key" in result.output


# --- audit --------------------------------------------------------------------------------------------------


def test_audit_verify(engine: Engine) -> None:
    result = run("audit", "verify")
    assert result.exit_code == 0
    assert result.output.strip() == "audit log verified: 0 events"

    with session_scope(engine) as session:
        for number in range(3):
            append(session, actor="cli:tester", action="test.event", details={"number": number})
    result = run("audit", "verify")
    assert result.exit_code == 0
    assert result.output.strip() == "audit log verified: 3 events"

    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER ALL")
        connection.exec_driver_sql("""UPDATE audit_event SET details = '{"number":7}' WHERE seq = 2""")
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert "FAILED (seq 2)" in result.output and "event 2 was altered" in result.output


def test_audit_verify_on_an_unmigrated_database() -> None:
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert "idbroker db upgrade" in result.output


# --- openapi and serve --------------------------------------------------------------------------------------


def test_openapi_writes_and_checks(tmp_path: Path) -> None:
    assert run("openapi", "--check").exit_code == 0  # the checked-in file
    output = tmp_path / "openapi.json"
    result = run("openapi", "--output", str(output))
    assert result.exit_code == 0
    assert output.read_text() == OPENAPI_PATH.read_text()
    output.write_text(output.read_text().replace("idbroker", "other"))
    stale = run("openapi", "--check", "--output", str(output))
    assert stale.exit_code == 1 and "out of date" in stale.output


def test_serve_refuses_reload_with_workers() -> None:
    result = run("serve", "--reload", "--workers", "2")
    assert result.exit_code == 1 and "--reload" in result.output


def test_serve_runs_the_app(sqlite_engine: Engine) -> None:
    port = free_port()
    command = [sys.executable, "-m", "idbroker.cli.main", "serve", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"idbroker serve did not start: {output}")
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "database": "ok", "schema": head_revision()}
    finally:
        process.terminate()
        process.wait(timeout=10)
