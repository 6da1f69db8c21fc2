"""Deployment settings: secrets read from files in `IDBROKER_SECRETS_DIR` (the environment still winning), and
the client address taken from `X-Forwarded-For` only when the peer is one of `IDBROKER_TRUSTED_PROXIES`."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from plugins.web import add_person, sign_in
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlmodel import Session
from standins.cas_server import CasStandIn

from idbroker.audit.models import AuditEvent
from idbroker.config import Settings
from idbroker.web.app import create_app


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_secrets_are_read_from_a_file_per_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "run-secrets"
    secrets.mkdir()
    key = new_key()
    (secrets / "IDBROKER_ENCRYPTION_KEY").write_text(key + "\n")  # as `docker secret` / systemd credentials write it
    (secrets / "idbroker_metrics_token").write_text("token-from-a-file\n")
    monkeypatch.delenv("IDBROKER_ENCRYPTION_KEY")
    monkeypatch.setenv("IDBROKER_SECRETS_DIR", str(secrets))

    settings = Settings()
    assert settings.key("encryption_key") == base64.urlsafe_b64decode(key)
    assert settings.metrics_token is not None and settings.metrics_token.get_secret_value() == "token-from-a-file"
    assert settings.secrets_dir == secrets
    k2 = new_key()
    (secrets / "IDBROKER_ENCRYPTION_KEY_K2").write_text(k2 + "\n")  # a rotated key's later version, too
    assert Settings().key_versions["encryption_key"]["k2"].get_secret_value() == k2

    monkeypatch.setenv("IDBROKER_METRICS_TOKEN", "token-from-the-environment")
    assert Settings().metrics_token.get_secret_value() == "token-from-the-environment"  # type: ignore[union-attr]

    (secrets / "IDBROKER_ENCRYPTION_KEY").write_text("c2hvcnQ=\n")
    with pytest.raises(ValidationError, match="IDBROKER_ENCRYPTION_KEY is too short"):
        Settings()

    monkeypatch.setenv("IDBROKER_SECRETS_DIR", str(tmp_path / "not-there"))
    with pytest.raises(ValidationError, match="is not a directory"):
        Settings()


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert Settings(trusted_proxies="10.0.0.0/24, 127.0.0.1,::1").trusted_proxies
    for bad in ("*", "proxy.example.edu", "10.0.0.0/33", "127.0.0.1,"):
        with pytest.raises(ValidationError, match="IDBROKER_TRUSTED_PROXIES"):
            Settings(trusted_proxies=bad)


def client_ip_recorded(engine: Engine) -> str | None:
    """The client address of the newest `privacy.download` event (what /me/privacy/download records)."""
    with Session(engine) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "privacy.download").order_by(AuditEvent.seq.desc())  # type: ignore[attr-defined]
        ).first()
    assert event is not None
    return json.loads(event.details).get("client_ip")


@pytest.mark.parametrize(
    ("peer", "trusted", "forwarded_for", "expected"),
    [
        ("10.0.0.5", "10.0.0.0/24", "203.0.113.7", "203.0.113.7"),  # the proxy says who it forwards for
        ("192.0.2.99", "10.0.0.0/24", "203.0.113.7", "192.0.2.99"),  # not a proxy: its header is ignored
        ("10.0.0.5", "10.0.0.0/24", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # a client's own entry is not kept
        ("10.0.0.5", "10.0.0.0/24", "203.0.113.7, 10.0.0.6", "203.0.113.7"),  # two proxies in a row
        ("127.0.0.1", "127.0.0.1,::1", "203.0.113.8", "203.0.113.8"),  # the default: a proxy on this host
    ],
)
def test_the_client_address_comes_from_x_forwarded_for_only_through_a_trusted_proxy(
    sqlite_engine: Engine, cas_server: CasStandIn, peer: str, trusted: str, forwarded_for: str, expected: str
) -> None:
    add_person(sqlite_engine, {"student": "1120101234"})
    settings = Settings(
        database_url=sqlite_engine.url.render_as_string(hide_password=False),
        public_url="http://testserver",
        cas_server_url=cas_server.url,
        trusted_proxies=trusted,
    )
    with TestClient(
        create_app(settings), client=(peer, 51000), headers={"x-forwarded-for": forwarded_for}, follow_redirects=False
    ) as client:
        assert sign_in(client, cas_server, "1120101234").status_code == 303
        assert client.get("/me/privacy/download").status_code == 200
    assert client_ip_recorded(sqlite_engine) == expected
