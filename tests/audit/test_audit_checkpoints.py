"""Signed checkpoints: the head signed with the broker's key, exported, verified offline and against the log."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from plugins.privacy import add_events
from sqlalchemy import Engine, text
from sqlmodel import Session, select
from typer.testing import CliRunner

from idbroker.audit.chain import GENESIS_HASH, event_hash_v2
from idbroker.audit.checkpoints import (
    QUEUE,
    CheckpointInvalid,
    create_checkpoint,
    export_checkpoint,
    log_matches,
    run_checkpoint_job,
    verify_export,
)
from idbroker.audit.models import AuditCheckpoint, AuditEvent
from idbroker.audit.retention import QUEUE as RETENTION_QUEUE
from idbroker.cli.main import app
from idbroker.config import get_settings
from idbroker.db import session_scope
from idbroker.jobs.models import Job

runner = CliRunner()


def checkpoint(engine: Engine) -> dict[str, object]:
    with session_scope(engine) as session:
        return export_checkpoint(create_checkpoint(session, get_settings(), actor="cli:officer"))


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_a_checkpoint_signs_the_head_and_verifies_with_an_independent_ed25519(engine: Engine) -> None:
    add_events(engine, 3, subject="person01")
    document = checkpoint(engine)
    statement = json.loads(str(document["statement"]))
    with Session(engine) as session:
        third = session.get(AuditEvent, 3)
        recorded = session.get(AuditEvent, 4)
    assert third is not None and statement["seq"] == 3 and statement["hash"] == third.hash
    assert recorded is not None and recorded.action == "audit.checkpoint"  # the checkpoint is itself logged
    # The cryptography library directly, and the PEM an openssl user would take: the signature holds.
    Ed25519PublicKey.from_public_bytes(unb64(str(document["public_key"]))).verify(
        unb64(str(document["signature"])), str(document["statement"]).encode()
    )
    pem_key = load_pem_public_key(str(document["public_key_pem"]).encode())
    assert isinstance(pem_key, Ed25519PublicKey)
    pem_key.verify(unb64(str(document["signature"])), str(document["statement"]).encode())
    signed = verify_export(document)
    assert (signed.seq, signed.hash) == (3, third.hash)


def test_the_checkpoint_key_is_stable_and_its_id_can_be_pinned(engine: Engine) -> None:
    first, second = checkpoint(engine), checkpoint(engine)
    assert first["public_key"] == second["public_key"]
    kid = json.loads(str(first["statement"]))["key_id"]
    assert verify_export(second, trusted_key_id=kid).key_id == kid
    with pytest.raises(CheckpointInvalid, match="not by the trusted key"):
        verify_export(second, trusted_key_id="0" * 16)


@pytest.mark.parametrize("field", ["statement", "signature"])
def test_an_altered_checkpoint_is_refused(engine: Engine, field: str) -> None:
    add_events(engine, 2)
    document = checkpoint(engine)
    if field == "statement":
        document["statement"] = str(document["statement"]).replace('"seq":2', '"seq":1')
    else:
        raw = bytearray(unb64(str(document["signature"])))
        raw[0] ^= 1
        document["signature"] = base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(CheckpointInvalid, match="signature"):
        verify_export(document)


def test_a_checkpoint_signed_by_another_key_claiming_ours_is_refused(engine: Engine) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    document = checkpoint(engine)
    other = Ed25519PrivateKey.generate()
    document["signature"] = base64.urlsafe_b64encode(other.sign(str(document["statement"]).encode())).decode()
    document["public_key"] = base64.urlsafe_b64encode(
        other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ).decode()
    with pytest.raises(CheckpointInvalid, match="another key"):
        verify_export(document)


def test_a_rewritten_log_no_longer_matches_its_checkpoint(engine: Engine) -> None:
    """The attack a chain alone cannot show: every hash recomputed, the head too. The checkpoint shows it."""
    add_events(engine, 3, subject="person01")
    signed = verify_export(checkpoint(engine))
    with Session(engine) as session:
        assert log_matches(session, signed) is None
        rows = session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
    prev = GENESIS_HASH
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        if postgres:
            connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER ALL"))
        for row in rows:
            subject = "person99" if row.seq == 2 else row.subject
            digest = event_hash_v2(row.seq, row.at, row.actor, row.action, subject, row.details_digest or "", prev)
            connection.execute(
                text("UPDATE audit_event SET subject = :s, prev_hash = :p, hash = :h WHERE seq = :q"),
                {"s": subject, "p": prev, "h": digest, "q": row.seq},
            )
            prev = digest
        connection.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})
        if postgres:
            connection.execute(text("ALTER TABLE audit_event ENABLE TRIGGER ALL"))
    with Session(engine) as session:
        problem = log_matches(session, signed)
    assert problem is not None and "event 3" in problem and "rewritten" in problem


def test_the_cli_exports_a_checkpoint_that_verifies_offline_and_against_the_log(engine: Engine, tmp_path: Path) -> None:
    add_events(engine, 2)
    path = tmp_path / "checkpoint.json"
    result = runner.invoke(app, ["audit", "checkpoint", "--export", str(path)])
    assert result.exit_code == 0, result.output
    assert "checkpoint 1: event 2" in result.output
    result = runner.invoke(app, ["audit", "verify-checkpoint", str(path)])
    assert result.exit_code == 0 and "valid checkpoint: event 2" in result.output
    result = runner.invoke(app, ["audit", "verify", "--checkpoint", str(path)])
    assert result.exit_code == 0 and "matches the checkpoint" in result.output, result.output
    document = json.loads(path.read_text())
    document["statement"] = document["statement"].replace('"seq":2', '"seq":1')
    path.write_text(json.dumps(document))
    result = runner.invoke(app, ["audit", "verify-checkpoint", str(path)])
    assert result.exit_code == 1 and "signature does not match" in result.output


def test_the_worker_signs_periodically(engine: Engine) -> None:
    from idbroker.jobs.handlers import load_handlers
    from idbroker.jobs.queue import enqueue
    from idbroker.jobs.worker import run_once

    assert QUEUE in load_handlers() and RETENTION_QUEUE in load_handlers()  # `idbroker worker` runs both
    with session_scope(engine) as session:
        enqueue(session, QUEUE, {})
    assert run_once(engine, [QUEUE]) == 1
    with Session(engine) as session:
        jobs = session.exec(select(Job).where(Job.queue == QUEUE).order_by(Job.id)).all()
        logged = session.exec(select(AuditEvent).where(AuditEvent.action == "audit.checkpoint")).all()
        signed = session.exec(select(AuditCheckpoint)).all()
    assert [job.state for job in jobs] == ["done", "ready"]  # done, and the next one queued
    assert jobs[1].run_after > jobs[0].finished_at  # type: ignore[operator]
    assert len(logged) == 1 and len(signed) == 1 and signed[0].actor == "system:checkpoint"
    with session_scope(engine) as session:  # queuing again within the same interval adds nothing
        run_checkpoint_job(session, {})
    with Session(engine) as session:
        assert len(session.exec(select(Job).where(Job.queue == QUEUE, Job.state == "ready")).all()) == 1
