"""CLI: `idbroker keys init|rotate|status|reencrypt|retire` — the broker's secret keys and their versions — and
`idbroker keys rotate-signing`, a new OpenID Connect signing key (the old ones verify until they expire).

Keys live in the env file (or the environment), never in the database: `init` writes the first version of
each, `rotate KIND` the next one (the highest version is current) and starts moving stored values to it,
`reencrypt` runs that move with a progress bar (the worker runs it too), `status` shows what still uses an
old version, and `retire KIND VERSION` removes a version once nothing uses it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from idbroker.audit.chain import append as audit
from idbroker.cli.db import database_errors, fail, load_settings, open_engine
from idbroker.cli.running import cli_actor, progress_bar, transaction
from idbroker.config import Settings, get_settings
from idbroker.db import session_scope
from idbroker.keys import reencrypt, status
from idbroker.keys.check import KeyConfigurationError, check_keys
from idbroker.keys.env_file import append_keys, read_assignments
from idbroker.keys.keyring import ENCRYPTION, HASH, KINDS, PSEUDONYM, SIGNING, keyring
from idbroker.keys.rotation import RotationRefused, retire, rotate

keys_app = typer.Typer(no_args_is_help=True, help="The broker's secret keys.")

KEY_NAMES = ("IDBROKER_NATIONAL_ID_HASH_KEY", "IDBROKER_ENCRYPTION_KEY")
DEFAULT_ENV_FILE = Path("var/idbroker.env")
EnvFile = Annotated[Path, typer.Option("--env-file", help="The env file the broker reads.")]
Kind = Annotated[str, typer.Argument(help=f"One of {', '.join(KINDS)}.")]


def require_keys() -> Settings:
    """The settings, once every key a serving or working process needs is there (else a clear exit 1)."""
    settings = load_settings()
    try:
        check_keys(settings)
    except KeyConfigurationError as exc:
        raise fail(str(exc)) from None
    return settings


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
    append_keys(env_file, missing)
    return missing


@keys_app.command("init")
def init_command(env_file: EnvFile = DEFAULT_ENV_FILE) -> None:
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


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise fail(f"unknown key kind {kind!r}: one of {', '.join(KINDS)}")
    return kind


@keys_app.command("rotate")
def rotate_command(kind: Kind, env_file: EnvFile = DEFAULT_ENV_FILE) -> None:
    """Add the next version of a key (it becomes current) and queue moving stored values to it."""
    kind = _kind(kind)
    settings = require_keys()
    try:
        with transaction() as session:
            done = rotate(session, settings, kind, env_file, actor=cli_actor())
    except (RotationRefused, OSError) as exc:
        raise fail(f"cannot rotate the {kind} key: {exc}") from None
    get_settings.cache_clear()
    if done.variable is None:
        typer.echo(f"signing key {done.version} is now in use")
        for kid in done.retired:
            typer.echo(f"retired {kid}: still verifies for IDBROKER_OIDC_KEY_RETENTION_SECONDS")
        return
    typer.echo(f"created {done.variable} in {env_file}: {kind} {done.version} is current from the next start")
    if kind in (HASH, ENCRYPTION):
        typer.echo("restart every `idbroker serve` and `idbroker worker`, then the worker moves stored values;")
        typer.echo(f"or run `idbroker keys reencrypt {kind}` (see `idbroker keys status`)")
    else:
        typer.echo("restart every `idbroker serve`: new pseudonyms use it, stored ones never change")


@keys_app.command("reencrypt")
def reencrypt_command(
    kind: Annotated[str | None, typer.Argument(help=f"{HASH} or {ENCRYPTION} (default: both).")] = None,
    batch: Annotated[int, typer.Option(min=1, max=10000, help="Rows per transaction.")] = reencrypt.BATCH,
) -> None:
    """Move every stored value of a key kind to its current version: resumable, one batch per transaction."""
    kinds = [_kind(kind)] if kind else [HASH, ENCRYPTION]
    for one in kinds:
        if one not in (HASH, ENCRYPTION):
            raise fail(f"{one} has nothing to re-encrypt: stored pseudonyms never change, signing keys expire")
    settings = require_keys()
    for one in kinds:
        current = keyring(settings, one).current
        with transaction() as session:
            left = sum(n for version, n in status.totals(session, one).items() if version != current)
            if reencrypt.pending(session, one) is None:
                if not left:
                    typer.echo(f"{one}: every stored value already uses {current}")
                    continue
                reencrypt.start_pass(session, one, current)
        changed = 0
        engine = open_engine()
        try:
            with database_errors(engine), progress_bar(f"{one} → {current}") as bar:
                task = bar.add_task(one, total=left)
                while True:  # one transaction per batch: a kill loses at most the batch in flight
                    with session_scope(engine) as session:
                        step = reencrypt.run_batch(session, settings, one, size=batch, actor=cli_actor())
                    changed += step.changed
                    bar.update(task, completed=min(changed, left))
                    if step.finished:
                        break
        except reencrypt.StaleKeys as exc:
            raise fail(str(exc)) from None
        finally:
            engine.dispose()
        typer.echo(f"{one}: {changed} values moved to {current}")


@keys_app.command("status")
def status_command() -> None:
    """Each key's versions (current first) and how many stored values still use each."""
    settings = require_keys()
    with transaction() as session:
        for kind in (HASH, ENCRYPTION, PSEUDONYM):
            ring = keyring(settings, kind)
            counts = status.usage(session, kind)
            typer.echo(f"{kind}: current {ring.current}; configured {', '.join(ring.versions)}")
            for place, by_version in counts.items():
                shown = ", ".join(f"{v} {n}" for v, n in sorted(by_version.items())) or "none"
                typer.echo(f"  {place}: {shown}")
            old = sum(n for v, n in status.totals(session, kind).items() if v != ring.current)
            if kind != PSEUDONYM:
                typer.echo(f"  on an old version: {old}")
            cursor = reencrypt.pending(session, kind)
            if cursor is not None:
                typer.echo(
                    f"  pass to {cursor.version} running: at {cursor.table_name} after "
                    f"{cursor.last_key or 'the start'}, {cursor.values_moved} moved"
                )
        from idbroker.oidc.keys import live_keys

        rows = live_keys(session)
        typer.echo(f"{SIGNING}: {len(rows)} published")
        for row in rows:
            state = "signing" if row.retired_at is None else f"retired, verifies until {row.expires_at:%Y-%m-%d %H:%M}"
            typer.echo(f"  {row.kid}: {state}")


