"""Settings: one pydantic-settings class, read from `IDBROKER_*` variables (and `var/idbroker.env`)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import EnvSettingsSource, SecretsSettingsSource

MIN_KEY_BYTES = 32
# Versioned keys (issue 7): `IDBROKER_ENCRYPTION_KEY` is version k1, `IDBROKER_ENCRYPTION_KEY_K2` version k2 …
KEY_VERSION_VARIABLE = re.compile(r"idbroker_(national_id_hash_key|encryption_key|pseudonym_key)_k([1-9][0-9]{0,2})")


def decode_key(value: str, name: str) -> bytes:
    """A key is given as URL-safe base64 of at least 32 random bytes; anything else is refused."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} is not valid base64") from exc
    if len(raw) < MIN_KEY_BYTES:
        raise ValueError(f"{name} is too short: {len(raw)} bytes, need at least {MIN_KEY_BYTES}")
    return raw


class KeyVersionsSource(PydanticBaseSettingsSource):
    """`IDBROKER_<KEY>_K<n>` from the env file, then the environment (which wins), as `key_versions`."""

    def __init__(self, settings_cls: type[BaseSettings], *sources: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.sources = sources

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, dict[str, str]] = {}
        for variables in (_secret_files(), *(source.env_vars for source in self.sources)):  # later ones win
            for name, value in variables.items():
                match = KEY_VERSION_VARIABLE.fullmatch(name.lower())
                if match and value:
                    found.setdefault(match.group(1), {})[f"k{match.group(2)}"] = value
        return {"key_versions": found} if found else {}


def _secret_files() -> dict[str, str]:
    """`IDBROKER_<KEY>_K<n>` files in `IDBROKER_SECRETS_DIR`, like every other setting's secret file."""
    directory = os.environ.get("IDBROKER_SECRETS_DIR")
    if not directory or not Path(directory).is_dir():
        return {}
    found = {}
    for path in Path(directory).iterdir():
        if KEY_VERSION_VARIABLE.fullmatch(path.name.lower()) and path.is_file():
            found[path.name] = path.read_text(encoding="utf-8").strip()
    return found


