"""Rotating and retiring key versions: the operator's two actions, each audited.

`rotate` adds the next version of a kind to the env file (never replacing a line) — the highest version
is current, so from the next start every new value uses it — and starts the pass that moves stored values
to it (`idbroker.keys.reencrypt`). Token signing keys live in the database and rotate there
(`idbroker.oidc.keys.rotate`). `retire` removes an old version from the env file, refused while any stored
value still uses it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.config import Settings
from idbroker.keys import reencrypt, status
from idbroker.keys.env_file import append_keys, read_assignments, remove_assignment
from idbroker.keys.keyring import ENCRYPTION, HASH, KINDS, PSEUDONYM, SETTING, SIGNING, keyring, variable
from idbroker.keys.keyring import version_number as number
from idbroker.oidc import keys as signing_keys


class RotationRefused(ValueError):
    """The rotation or retirement cannot be done (the message says why and what to do)."""


@dataclass(frozen=True)
class Rotated:
    kind: str
    version: str  # the new current version (a kid for signing keys)
    variable: str | None  # where it was written (None for signing keys)
    retired: list[str]  # signing keys retired by the rotation


def _known_versions(settings: Settings, kind: str, env_file: Path) -> set[str]:
    """Versions configured, in the env file or in the environment (a higher one there would be current)."""
    found = set(keyring(settings, kind).keys)
    names = set(os.environ) | (set(read_assignments(env_file)) if env_file.exists() else set())
    base = variable(kind, "k1")
    for name in names:
        if name.startswith(f"{base}_K") and name[len(base) + 2 :].isdigit():
            found.add(f"k{int(name[len(base) + 2 :])}")
    return found


def rotate(session: Session, settings: Settings, kind: str, env_file: Path, *, actor: str) -> Rotated:
    """Add the next version of `kind` and start moving stored values to it (see the module docstring).

    Writes the env file first: if the database step then fails, the key exists and `keys reencrypt`
    starts the pass; the other order could leave values sealed with a key that was never saved.
    """
    if kind not in KINDS:
        raise RotationRefused(f"unknown key kind {kind!r}: one of {', '.join(KINDS)}")
    if kind == SIGNING:
        new, retired = signing_keys.rotate(session, settings)
        audit(session, actor=actor, action="keys.rotate", details={"kind": kind, "kid": new.kid})
        return Rotated(kind, new.kid, None, [row.kid for row in retired])
    version = f"k{max(number(v) for v in _known_versions(settings, kind, env_file)) + 1}"
    name = variable(kind, version)
    if name in os.environ:
        raise RotationRefused(f"{name} is already set in the environment: remove it or rotate by hand")
    append_keys(env_file, [name])
    if kind in (HASH, ENCRYPTION):
        reencrypt.enqueue_pass(session, kind, version)
    audit(session, actor=actor, action="keys.rotate", details={"kind": kind, "version": version})
    return Rotated(kind, version, name, [])


def retire(session: Session, settings: Settings, kind: str, version: str, env_file: Path, *, actor: str) -> str:
    """Remove an old version from the env file; refused while a stored value (or a derived key) needs it."""
    if kind not in SETTING:
        raise RotationRefused(f"{kind} keys cannot be retired by hand: {', '.join(SETTING)} can")
    ring = keyring(settings, kind)
    if version not in ring.keys:
        raise RotationRefused(f"the {kind} key has no version {version} here (versions: {', '.join(ring.versions)})")
    if version == ring.current:
        raise RotationRefused(f"{version} is the current {kind} key: rotate first, then move the data to the new one")
    if kind == PSEUDONYM and version == "k1":
        raise RotationRefused("pseudonym k1 is derived from the encryption key's k1: there is no line to remove")
    if kind == ENCRYPTION and version == "k1":
        raise RotationRefused(
            "the encryption key's k1 also derives pseudonym k1 and the audit checkpoint signing key: it stays "
            "(every ciphertext can still be moved off it with `idbroker keys reencrypt encryption`)"
        )
    used = status.totals(session, kind).get(version, 0)
    if used:
        hint = "they never change" if kind == PSEUDONYM else f"run `idbroker keys reencrypt {kind}` first"
        raise RotationRefused(f"{used} stored values still use {kind} {version}: {hint}")
    if reencrypt.pending(session, kind) is not None:
        raise RotationRefused(f"a {kind} re-encryption pass is still running: let it finish first")
    name = variable(kind, version)
    if name in os.environ:
        raise RotationRefused(f"{name} is set in the environment: remove it there (nothing uses it any more)")
    if not env_file.exists() or not remove_assignment(env_file, name):
        raise RotationRefused(f"{name} is not in {env_file}: remove it where it is set (nothing uses it any more)")
    audit(session, actor=actor, action="keys.retire", details={"kind": kind, "version": version})
    return name