@keys_app.command("retire")
def retire_command(
    kind: Kind,
    version: Annotated[str, typer.Argument(help="The old version to remove, e.g. k1.")],
    env_file: EnvFile = DEFAULT_ENV_FILE,
) -> None:
    """Remove an old key version from the env file; refused while any stored value uses it."""
    kind = _kind(kind)
    settings = require_keys()
    try:
        with transaction() as session:
            name = retire(session, settings, kind, version, env_file, actor=cli_actor())
    except (RotationRefused, OSError) as exc:
        raise fail(f"cannot retire {kind} {version}: {exc}") from None
    get_settings.cache_clear()
    typer.echo(f"removed {name} from {env_file}: restart every process so that none keeps it in memory")


def rotate_signing_command() -> None:
    """A new OpenID Connect signing key; the current one keeps verifying until it expires."""
    from idbroker.oidc.keys import rotate as rotate_signing  # the OIDC provider, only for this command

    settings = get_settings()
    with transaction() as session:
        new, retired = rotate_signing(session, settings)
        audit(
            session,
            actor=cli_actor(),
            action="oidc.rotate_signing_key",
            details={"kid": new.kid, "retired": [row.kid for row in retired]},
        )
    typer.echo(f"signing key {new.kid} is now in use")
    for row in retired:
        typer.echo(f"retired {row.kid}: still verifies until {row.expires_at:%Y-%m-%d %H:%M} UTC")


def register(app: typer.Typer) -> None:
    keys_app.command("rotate-signing")(rotate_signing_command)
    app.add_typer(keys_app, name="keys")