def secrets_dir_source(
    settings_cls: type[BaseSettings], default: PydanticBaseSettingsSource
) -> PydanticBaseSettingsSource:
    """Issue 7: a file per setting in `IDBROKER_SECRETS_DIR` (e.g. /run/secrets/IDBROKER_ENCRYPTION_KEY)."""
    directory = os.environ.get("IDBROKER_SECRETS_DIR")
    if not directory or not Path(directory).is_dir():
        return default  # a directory that is not there is reported by the `secrets_dir` setting's check
    return SecretsSettingsSource(settings_cls, secrets_dir=directory)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IDBROKER_", env_file="var/idbroker.env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///./var/idbroker.db"
    # Page cache of each SQLite connection (grows only as pages are read): an import or a link of a million
    # records touches every index of the records table, which thrashes SQLite's own 2 MiB default.
    sqlite_cache_mib: int = Field(default=64, ge=2, le=4096)
    policies_dir: Path = Path("policies")
    # Keyed hash of national IDs (matching) and the encryption key of their stored value.
    national_id_hash_key: SecretStr | None = None
    encryption_key: SecretStr | None = None
    # Key versions k2, k3 … (issue 7): {"encryption_key": {"k2": …}} from `IDBROKER_ENCRYPTION_KEY_K2` and the
    # like (also `IDBROKER_PSEUDONYM_KEY_K2`; pseudonym k1 is derived from the encryption key's k1). The highest
    # version of a key is its current one; `idbroker keys rotate KIND` adds one.
    key_versions: dict[str, dict[str, SecretStr]] = Field(default_factory=dict)
    # Bind credentials for `idbroker import cas ldap://…`.
    ldap_bind_dn: str | None = None
    ldap_bind_password: SecretStr | None = None
    ldap_timeout_seconds: float = 10.0
    # The largest file an import will open (a CSV bomb is refused before it is read).
    max_import_bytes: int = Field(default=2 * 1024**3)
    demo_mode: bool = False
    # web and CAS (issues 3 and 6)
    public_url: str = "http://127.0.0.1:8000"  # how browsers reach the broker; https turns on Secure cookies, HSTS
    cas_server_url: str | None = None  # e.g. https://cas.example.edu/cas; unset in demo mode → the dev CAS page
    cas_timeout_seconds: float = 10.0
    session_ttl_seconds: int = Field(default=8 * 3600, gt=0)  # a login lasts at most this long
    session_idle_seconds: int = Field(default=30 * 60, gt=0)  # … and ends after this long without a request
    max_request_bytes: int = Field(default=1024**2, gt=0)  # larger request bodies get 413 before they are read

    # Apps: OpenID Connect provider and REST API (issue 4)
    issuer: str | None = None  # e.g. https://idbroker.example.edu; unset → public_url (the URL apps reach us at)
    oidc_code_seconds: int = Field(default=60, gt=0, le=600)  # an authorization code lives this long
    oidc_access_token_seconds: int = Field(default=3600, gt=0)
    oidc_refresh_token_seconds: int = Field(default=30 * 86400, gt=0)
    oidc_id_token_seconds: int = Field(default=600, gt=0)
    oidc_key_retention_seconds: int = Field(default=2 * 86400, gt=0)  # a retired signing key still verifies

    # WeChat Work (issue 5)
    wecom_corp_id: str | None = None  # the corp's ID (corpid): also the receiveid inside every callback
    wecom_contacts_secret: SecretStr | None = None  # the contacts-sync (通讯录同步) secret: manages members
    wecom_callback_token: SecretStr | None = None  # the callback Token (≤ 32 characters): signs callbacks
    wecom_encoding_aes_key: SecretStr | None = None  # the callback EncodingAESKey (43 characters): encrypts them
    wecom_api_base: str = "https://qyapi.weixin.qq.com/cgi-bin/"  # tests point it at the stand-in
    wecom_concurrency: int = Field(default=50, ge=1, le=300)  # calls in flight at once, under the corp's cap
    wecom_rate_window_seconds: float = Field(default=60.0, gt=0)  # a 45009 block lasts this long
    wecom_timeout_seconds: float = Field(default=15.0, gt=0)

    # Staff consoles and the privacy officer's audit (issue 6)
    audit_checkpoint_interval_seconds: int = Field(default=3600, ge=60)  # `idbroker worker` signs the head this often
    audit_retention_interval_seconds: int = Field(default=86400, ge=3600)  # and applies policies/retention.yaml

    # Contacts: SMS and email senders (issue 3). Unset providers: the demo outbox in demo mode, else no sending.
    sms_provider: Literal["kannel", "cloud", "outbox"] | None = None  # outbox only in demo mode
    sms_timeout_seconds: float = Field(default=10.0, gt=0)
    kannel_sendsms_url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    kannel_username: str = "idbroker"
    kannel_password: SecretStr | None = None
    kannel_sender: str | None = None  # the sender number (`from`); unset → the smsbox's global-sender
    kannel_dlr_mask: int = Field(default=31, ge=0, le=31)  # delivery reports asked for (1|2|4|8|16)
    report_base_url: str | None = None  # where gateways call back (Kannel dlr-url); unset → public_url
    cloud_sms_endpoint: str = "https://dysmsapi.aliyuncs.com/"  # Aliyun SendSms (RPC, 2017-05-25)
    cloud_sms_access_key_id: str | None = None
    cloud_sms_access_key_secret: SecretStr | None = None
    cloud_sms_sign_name: str = "示例大学"
    cloud_sms_report_token: SecretStr | None = None  # the secret path part of the SmsReport push URL
    email_provider: Literal["smtp", "outbox"] | None = None  # outbox only in demo mode
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "idbroker@localhost"
    smtp_ca_file: Path | None = None  # trust this CA for the SMTP server's certificate (else the system's)
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    contacts_inline_delivery: bool = True  # first try right after the request; retries go through the worker
    contacts_inline_collect_limit: int = Field(default=5000, ge=0)  # more changed people: the worker collects them

    # Running it: secrets, logs, metrics, proxies, workers (issue 7, README "Deployment")
    secrets_dir: Path | None = None  # a file per setting, named like its variable; the environment wins over it
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"  # JSON lines on stderr (idbroker/logs.py)
    metrics_token: SecretStr | None = None  # set: /metrics wants `Authorization: Bearer …`; unset: loopback only
    metrics_dir: Path | None = None  # prometheus_client's multiprocess directory for `serve --workers N`
    trusted_proxies: str = "127.0.0.1,::1"  # addresses or networks whose X-Forwarded-For/-Proto are believed
    job_lease_seconds: float = Field(default=60.0, gt=0)  # a worker's hold on a job, renewed while it runs

    @field_validator("secrets_dir")
    @classmethod
    def _secrets_dir_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"IDBROKER_SECRETS_DIR {value} is not a directory")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for entry in (part.strip() for part in value.split(",")):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"IDBROKER_TRUSTED_PROXIES: {entry!r} is not an IP address or network (e.g. 10.0.0.0/24)"
                ) from None
        return value

    @field_validator("national_id_hash_key", "encryption_key")
    @classmethod
    def _key_is_strong(cls, value: SecretStr | None, info: object) -> SecretStr | None:
        if value is not None:
            decode_key(value.get_secret_value(), f"IDBROKER_{getattr(info, 'field_name', 'key').upper()}")
        return value

    @field_validator("key_versions")
    @classmethod
    def _versions_are_strong(cls, value: dict[str, dict[str, SecretStr]]) -> dict[str, dict[str, SecretStr]]:
        for name, versions in value.items():
            for version, secret in versions.items():
                variable = f"IDBROKER_{name.upper()}_{version.upper()}"
                if version == "k1":
                    raise ValueError(f"{variable}: version k1 is IDBROKER_{name.upper()} itself")
                decode_key(secret.get_secret_value(), variable)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [s for s in (dotenv_settings, env_settings) if isinstance(s, EnvSettingsSource)]
        versions = KeyVersionsSource(settings_cls, *sources)
        secrets = secrets_dir_source(settings_cls, file_secret_settings)  # issue 7: IDBROKER_SECRETS_DIR
        return init_settings, env_settings, dotenv_settings, versions, secrets

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
