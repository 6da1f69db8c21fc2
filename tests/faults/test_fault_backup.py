"""`idbroker backup PATH` while the service writes: the copy restores whole, at head, and its audit log verifies.

A writer thread keeps committing transactions that each add a person, a record of that person and an
audit event — together or not at all — while `idbroker backup` runs as its own process. A consistent copy
holds as many of the writer's people as records and as events (never half of a transaction), at least those
committed before the backup started and at most those committed before it ended. The copy is then restored
the documented way — on SQLite the file becomes the database, on PostgreSQL `pg_restore` into a new
database — and opened as the broker's database: schema at head, `audit verify` passes, the data is there.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fault_support import assert_audit_verifies, cli, cli_here, environment, wait_until
from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.audit.models import AuditEvent
from idbroker.clock import utcnow
from idbroker.db import make_engine, session_scope
from idbroker.directory.ids import new_person_id
from idbroker.directory.models import Person, SourceRecord

pytestmark = pytest.mark.slow

FILLER = 20_000  # records already stored, so the copy has some size to it
_names = itertools.count(1)


def fill(engine: Engine) -> None:
    now = utcnow()
    rows = [
        {
            "source": "billing",
            "key": f"B{n:07d}",
            "present": True,
            "name": f"用户{n}",
            "extra": {},
            "set_aside": [],
            "row_hash": hashlib.sha256(str(n).encode()).hexdigest(),
            "first_seen": now,
            "last_seen": now,
        }
        for n in range(FILLER)
    ]
    with session_scope(engine) as db:
        db.execute(insert(SourceRecord.__table__), rows)  # type: ignore[attr-defined]


class Writer:
    """Commits person + record + audit event transactions until stopped; `committed` counts them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.committed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)

    def start(self) -> Writer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            n = self.committed + 1
            with session_scope(self.engine) as db:
                person_id = new_person_id()
                db.add(Person(id=person_id))
                db.flush()
                db.add(SourceRecord(source="cas", key=f"W{n:06d}", person_id=person_id, name="写入者", row_hash=str(n)))
                audit(db, actor="test:writer", action="test.write", subject=person_id, details={"n": n})
            self.committed = n


@contextmanager
def restore(engine: Engine, backup: Path, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Restore `backup` the documented way; yields the restored database's URL."""
    if engine.dialect.name == "sqlite":
        target = tmp_path / "restored" / "idbroker.db"
        target.parent.mkdir()
        shutil.copyfile(backup, target)
        yield f"sqlite:///{target}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = f"restored_{next(_names)}"
    cluster.create_database(name)
    try:
        pg_restore = shutil.which("pg_restore") or str(cluster.bin_dir / "pg_restore")
        done = subprocess.run(
            [
                pg_restore,
                "--no-owner",
                "--exit-on-error",
                f"--dbname=postgresql://postgres@127.0.0.1:{cluster.port}/{name}",
                str(backup),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


def test_a_backup_taken_while_the_service_writes_restores_whole_and_verifies(
    engine: Engine, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fill(engine)
    env = environment(engine)
    backup = tmp_path / ("idbroker-backup.db" if engine.dialect.name == "sqlite" else "idbroker-backup.dump")

    writer = Writer(engine).start()
    try:
        wait_until(lambda: writer.committed >= 20, "the writer to get going")
        before = writer.committed
        result = cli(env, "backup", str(backup))
        after = writer.committed
    finally:
        writer.stop()
    assert result.returncode == 0, result.stderr
    assert "backed up" in result.stdout and str(backup) in result.stdout
    assert after > before, "nothing was written while the backup ran"
    assert backup.stat().st_mode & 0o777 == 0o600  # it holds everyone's data
    assert not backup.with_name(backup.name + ".partial").exists()

    with restore(engine, backup, request, tmp_path) as url:
        restored_env = environment(url)
        code, current = cli_here(restored_env, "db", "current")
        assert code == 0 and "(at head)" in current, current
        assert_audit_verifies(restored_env)
        restored = make_engine(url)
        try:
            with Session(restored) as session:
                events = session.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "test.write")
                )
                people = session.scalar(
                    select(func.count()).select_from(SourceRecord).where(SourceRecord.source == "cas")
                )
                linked = session.scalar(
                    select(func.count())
                    .select_from(SourceRecord)
                    .join(Person, Person.id == SourceRecord.person_id)  # type: ignore[arg-type]
                    .where(SourceRecord.source == "cas")
                )
                filler = session.scalar(
                    select(func.count()).select_from(SourceRecord).where(SourceRecord.source == "billing")
                )
                backups = session.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "backup")
                )
        finally:
            restored.dispose()
        assert before <= events <= after  # a snapshot of an instant while the backup ran …
        assert events == people == linked  # … holding whole transactions only
        assert filler == FILLER and backups == 0  # the backup is recorded after it was written

    with Session(engine) as session:
        recorded = session.scalars(select(AuditEvent).where(AuditEvent.action == "backup")).all()
    assert len(recorded) == 1 and backup.name in recorded[0].details
    assert_audit_verifies(env)


def test_a_backup_that_cannot_be_made_says_why_and_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    env = environment(engine)
    existing = tmp_path / "backup.db"
    existing.write_bytes(b"an earlier backup")
    code, output = cli_here(env, "backup", str(existing))
    assert code == 1 and "already exists" in output
    assert existing.read_bytes() == b"an earlier backup"  # never replaced
    code, output = cli_here(env, "backup", str(tmp_path / "no-such-dir" / "backup.db"))
    assert code == 1 and "is not a directory" in output
    if engine.dialect.name == "postgresql":
        code, output = cli_here(env, "backup", str(tmp_path / "new.dump"), "--pg-dump", str(tmp_path / "no-pg_dump"))
        assert code == 1 and "pg_dump was not found" in output and "pg_restore" in output
    assert sorted(path.name for path in tmp_path.iterdir() if "backup" in path.name or "dump" in path.name) == [
        "backup.db"
    ]
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0  # and nothing recorded
