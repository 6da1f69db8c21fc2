"""Settings: one pydantic-settings class, read from `IDBROKER_*` variables (and `var/idbroker.env`)."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_KEY_BYTES = 32


def decode_key(value: str, name: str) -> bytes:
    """A key is given as URL-safe base64 of at least 32 random bytes; anything else is refused."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} is not valid base64") from exc
    if len(raw) < MIN_KEY_BYTES:
        raise ValueError(f"{name} is too short: {len(raw)} bytes, need at least {MIN_KEY_BYTES}")
    return raw


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IDBROKER_", env_file="var/idbroker.env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///./var/idbroker.db"
    policies_dir: Path = Path("policies")
    # Keyed hash of national IDs (matching) and the encryption key of their stored value.
    national_id_hash_key: SecretStr | None = None
    encryption_key: SecretStr | None = None
    # Bind credentials for `idbroker import cas ldap://…`.
    ldap_bind_dn: str | None = None
    ldap_bind_password: SecretStr | None = None
    ldap_timeout_seconds: float = 10.0
    # The largest file an import will open (a CSV bomb is refused before it is read).
    max_import_bytes: int = Field(default=2 * 1024**3)
    demo_mode: bool = False

    @field_validator("national_id_hash_key", "encryption_key")
    @classmethod
    def _key_is_strong(cls, value: SecretStr | None, info: object) -> SecretStr | None:
        if value is not None:
            decode_key(value.get_secret_value(), f"IDBROKER_{getattr(info, 'field_name', 'key').upper()}")
        return value

    def key(self, name: str) -> bytes:
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise MissingKeyError(
                f"IDBROKER_{name.upper()} is not set: generate one with `idbroker keys init` "
                "or set it to URL-safe base64 of 32 random bytes"
            )
        return decode_key(value.get_secret_value(), f"IDBROKER_{name.upper()}")


class MissingKeyError(RuntimeError):
    """A key the operation needs is not configured."""


@lru_cache
def get_settings() -> Settings:
    return Settings()
