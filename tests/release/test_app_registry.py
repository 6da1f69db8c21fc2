"""The app registry: secrets only as argon2 hashes, exact redirect URIs, sectors, rotation and disabling —
through the CLI an operator uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from plugins.apps import write_policy
from sqlalchemy import Engine, select
from sqlmodel import Session
from typer.testing import CliRunner, Result

from idbroker.audit.models import AuditEvent
from idbroker.cli.main import app as cli
from idbroker.oidc.models import SigningKey
from idbroker.release.models import App
from idbroker.release.registry import RegistryError, check_redirect_uri, sector_of, verify_secret

SECRET_LINE = re.compile(r"client secret.*: (\S+)$", re.MULTILINE)


def run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert (result.exit_code == 0) == ok, result.output
    return result


def test_add_list_rotate_disable_from_the_cli(sqlite_engine: Engine, apps_policies: Path) -> None:
    write_policy(apps_policies, "grades", claims=["pseudonym", "nickname"])
    added = run("apps", "add", "grades", "--name", "成绩查询", "--redirect-uri", "https://grades.example.edu/cb")
    secret = SECRET_LINE.search(added.output).group(1)  # type: ignore[union-attr]
    assert "sector grades.example.edu" in added.output
    with Session(sqlite_engine) as session:
        row = session.get(App, "grades")
        assert row is not None and row.secret_hash is not None
        assert row.secret_hash.startswith("$argon2id$") and secret not in row.secret_hash
        assert verify_secret(row, secret) and not verify_secret(row, secret + "x")

    assert "grades\tconfidential\tgrades.example.edu\tenabled" in run("apps", "list").output
    rotated = SECRET_LINE.search(run("apps", "rotate-secret", "grades").output).group(1)  # type: ignore[union-attr]
    with Session(sqlite_engine) as session:
        row = session.get(App, "grades")
        assert row is not None
        assert verify_secret(row, rotated) and not verify_secret(row, secret)
    run("apps", "disable", "grades")
    assert "disabled" in run("apps", "list").output

    again = run("apps", "add", "grades", "--name", "x", "--redirect-uri", "https://grades.example.edu/cb", ok=False)
    assert "already registered" in again.output and "nothing was changed" in again.output
    no_policy = run("apps", "add", "ghost", "--name", "x", "--redirect-uri", "https://ghost.example.edu/cb", ok=False)
    assert "no release policy" in no_policy.output
    run("apps", "add", "spa", "--name", "x", "--redirect-uri", "https://spa.example.edu/cb", "--public", ok=False)

    with Session(sqlite_engine) as session:
        actions = list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("app.%")).order_by(AuditEvent.seq))
        )
        assert actions == ["app.register", "app.rotate_secret", "app.disable"]
        text = " ".join(session.scalars(select(AuditEvent.details)))
        assert secret not in text and rotated not in text


def test_rotate_the_signing_key_from_the_cli(sqlite_engine: Engine) -> None:
    first = run("keys", "rotate-signing").output
    second = run("keys", "rotate-signing").output
    assert "is now in use" in first and "retired" in second and "still verifies until" in second
    with Session(sqlite_engine) as session:
        rows = session.scalars(select(SigningKey)).all()
    assert len(rows) == 2 and sum(row.retired_at is None for row in rows) == 1


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("http://app.example.edu/cb", "plain http"),
        ("https://app.example.edu/cb#frag", "fragment"),
        ("app.example.edu/cb", "absolute"),
        ("javascript:alert(1)", "absolute"),
    ],
)
def test_redirect_uris_are_checked(uri: str, problem: str) -> None:
    with pytest.raises(RegistryError, match=problem):
        check_redirect_uri(uri)


def test_loopback_http_and_sectors() -> None:
    assert check_redirect_uri("http://127.0.0.1:8000/cb") == "http://127.0.0.1:8000/cb"
    assert sector_of(["https://a.example.edu/1", "https://a.example.edu/2"], None) == "a.example.edu"
    assert sector_of(["https://a.example.edu/1"], "Campus.Example.Edu") == "campus.example.edu"
    with pytest.raises(RegistryError, match="several hosts"):
        sector_of(["https://a.example.edu/1", "https://b.example.edu/2"], None)
