"""Signing keys (RFC 7517): RS256 keys with a `kid`, their private half encrypted at rest, and rotation.

The newest key that is not retired signs. `rotate` makes a new key and retires the others: a retired key
no longer signs but is still published and trusted until it expires (`oidc_key_retention_seconds`
later, longer than any ID token it signed lives), so relying parties never meet an unknown `kid`.
The private JWK is sealed with AES-GCM under the current version of the broker's encryption key
(`Protector`); `idbroker keys rotate encryption` moves it to a new version with every other ciphertext.
Keys are cached per process and read again every `CACHE_SECONDS`, so a rotation reaches every worker.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import Engine, select
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.directory.protect import Protector
from idbroker.oidc.models import SigningKey

ALGORITHM = "RS256"
RSA_BITS = 2048
CACHE_SECONDS = 30.0
SEAL_PURPOSE = "oidc-signing-key"


@dataclass(frozen=True)
class Keys:
    signing: RSAKey  # private, with its kid
    kid: str
    trusted: KeySet  # public keys not yet expired (what the JWKS publishes)


def create_key(session: Session, settings: Settings) -> SigningKey:
    private = RSAKey.generate_key(RSA_BITS, private=True)
    kid = private.thumbprint()
    public = {**private.as_dict(private=False), "kid": kid, "alg": ALGORITHM, "use": "sig"}
    sealed = Protector.from_settings(settings).encrypt(json.dumps(private.as_dict(private=True)), SEAL_PURPOSE)
    row = SigningKey(kid=kid, alg=ALGORITHM, private_key_cipher=sealed, public_jwk=public)
    session.add(row)
    session.flush()
    return row


def rotate(session: Session, settings: Settings) -> tuple[SigningKey, list[SigningKey]]:
    """A new signing key; the current ones retire now and expire after the retention period."""
    now = utcnow()
    retired = list(session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))))  # type: ignore[union-attr]
    for row in retired:
        row.retired_at = now
        row.expires_at = now + timedelta(seconds=settings.oidc_key_retention_seconds)
        session.add(row)
    return create_key(session, settings), retired


def live_keys(session: Session) -> list[SigningKey]:
    """Keys not yet expired, newest first."""
    now = utcnow()
    rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())).all()  # type: ignore[attr-defined]
    return [row for row in rows if row.expires_at is None or row.expires_at > now]


class KeyStore:
    """The keys of one process, cached briefly. `ensure_key` (own transaction, at start-up) makes the first
    key; `keys(session)` reads them in the caller's transaction when the cache is stale (on SQLite a second
    connection would wait for the caller's write lock)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self._lock = threading.Lock()
        self._keys: Keys | None = None
        self._loaded = 0.0

    def ensure_key(self) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            if not any(row.retired_at is None for row in live_keys(session)):
                create_key(session, self.settings)
                session.commit()

    def keys(self, session: Session) -> Keys:
        with self._lock:
            if self._keys is None or time.monotonic() - self._loaded > CACHE_SECONDS:
                self._keys = self._load(session)
                self._loaded = time.monotonic()
            return self._keys

    def refresh(self) -> None:
        with self._lock:
            self._keys = None

    def _load(self, session: Session) -> Keys:
        rows = live_keys(session)
        current = next((row for row in rows if row.retired_at is None), None)
        if current is None:
            raise RuntimeError("no OpenID Connect signing key: run `idbroker keys rotate-signing`")
        opened = Protector.from_settings(self.settings).decrypt(current.private_key_cipher, SEAL_PURPOSE)
        signing = RSAKey.import_key(json.loads(opened), parameters={"kid": current.kid, "alg": ALGORITHM})
        trusted = KeySet([RSAKey.import_key(dict(row.public_jwk)) for row in rows])
        return Keys(signing=signing, kid=current.kid, trusted=trusted)
