"""National-ID hashes for matching while a hash key rotation is under way.

Stored hashes carry their key version, and two versions of one ID's hash are different strings; the linker
compares them as equals only when they are hashes under one version. While more than one version is
configured, a record's hash is translated to the current version (the ciphertext gives the ID back) and
its hashes under every version are what blocking looks up, so a record hashed under k1 and one hashed
under k2 still meet — and two hashes of one ID are never taken for two different IDs (a veto). With one
version configured (no rotation under way) the stored hash is used as it is, at no cost.
"""

from __future__ import annotations

from idbroker.config import Settings, get_settings
from idbroker.directory.protect import Protector

_cache: list[tuple[Settings, Protector]] = []


def _protector() -> Protector:
    settings = get_settings()
    if not _cache or _cache[0][0] is not settings:
        _cache[:] = [(settings, Protector.from_settings(settings))]
    return _cache[0][1]


def rotation_under_way() -> bool:
    """Whether more than one national-ID hash key version is configured (hashes must then be translated)."""
    return len(_protector().hashing.keys) > 1


def for_matching(stored: str | None, cipher: str | None) -> tuple[str | None, tuple[str, ...]]:
    """(the hash under the current version, the hashes under every version — empty without a rotation)."""
    if not stored:
        return stored, ()
    protector = _protector()
    if len(protector.hashing.keys) == 1:
        return stored, ()
    if not cipher:
        return stored, (stored,)
    hashes = tuple(protector.keyed_hashes(protector.decrypt(cipher)))
    return hashes[0], hashes
