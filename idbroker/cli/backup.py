"""CLI: `idbroker backup PATH` — a consistent copy of the database, taken while the service keeps writing.

- **SQLite**: the online backup API (`sqlite3.Connection.backup`) copies every page in one step, inside one
  read transaction: under WAL the service's writers carry on meanwhile, and the copy is the database as it
  was at that instant — never half of a transaction. The copy is written beside PATH as `PATH.partial`,
  checked (`PRAGMA quick_check`), switched to a rollback journal (one self-contained file), flushed to disk
  and only then renamed to PATH.
- **PostgreSQL**: `pg_dump --format=custom` (one snapshot, so just as consistent while the service writes),
  found on PATH or under `/usr/lib/postgresql/*/bin`, or named with `--pg-dump`; the password goes to it in
  the environment (`PGPASSWORD`), never on its command line. Restore with `pg_restore` into a new database.

PATH must not exist yet (a backup never replaces a file) and is created readable by its owner only. A backup
reads everyone's data, so it is recorded in the audit log (`backup`: format, file name, size) once written.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from idbroker.audit.chain import append as audit
from idbroker.cli.db import fail, open_engine, safe_url
from idbroker.cli.running import cli_actor, transaction

PG_BIN_DIRS = Path("/usr/lib/postgresql")


def _check_target(target: Path) -> None:
    if target.exists() or target.is_symlink():
        raise fail(f"{target} already exists: a backup never replaces a file, choose a new name")
    if not target.parent.is_dir():
        raise fail(f"{target.parent} is not a directory")


def _private_file(path: Path) -> None:
    """Create `path` empty, readable by its owner only: a backup holds everyone's data."""
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def backup_sqlite(database: Path, target: Path) -> tuple[int, int]:
    """Copy the SQLite database at `database` to `target` (absent); returns (bytes, the copy's audit head seq)."""
    partial = target.with_name(target.name + ".partial")
    try:
        _private_file(partial)
        source = sqlite3.connect(database, timeout=30)  # it exists (checked): nothing is created
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)  # one step (pages=-1): one read transaction, one instant
                copy.execute("PRAGMA journal_mode=DELETE")  # a single file, no -wal beside it
                problem = copy.execute("PRAGMA quick_check").fetchone()[0]
                if problem != "ok":
                    raise RuntimeError(f"the copy does not pass PRAGMA quick_check: {problem}")
                try:
                    head = copy.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()
                except sqlite3.OperationalError:  # not migrated yet: no audit log to speak of
                    head = None
            finally:
                copy.close()
        finally:
            source.close()
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.rename(target)
        _fsync_directory(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target.stat().st_size, int(head[0]) if head else 0


def find_pg_dump() -> Path | None:
    """`pg_dump` on PATH, else the newest one of Debian's `/usr/lib/postgresql/<major>/bin`."""
    found = shutil.which("pg_dump")
    if found:
        return Path(found)

    def major(path: Path) -> int:
        digits = re.match(r"\d+", path.parent.parent.name)
        return int(digits.group()) if digits else 0

    candidates = sorted(PG_BIN_DIRS.glob("*/bin/pg_dump"), key=major, reverse=True)
    return candidates[0] if candidates else None


def libpq_target(url: URL) -> tuple[str, dict[str, str]]:
    """The connection as a libpq URI without the password, and the environment that carries the password."""
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = {"PGPASSWORD": url.password} if url.password else {}
    return uri, env


def backup_postgresql(engine: Engine, target: Path, pg_dump: Path) -> int:
    """`pg_dump --format=custom` of the engine's database into `target` (absent); returns its size."""
    uri, secret = libpq_target(engine.url)
    partial = target.with_name(target.name + ".partial")
    command = [str(pg_dump), "--format=custom", "--no-password", f"--file={partial}", f"--dbname={uri}"]
    try:
        _private_file(partial)
        result = subprocess.run(  # noqa: S603 (a fixed argument list; the URL holds no password)
            command, env={**os.environ, **secret}, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
            raise fail(f"pg_dump of {safe_url(engine)} failed: {detail}\nno backup was written")
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.rename(target)
        _fsync_directory(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def backup_command(
    path: Annotated[Path, typer.Argument(help="Where to write the backup (must not exist yet).")],
    pg_dump: Annotated[
        Path | None, typer.Option("--pg-dump", help="The pg_dump to run (PostgreSQL; default: found on PATH).")
    ] = None,
) -> None:
    """Back up the database while the service runs: SQLite's online backup, or pg_dump on PostgreSQL."""
    target = path.expanduser().absolute()
    _check_target(target)
    engine = open_engine()
    backend = engine.dialect.name
    try:
        if backend == "sqlite":
            database = engine.url.database
            if not database or database == ":memory:" or not Path(database).is_file():
                raise fail(f"no SQLite database file at {safe_url(engine)}: nothing to back up")
            try:
                size, seq = backup_sqlite(Path(database), target)
            except (sqlite3.Error, RuntimeError, OSError) as exc:
                raise fail(f"backup of {safe_url(engine)} failed: {exc}\nno backup was written") from None
            details: dict[str, object] = {"format": "sqlite", "file": target.name, "bytes": size, "audit_seq": seq}
        elif backend == "postgresql":
            program = pg_dump or find_pg_dump()
            if program is None or not program.is_file():
                raise fail(
                    "pg_dump was not found (Debian: apt install postgresql-client, or pass --pg-dump PATH).\n"
                    "By hand: pg_dump --format=custom --file PATH DBNAME; restore with "
                    "pg_restore --no-owner --dbname NEWDB PATH"
                )
            try:
                size = backup_postgresql(engine, target, program)
            except OSError as exc:
                raise fail(f"backup of {safe_url(engine)} failed: {exc}\nno backup was written") from None
            details = {"format": "pg_dump-custom", "file": target.name, "bytes": size}
        else:
            raise fail(f"backups of {backend} databases are not supported (SQLite and PostgreSQL are)")
    finally:
        engine.dispose()
    with transaction() as session:
        audit(session, actor=cli_actor(), action="backup", details=details)
    typer.echo(f"backed up {safe_url(engine)} to {target} ({size:,} bytes)")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
