"""A re-encryption pass killed halfway (`kill -9`) resumes from its cursor: every row ends on the new
version, each moved exactly once, and no value is ever unreadable or lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, select, update
from sqlmodel import Session
from typer.testing import CliRunner

from idbroker.cli.main import app
from idbroker.clock import utcnow
from idbroker.config import get_settings
from idbroker.contacts.models import MessageDelivery
from idbroker.directory.protect import Protector
from idbroker.jobs.models import Job
from idbroker.jobs.worker import run_once
from idbroker.keys.models import KeyRotation
from idbroker.keys.reencrypt import QUEUE

ROWS = 1500


def recipients(engine: Engine) -> list[tuple[str, str]]:
    """(version, plain recipient) of every delivery, opened with the current settings."""
    protector = Protector.from_settings(get_settings())
    with Session(engine) as session:
        stored = session.scalars(select(MessageDelivery.recipient_cipher).order_by(MessageDelivery.id))  # type: ignore[arg-type]
        return [(value[:2], protector.decrypt(value, "message_recipient")) for value in stored]


def cursor(engine: Engine) -> KeyRotation | None:
    with Session(engine) as session:
        return session.get(KeyRotation, "encryption")


def test_a_killed_pass_resumes_and_moves_every_row_once(engine: Engine, tmp_path: Path) -> None:
    protector = Protector.from_settings(get_settings())
    numbers = [f"+8619900{n:06d}" for n in range(ROWS)]  # generated, not anyone's
    with Session(engine) as session:
        for number in numbers:
            sealed = protector.encrypt(number, "message_recipient")
            session.add(MessageDelivery(channel="sms", template="t", recipient_cipher=sealed, recipient_hint="199****"))
        session.commit()
    assert CliRunner().invoke(app, ["keys", "rotate", "encryption"]).exit_code == 0

    # `idbroker keys reencrypt` one row per transaction, killed once it is under way.
    command = [sys.executable, "-m", "idbroker.cli.main", "keys", "reencrypt", "encryption", "--batch", "1"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while (state := cursor(engine)) is None or state.values_moved < 50:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "the pass made no progress"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    halfway = cursor(engine)
    assert halfway is not None and halfway.finished_at is None and halfway.table_name == "message_delivery"
    values = recipients(engine)
    moved = sum(1 for version, _ in values if version == "k2")
    assert 50 <= moved < ROWS and moved == halfway.values_moved  # the cursor is exactly what was committed
    assert [plain for _, plain in values] == numbers  # mixed versions, every value readable

    # The worker continues the same pass from the cursor (the job `keys rotate` queued).
    while run_once(engine, [QUEUE]):
        pass
    done = cursor(engine)
    assert done is not None and done.finished_at is not None
    assert done.values_moved == ROWS  # each row moved exactly once across the two runs
    assert recipients(engine) == [("k2", number) for number in numbers]


def test_a_worker_started_before_the_rotation_leaves_the_pass_alone(engine: Engine, tmp_path: Path) -> None:
    protector = Protector.from_settings(get_settings())
    with Session(engine) as session:
        sealed = protector.encrypt("+8619900000001", "message_recipient")
        session.add(MessageDelivery(channel="sms", template="t", recipient_cipher=sealed, recipient_hint="199****"))
        session.commit()
    assert CliRunner().invoke(app, ["keys", "rotate", "encryption"]).exit_code == 0

    env_file = tmp_path / "var" / "idbroker.env"
    written = env_file.read_text()
    env_file.write_text("")  # this worker still has the settings it started with: no k2
    get_settings.cache_clear()
    assert run_once(engine, [QUEUE]) == 1
    with Session(engine) as session:
        job = session.scalars(select(Job).where(Job.queue == QUEUE)).one()  # type: ignore[arg-type]
        assert job.state == "ready" and "restart it" in (job.last_error or "")
    assert recipients(engine) == [("k1", "+8619900000001")]  # never moved back, nor half-moved

    env_file.write_text(written)  # restarted with the new key
    get_settings.cache_clear()
    with Session(engine) as session:  # due now, as if the minute had passed
        session.execute(update(Job).where(Job.queue == QUEUE).values(run_after=utcnow()))  # type: ignore[arg-type]
        session.commit()
    while run_once(engine, [QUEUE]):
        pass
    assert recipients(engine) == [("k2", "+8619900000001")]
