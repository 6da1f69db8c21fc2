"""The provider: what every endpoint shares — settings, the signing keys, the release gate, the issuer."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from idbroker.config import Settings
from idbroker.oidc.keys import KeyStore
from idbroker.release.gate import ReleaseGate


@dataclass
class Provider:
    settings: Settings
    keys: KeyStore
    gate: ReleaseGate

    @classmethod
    def create(cls, engine: Engine, settings: Settings) -> Provider:
        keys = KeyStore(engine, settings)
        keys.ensure_key()
        return cls(settings=settings, keys=keys, gate=ReleaseGate(settings))

    @property
    def issuer(self) -> str:
        """`IDBROKER_ISSUER`, else `IDBROKER_PUBLIC_URL`: the URL apps reach the broker at."""
        return (self.settings.issuer or self.settings.public_url).rstrip("/")
