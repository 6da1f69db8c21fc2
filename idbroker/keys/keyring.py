"""A key kind's versions (`k1`, `k2` …) and which one is current, read from the settings.

`IDBROKER_NATIONAL_ID_HASH_KEY` and `IDBROKER_ENCRYPTION_KEY` are version k1 of their kinds (deployments
that only have them keep working unchanged); `IDBROKER_<KEY>_K2`, `_K3` … are later versions; the highest
version present is current: new hashes, ciphertexts and pseudonyms use it, older ones stay readable. The
pseudonym key's k1 is derived (HKDF) from the encryption key's k1, as it always was; its later versions are
keys of their own. The token signing keys live in the database (`idbroker.oidc.keys`), not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idbroker.config import MissingKeyError, Settings, decode_key

HASH, ENCRYPTION, PSEUDONYM, SIGNING = "national-id-hash", "encryption", "pseudonym", "signing"
KINDS = (HASH, ENCRYPTION, PSEUDONYM, SIGNING)
SETTING = {HASH: "national_id_hash_key", ENCRYPTION: "encryption_key", PSEUDONYM: "pseudonym_key"}
VERSION = re.compile(r"k([1-9][0-9]{0,2})")


class UnknownKeyVersion(ValueError):
    """A value carries a key version this process is not configured with."""


def version_number(version: str) -> int:
    match = VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"{version!r} is not a key version (k1, k2 …)")
    return int(match.group(1))


def variable(kind: str, version: str) -> str:
    """The environment variable holding this version of this kind."""
    base = f"IDBROKER_{SETTING[kind].upper()}"
    return base if version == "k1" else f"{base}_{version.upper()}"


def derived_pseudonym_key(encryption_k1: bytes, version: str = "k1") -> bytes:
    """Pseudonym k1: HKDF-SHA256 of the encryption key's k1 (how every existing pseudonym was made)."""
    info = f"idbroker pseudonym {version}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(encryption_k1)


@dataclass(frozen=True)
class Keyring:
    kind: str
    keys: dict[str, bytes]  # version → key
    current: str

    def key(self, version: str | None = None) -> bytes:
        wanted = version or self.current
        try:
            return self.keys[wanted]
        except KeyError:
            raise UnknownKeyVersion(
                f"the {self.kind} key version {wanted} is not configured (set {variable(self.kind, wanted)})"
            ) from None

    @property
    def versions(self) -> list[str]:
        """Every configured version, current first, then newest to oldest."""
        others = sorted((v for v in self.keys if v != self.current), key=version_number, reverse=True)
        return [self.current, *others]


def keyring(settings: Settings, kind: str) -> Keyring:
    """The configured versions of `kind`; MissingKeyError (naming the variable) when there is none."""
    if kind not in SETTING:
        raise ValueError(f"unknown key kind {kind!r}: one of {', '.join(KINDS)}")
    name = SETTING[kind]
    keys: dict[str, bytes] = {}
    if kind == PSEUDONYM:
        if settings.encryption_key is not None:
            keys["k1"] = derived_pseudonym_key(settings.key("encryption_key"))
    elif getattr(settings, name) is not None:
        keys["k1"] = settings.key(name)
    for version, secret in settings.key_versions.get(name, {}).items():
        keys[version] = decode_key(secret.get_secret_value(), variable(kind, version))
    if not keys:
        wanted = variable(ENCRYPTION if kind == PSEUDONYM else kind, "k1")
        raise MissingKeyError(
            f"{wanted} is not set: generate one with `idbroker keys init` "
            "or set it to URL-safe base64 of 32 random bytes"
        )
    return Keyring(kind=kind, keys=keys, current=max(keys, key=version_number))
