"""`kill -9` of `idbroker import` in the middle of a large import: nothing of that run is applied.

An import is one transaction (`idbroker/sources/importer.py`): the records, their links, the people, the
contacts, the import run and its audit event commit together or not at all. The test imports a first
export, then starts a larger one that changes those rows and adds thousands more, kills the process while
its write transaction is open, and finds every table exactly as the first import left it. Running the same
import again gives the full result, and the audit log verifies after each step.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from factories import STUDENT_HEADER, national_id, student, write_csv
from fault_support import assert_audit_verifies, cli_here, environment, kill9, log_tail, reap, start, wait_until
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session, SQLModel

import idbroker.models  # noqa: F401 (every table in the metadata, for the snapshot)
from idbroker.directory.models import SourceRecord

pytestmark = pytest.mark.slow

FIRST = 200  # rows of the first export
ADDED = 12_000  # rows the second export adds (below the importer's parallel-parsing threshold of 20,000)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红"
HOLD_SECONDS = 0.3  # how long after it began writing records the import is killed


def rows(count: int, *, start: int = 0, phone_prefix: str = "139") -> list[list[str]]:
    made = []
    for n in range(start, start + count):
        birth = date(1996, 1, 1) + timedelta(days=n % 1500)
        name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n // len(SURNAMES)) % len(GIVEN)] + GIVEN[n % 7]
        made.append(
            student(
                f"11{20200000 + n:08d}",
                name,
                "男" if n % 2 else "女",
                birth.isoformat(),
                national_id(birth, 100 + n // 1500),
                "本科",
                "2020",
                f"{phone_prefix}{n:08d}",
            )
        )
    return made


def snapshot(engine: Engine) -> dict[str, object]:
    """Every table's row count, and the first export's records as stored (hash and phone of each)."""
    with Session(engine) as session:
        counts: dict[str, object] = {
            table.name: session.scalar(select(func.count()).select_from(table))
            for table in SQLModel.metadata.sorted_tables
        }
        records = session.execute(
            select(SourceRecord.key, SourceRecord.row_hash, SourceRecord.phone).order_by(SourceRecord.key)  # type: ignore[arg-type]
        ).all()
    counts["first export"] = [tuple(row) for row in records]
    return counts


def _sqlite_locked(path: str) -> bool:
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:  # database is locked: another process holds the write lock
        return True
    finally:
        probe.close()


def in_transaction(engine: Engine) -> bool:
    """True while another process holds an open write transaction on the test's database."""
    if engine.dialect.name == "sqlite":
        return _sqlite_locked(engine.url.database or "")
    with engine.connect() as connection:
        return bool(connection.scalar(text(f"SELECT count(*) FROM pg_stat_activity WHERE {OTHER_WRITER}")))


OTHER_WRITER = "datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
SPILLED = 1024 * 1024  # bytes of uncommitted pages SQLite has spilled into the WAL: records are being written


def writing_records(engine: Engine) -> bool:
    """True once the open import transaction writes more than its import run: records, people, links.

    SQLite: the write lock is held and the WAL (truncated before the import) has grown by a megabyte — pages
    of the uncommitted transaction spilled from the cache. PostgreSQL: the importer's last statement in its
    open transaction is a write other than the import run's own row."""
    if engine.dialect.name == "sqlite":
        wal = Path(f"{engine.url.database}-wal")
        return wal.exists() and wal.stat().st_size > SPILLED and _sqlite_locked(engine.url.database or "")
    query = text(
        f"SELECT query FROM pg_stat_activity WHERE {OTHER_WRITER} "
        "AND (query ILIKE 'INSERT%' OR query ILIKE 'UPDATE%') AND query NOT ILIKE 'INSERT INTO import_run%'"
    )
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def truncate_wal(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        engine.dispose()  # no pooled connection keeps a read snapshot
        connection = sqlite3.connect(engine.url.database or "", isolation_level=None)
        try:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0, "the WAL could not be truncated"
        finally:
            connection.close()


def test_an_import_killed_halfway_leaves_nothing_and_a_rerun_completes_it(engine: Engine, tmp_path: Path) -> None:
    # SQLite's own small page cache: pages of the import's transaction spill into the WAL as it writes, which
    # is how the test sees it writing (with the broker's larger default they stay in memory until the commit)
    env = environment(engine, sqlite_cache_mib=2)
    first = write_csv(tmp_path / "student-1.csv", STUDENT_HEADER, rows(FIRST))
    code, output = cli_here(env, "import", "student", str(first))
    assert code == 0, output
    before = snapshot(engine)
    assert_audit_verifies(env)

    # the next export: every earlier row with a new phone, and many new rows
    second = write_csv(
        tmp_path / "student-2.csv", STUDENT_HEADER, rows(FIRST, phone_prefix="137") + rows(ADDED, start=FIRST)
    )
    truncate_wal(engine)
    process = start(env, "import", "student", str(second), log=tmp_path / "import.log")
    try:
        wait_until(
            lambda: writing_records(engine) or process.poll() is not None, "the import to write records", timeout=180
        )
        time.sleep(HOLD_SECONDS)
        assert process.poll() is None, f"the import ended before it was killed:\n{log_tail(tmp_path / 'import.log')}"
        assert in_transaction(engine), "the import was not inside its write transaction when killed"
        kill9(process)
    finally:
        reap(process)

    assert snapshot(engine) == before  # no table holds anything of the killed run
    assert_audit_verifies(env)

    code, output = cli_here(env, "import", "student", str(second))  # the operator runs it again
    assert code == 0, output
    assert f"read {FIRST + ADDED} / new {ADDED} / updated {FIRST} / unchanged 0" in output
    with Session(engine) as session:
        stored = {
            key: (phone, person)
            for key, phone, person in session.execute(
                select(SourceRecord.key, SourceRecord.phone, SourceRecord.person_id)
            )
        }
        runs = session.scalar(text("SELECT count(*) FROM import_run"))
    assert len(stored) == FIRST + ADDED and runs == 2  # the killed run left no import run behind
    assert all(person is not None for _, person in stored.values())  # every record linked to a person
    for n in range(FIRST):  # the changed rows carry their new phones
        phone = stored[f"11{20200000 + n:08d}"][0] or ""
        assert "".join(filter(str.isdigit, phone)).endswith(f"137{n:08d}")
    assert_audit_verifies(env)
