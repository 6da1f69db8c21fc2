"""Shared fixtures: test settings, a migrated database on SQLite and PostgreSQL, and a real LDAP server.

Fixtures other tests rely on (keep the names):
- `test_settings` (autouse): fixed test keys, the repo's `policies/`, the test's database URL; caches cleared.
  Each test runs in its own temporary working directory, so nothing reads or writes the repo's `var/`.
- `engine`: a fresh database migrated to head, once per backend (ids `sqlite`, `postgresql`).
- `sqlite_engine`: the same on SQLite only.
- `pg_base_url` (session): `postgresql+psycopg://postgres@127.0.0.1:PORT/` of a throwaway cluster.
- `ldap_server` (session): a running slapd; see `services.slapd.LdapServer`.
- `ldap_directory`: that server with `ou=people` emptied before and after the test (use this one).

`pytest --backend sqlite` (or `postgresql`) runs only that parameter of `engine`; the default runs both.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import postgres, slapd
from services.availability import ServiceUnavailable, missing
from sqlalchemy import Engine

import idbroker.config
import idbroker.db
from idbroker.db import make_engine
from idbroker.migrate import upgrade

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICIES_DIR = REPO_ROOT / "policies"
BACKENDS = ("sqlite", "postgresql")
TEST_KEY_SEED = "idbroker test suite: not a secret"
PG_TEMPLATE = "idbroker_template"

pytest_plugins = ["plugins.web", "plugins.privacy", "plugins.apps", "plugins.wecom", "plugins.contacts"]


def fixed_test_key(name: str) -> str:
    """A fixed key for tests: URL-safe base64 of 32 bytes derived from the test seed and the key's name."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"{TEST_KEY_SEED}:{name}".encode()).digest()).decode()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=(*BACKENDS, "all"),
        default="all",
        help="run database tests on this backend only (default: all)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: runs against the throwaway PostgreSQL cluster")
    config.addinivalue_line("markers", "ldap: runs against the throwaway OpenLDAP slapd")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = config.getoption("--backend")
    if backend == "all":
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        chosen = callspec.params.get("engine") if callspec else None
        needs_pg = chosen == "postgresql" or (chosen is None and "pg_base_url" in getattr(item, "fixturenames", ()))
        other = chosen is not None and chosen != backend
        (dropped if other or (backend == "sqlite" and needs_pg) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# --- settings -------------------------------------------------------------------------------------------


def _clear_caches() -> None:
    if idbroker.db.get_engine.cache_info().currsize:
        idbroker.db.get_engine().dispose()
    idbroker.db.get_engine.cache_clear()
    idbroker.config.get_settings.cache_clear()


@pytest.fixture(autouse=True)
def test_settings(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[idbroker.config.Settings]:
    """Test keys and paths in the environment; the settings and engine caches cleared before and after."""
    database_url = f"sqlite:///{tmp_path / 'unmigrated.db'}"  # never the repo's var/idbroker.db
    for name in ("engine", "sqlite_engine"):
        if name in request.fixturenames:
            database_url = request.getfixturevalue(name).url.render_as_string(hide_password=False)
            break
    monkeypatch.chdir(tmp_path)  # away from the repo's var/idbroker.env
    for variable in list(os.environ):
        if variable.startswith("IDBROKER_"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("IDBROKER_NATIONAL_ID_HASH_KEY", fixed_test_key("national_id_hash_key"))
    monkeypatch.setenv("IDBROKER_ENCRYPTION_KEY", fixed_test_key("encryption_key"))
    monkeypatch.setenv("IDBROKER_POLICIES_DIR", str(POLICIES_DIR))
    monkeypatch.setenv("IDBROKER_DATABASE_URL", database_url)
    _clear_caches()
    yield idbroker.config.get_settings()
    _clear_caches()


# --- PostgreSQL -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[postgres.PostgresCluster]:
    """One throwaway cluster per session (per xdist worker), started on first use, stopped at the end."""
    reason = postgres.missing_reason()
    if reason:
        missing(reason)
    try:
        cluster = postgres.start_cluster()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        postgres.remove_cluster(cluster)


@pytest.fixture(scope="session")
def pg_base_url(pg_cluster: postgres.PostgresCluster) -> str:
    return pg_cluster.base_url


@pytest.fixture(scope="session")
def _pg_template(pg_cluster: postgres.PostgresCluster) -> str:
    """A database migrated to head once per session; each test's database is a copy of it."""
    pg_cluster.create_database(PG_TEMPLATE)
    template_engine = make_engine(pg_cluster.url(PG_TEMPLATE))
    try:
        upgrade(template_engine)
    finally:
        template_engine.dispose()  # CREATE DATABASE … TEMPLATE needs the template without connections
    return PG_TEMPLATE


_pg_numbers = itertools.count(1)


def _postgresql_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    cluster: postgres.PostgresCluster = request.getfixturevalue("pg_cluster")
    template: str = request.getfixturevalue("_pg_template")
    name = f"t_{next(_pg_numbers)}"
    cluster.create_database(name, template=template)
    engine = make_engine(cluster.url(name))
    try:
        yield engine
    finally:
        engine.dispose()
        cluster.drop_database(name)


# --- SQLite -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    template_engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(template_engine)
    finally:
        template_engine.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


def _sqlite_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    template: Path = request.getfixturevalue("_sqlite_template")
    tmp_path: Path = request.getfixturevalue("tmp_path")
    path = tmp_path / "idbroker.db"
    for suffix in ("", "-wal"):
        if Path(f"{template}{suffix}").exists():
            shutil.copyfile(f"{template}{suffix}", f"{path}{suffix}")
    engine = make_engine(f"sqlite:///{path}")
    try:
        yield engine
    finally:
        engine.dispose()


# --- the engine fixtures ------------------------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]
)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A fresh, empty database migrated to head; `IDBROKER_DATABASE_URL` points at it for the test."""
    if request.param == "sqlite":
        yield from _sqlite_engine(request)
    else:
        yield from _postgresql_engine(request)


@pytest.fixture
def sqlite_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Like `engine`, on SQLite only."""
    yield from _sqlite_engine(request)


# --- LDAP ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ldap_server() -> Iterator[slapd.LdapServer]:
    """A running slapd (suffix dc=example,dc=edu, people under ou=people) for the whole session."""
    reason = slapd.missing_reason()
    if reason:
        missing(reason)
    try:
        server = slapd.start_server()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        slapd.remove_server(server)


@pytest.fixture
def ldap_directory(ldap_server: slapd.LdapServer) -> Iterator[slapd.LdapServer]:
    """The session's slapd with no people in it; whatever the test adds is deleted afterwards."""
    ldap_server.clear()
    yield ldap_server
    ldap_server.clear()
