"""National IDs are kept only as a keyed hash (to match) and a ciphertext (to show the helpdesk).

Both carry the key version (`k1$…` hashes, `k1:…` ciphertexts). New values use the current version of the
hash and encryption keys (`idbroker.keys.keyring`); a value under an older version stays readable (decrypt
picks the version it names) and matchable (`keyed_hashes` gives a value's hash under every configured
version), until `idbroker keys reencrypt` has moved it to the current one.
"""

from __future__ import annotations

import base64
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idbroker.config import Settings
from idbroker.keys.keyring import ENCRYPTION, HASH, Keyring, UnknownKeyVersion, keyring

KEY_VERSION = "k1"  # the version of deployments that never rotated


def hash_version(stored: str) -> str:
    """`k2` of `k2$…`."""
    return stored.partition("$")[0]


def cipher_version(stored: str) -> str:
    """`k2` of `k2:…`."""
    return stored.partition(":")[0]


@dataclass(frozen=True)
class Protector:
    hashing: Keyring
    encryption: Keyring

    @classmethod
    def from_settings(cls, settings: Settings) -> Protector:
        return cls(keyring(settings, HASH), keyring(settings, ENCRYPTION))

    @property
    def hash_key(self) -> bytes:
        """The current hash key (WeChat Work userids are made with it once, then stored)."""
        return self.hashing.key()

    def keyed_hash(self, value: str, purpose: str = "national_id", version: str | None = None) -> str:
        version = version or self.hashing.current
        mac = hmac.digest(self.hashing.key(version), f"{purpose}\x00{value}".encode(), "sha256")
        return f"{version}${mac.hex()[:54]}"

    def keyed_hashes(self, value: str, purpose: str = "national_id") -> list[str]:
        """The value's hash under every configured version, current first: what a lookup must try."""
        return [self.keyed_hash(value, purpose, version) for version in self.hashing.versions]

    def hash_matches(self, stored: str, value: str, purpose: str = "national_id") -> bool:
        """Whether `stored` (of any configured version) is the hash of `value`."""
        try:
            candidate = self.keyed_hash(value, purpose, hash_version(stored))
        except UnknownKeyVersion:
            return False
        return hmac.compare_digest(stored, candidate)

    def encrypt(self, value: str, purpose: str = "national_id") -> str:
        version = self.encryption.current
        nonce = os.urandom(12)
        sealed = AESGCM(self.encryption.key(version)[:32]).encrypt(nonce, value.encode(), purpose.encode())
        return f"{version}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, purpose: str = "national_id") -> str:
        version, _, body = token.partition(":")
        key = self.encryption.key(version)  # UnknownKeyVersion (a ValueError) names the missing variable
        raw = base64.urlsafe_b64decode(body)
        return AESGCM(key[:32]).decrypt(raw[:12], raw[12:], purpose.encode()).decode()

    def reencrypt(self, token: str, purpose: str = "national_id") -> str | None:
        """The value under the current version, or None when it already is."""
        if cipher_version(token) == self.encryption.current:
            return None
        return self.encrypt(self.decrypt(token, purpose), purpose)
