"""National IDs are kept only as a keyed hash (to match) and a ciphertext (to show the helpdesk).

Both carry the key version (`k1`), so keys can be rotated with old values still readable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idbroker.config import Settings

KEY_VERSION = "k1"


@dataclass(frozen=True)
class Protector:
    hash_key: bytes
    encryption_key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> Protector:
        return cls(settings.key("national_id_hash_key"), settings.key("encryption_key")[:32])

    def keyed_hash(self, value: str, purpose: str = "national_id") -> str:
        mac = hmac.new(self.hash_key, f"{purpose}\x00{value}".encode(), hashlib.sha256)
        return f"{KEY_VERSION}${mac.hexdigest()[:54]}"

    def encrypt(self, value: str, purpose: str = "national_id") -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.encryption_key).encrypt(nonce, value.encode(), purpose.encode())
        return f"{KEY_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, purpose: str = "national_id") -> str:
        version, _, body = token.partition(":")
        if version != KEY_VERSION:
            raise ValueError(f"unknown key version {version!r}")
        raw = base64.urlsafe_b64decode(body)
        return AESGCM(self.encryption_key).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
