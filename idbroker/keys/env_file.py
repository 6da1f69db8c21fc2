"""The env file the broker reads its keys from: add a key version (never replacing one), remove a retired one.

The file stays mode 0600; a removal rewrites it through a temporary file and a rename, so a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path

KEY_BYTES = 32
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def new_key() -> str:
    """URL-safe base64 of 32 random bytes (the form `idbroker.config.decode_key` reads)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def read_assignments(path: Path) -> dict[str, str]:
    """NAME → value of the file's `NAME=value` lines (quotes stripped); comments and blanks skipped."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip("'\"")
    return found


def append_keys(path: Path, names: list[str]) -> None:
    """Append `NAME=<new random key>` for each name (file created 0600 if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        if names:
            if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
                handle.write("\n")
            handle.writelines(f"{name}={new_key()}\n" for name in names)
            handle.flush()
            os.fsync(handle.fileno())


def remove_assignment(path: Path, name: str) -> bool:
    """Drop the lines assigning `name`; False when the file has none."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not ((m := _ASSIGNMENT.match(line)) and m.group(1) == name)]
    if len(kept) == len(lines):
        return False
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(kept)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return True
