"""Versioned keys: k1 deployments unchanged, later versions current, old values readable, the start-up check."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from idbroker.cli.main import app
from idbroker.config import Settings, get_settings
from idbroker.directory.protect import Protector
from idbroker.keys.check import KeyConfigurationError
from idbroker.keys.keyring import ENCRYPTION, HASH, PSEUDONYM, UnknownKeyVersion, keyring
from idbroker.release.pseudonyms import pseudonym_key
from idbroker.web.app import create_app

K2 = base64.urlsafe_b64encode(bytes(range(100, 132))).decode()
K3 = base64.urlsafe_b64encode(bytes(range(140, 172))).decode()


def run(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def reload(monkeypatch: pytest.MonkeyPatch, **variables: str | None) -> Settings:
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


def test_a_deployment_with_only_k1_keeps_its_values(test_settings: Settings) -> None:
    protector = Protector.from_settings(test_settings)
    expected = hmac.new(test_settings.key("national_id_hash_key"), b"national_id\x00X", hashlib.sha256).hexdigest()
    assert protector.keyed_hash("X") == f"k1${expected[:54]}"  # exactly what every stored hash already is
    assert protector.encrypt("110108200103041234").startswith("k1:")
    assert protector.keyed_hashes("X") == [protector.keyed_hash("X")]
    ring = keyring(test_settings, PSEUDONYM)
    assert (ring.current, list(ring.keys)) == ("k1", ["k1"])


def test_the_highest_version_is_current_and_old_values_stay_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    old = Protector.from_settings(get_settings())
    sealed, hashed = old.encrypt("13800138000", "message_recipient"), old.keyed_hash("110108200103041234")

    settings = reload(monkeypatch, IDBROKER_ENCRYPTION_KEY_K2=K2, IDBROKER_NATIONAL_ID_HASH_KEY_K3=K3)
    new = Protector.from_settings(settings)
    assert new.encrypt("13800138000", "message_recipient").startswith("k2:")
    assert new.decrypt(sealed, "message_recipient") == "13800138000"
    assert new.keyed_hash("110108200103041234").startswith("k3$")
    assert new.keyed_hashes("110108200103041234") == [new.keyed_hash("110108200103041234"), hashed]
    assert new.hash_matches(hashed, "110108200103041234") and not new.hash_matches(hashed, "110108200103041235")
    moved = new.reencrypt(sealed, "message_recipient")
    assert moved is not None and moved.startswith("k2:") and new.reencrypt(moved, "message_recipient") is None
    with pytest.raises(InvalidTag):
        new.decrypt(sealed, "national_id")  # the purpose is bound to the ciphertext

    # A process without k2 cannot read k2 values, and says which variable it lacks.
    settings = reload(monkeypatch, IDBROKER_ENCRYPTION_KEY_K2=None)
    with pytest.raises(UnknownKeyVersion, match="IDBROKER_ENCRYPTION_KEY_K2"):
        Protector.from_settings(settings).decrypt(moved, "message_recipient")


def test_the_pseudonym_key_has_its_own_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    k1 = pseudonym_key(get_settings())
    settings = reload(monkeypatch, IDBROKER_PSEUDONYM_KEY_K2=K2)
    assert pseudonym_key(settings, "k1") == k1  # still derived from the encryption key's k1
    assert pseudonym_key(settings) == base64.urlsafe_b64decode(K2) != k1
    assert keyring(settings, ENCRYPTION).current == "k1"  # rotating one kind leaves the others alone


def test_versions_are_read_from_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "keys.env"
    env_file.write_text(f"IDBROKER_NATIONAL_ID_HASH_KEY_K2={K2}\n")
    monkeypatch.setenv("IDBROKER_NATIONAL_ID_HASH_KEY_K2", K3)  # the environment wins, as for every setting
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert keyring(settings, HASH).key("k2") == base64.urlsafe_b64decode(K3)
    monkeypatch.delenv("IDBROKER_NATIONAL_ID_HASH_KEY_K2")
    assert keyring(Settings(_env_file=env_file), HASH).key() == base64.urlsafe_b64decode(K2)  # type: ignore[call-arg]


# --- start-up ----------------------------------------------------------------------------------------------


def test_worker_and_serve_refuse_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    reload(monkeypatch, IDBROKER_ENCRYPTION_KEY=None)
    for command in (("worker", "--once"), ("serve", "--port", "1")):
        result = run(*command)
        assert result.exit_code == 1, command
        assert "idbroker cannot start: IDBROKER_ENCRYPTION_KEY is not set" in result.output


def test_a_short_key_version_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDBROKER_ENCRYPTION_KEY_K2", base64.urlsafe_b64encode(b"only sixteen b..").decode())
    get_settings.cache_clear()
    for command in (("worker", "--once"), ("serve", "--port", "1"), ("keys", "status")):
        result = run(*command)
        assert result.exit_code == 1, command
        assert "invalid settings" in result.output and "IDBROKER_ENCRYPTION_KEY_K2 is too short" in result.output


def test_create_app_checks_its_keys_before_serving(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = reload(monkeypatch, IDBROKER_NATIONAL_ID_HASH_KEY=None)
    web = create_app(settings)
    with pytest.raises(KeyConfigurationError, match="IDBROKER_NATIONAL_ID_HASH_KEY is not set"), TestClient(web):
        pass  # the lifespan runs before the first request is accepted
    with TestClient(create_app(reload(monkeypatch, IDBROKER_NATIONAL_ID_HASH_KEY=K2))) as client:
        assert client.get("/health/live").status_code == 200


def test_delivery_reports_signed_before_a_hash_key_rotation_are_still_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    from idbroker.contacts.delivery import report_signature, report_signature_valid

    before = report_signature(get_settings(), 42)
    settings = reload(monkeypatch, IDBROKER_NATIONAL_ID_HASH_KEY_K2=K2)
    after = report_signature(settings, 42)
    assert after != before  # new messages are signed under k2
    assert report_signature_valid(settings, 42, before)  # a report for a message sent before the rotation
    assert report_signature_valid(settings, 42, after)
    assert not report_signature_valid(settings, 43, before)  # signatures are per message
    assert not report_signature_valid(settings, 42, "0" * 24)
