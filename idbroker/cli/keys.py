"""CLI: `idbroker keys init` — create the broker's secret keys in its env file, never replacing one."""

from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path
from typing import Annotated

import typer

from idbroker.cli.db import fail

keys_app = typer.Typer(no_args_is_help=True, help="The broker's secret keys.")

KEY_NAMES = ("IDBROKER_NATIONAL_ID_HASH_KEY", "IDBROKER_ENCRYPTION_KEY")
KEY_BYTES = 32
DEFAULT_ENV_FILE = Path("var/idbroker.env")
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


def init_keys(env_file: Path) -> list[str]:
    """Add each missing key to `env_file` (created with mode 0600); return the names added.

    An existing key is never overwritten: data encrypted or hashed with it would become unreadable.
    """
    existing = read_assignments(env_file) if env_file.exists() else {}
    empty = [name for name in KEY_NAMES if name in existing and not existing[name]]
    if empty:
        names = ", ".join(empty)
        raise ValueError(f"{names} is set but empty in {env_file}: remove the line, then run again")
    missing = [name for name in KEY_NAMES if name not in existing]
    env_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        if missing:
            if env_file.stat().st_size and not env_file.read_bytes().endswith(b"\n"):
                handle.write("\n")
            handle.writelines(f"{name}={new_key()}\n" for name in missing)
    return missing


@keys_app.command("init")
def init_command(
    env_file: Annotated[Path, typer.Option("--env-file", help="The env file the broker reads.")] = DEFAULT_ENV_FILE,
) -> None:
    """Generate IDBROKER_NATIONAL_ID_HASH_KEY and IDBROKER_ENCRYPTION_KEY where they are missing."""
    try:
        created = init_keys(env_file)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise fail(f"cannot initialise keys in {env_file}: {exc}") from None
    for name in created:
        typer.echo(f"created {name} in {env_file}")
    for name in KEY_NAMES:
        if name not in created:
            typer.echo(f"kept the existing {name} in {env_file}")
        if name in os.environ:
            typer.echo(f"note: {name} is also set in the environment, which takes precedence over {env_file}")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
