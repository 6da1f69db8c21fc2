"""The database fixtures give a working, migrated database on both backends, and the services clean up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from services.availability import missing
from sqlalchemy import Engine, inspect, text

import idbroker.db
from idbroker.config import get_settings
from idbroker.migrate import current_revision, head_revision


def test_engine_is_migrated_to_head(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {"person", "source_record", "audit_event", "import_run"} <= tables
    assert current_revision(engine) == head_revision()


def test_each_test_gets_an_empty_database(engine: Engine) -> None:
    with engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM person")).scalar_one() == 0
        # Leave a table behind: the next test (and the parametrised twin) must not see it.
        connection.execute(text("CREATE TABLE leftover (n integer)"))
        connection.execute(text("INSERT INTO leftover (n) VALUES (1)"))


def test_previous_test_left_nothing_behind(engine: Engine) -> None:
    assert "leftover" not in inspect(engine).get_table_names()


def test_settings_point_at_the_test_database(engine: Engine) -> None:
    settings = get_settings()
    assert settings.database_url == engine.url.render_as_string(hide_password=False)
    assert idbroker.db.get_engine().url == engine.url
    assert len(settings.key("national_id_hash_key")) == 32
    assert settings.key("encryption_key") != settings.key("national_id_hash_key")
    assert (settings.policies_dir / "sources").is_dir()


def test_tests_without_a_database_never_touch_the_repo(tmp_path: Path) -> None:
    url = get_settings().database_url
    assert url.startswith("sqlite:///") and str(tmp_path) in url
    assert Path.cwd() == tmp_path


def test_postgresql_cluster_accepts_connections(pg_base_url: str) -> None:
    engine = idbroker.db.make_engine(pg_base_url + "postgres")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW fsync")).scalar_one() == "off"
            assert connection.execute(text("SELECT inet_server_addr()::text")).scalar_one() == "127.0.0.1/32"
    finally:
        engine.dispose()


@pytest.mark.parametrize("attempt", [1, 2])
def test_sqlite_engine_is_sqlite(sqlite_engine: Engine, attempt: int) -> None:
    assert sqlite_engine.dialect.name == "sqlite"
    with sqlite_engine.begin() as connection:
        assert "leftover" not in inspect(connection).get_table_names()
        connection.execute(text(f"CREATE TABLE leftover (n integer DEFAULT {attempt})"))


def test_a_missing_service_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        missing("slapd is not installed")


def test_a_missing_service_is_skipped_for_a_user_who_cannot_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="slapd is not installed"):
        missing("slapd is not installed")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(pytest.fail.Exception, match=r"run \.ci/setup\.sh"):
        missing("slapd is not installed")
