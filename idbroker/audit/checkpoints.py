"""Signed checkpoints: the head of the audit log (its last sequence number and hash) signed by the broker.

A hash chain shows an edit anywhere before the head, but not a rewrite of the whole tail together with the
head. A checkpoint exported and kept elsewhere (by the privacy officer, on paper, in a ticket) closes that
gap: as long as event `seq` in the log still has the hash the checkpoint signed, nothing up to it was
rewritten since — and `idbroker audit verify --checkpoint FILE` checks exactly that.

The signing key is Ed25519, derived from the broker's `IDBROKER_ENCRYPTION_KEY` with HKDF-SHA256 (info
`CHECKPOINT_KEY_INFO`), so no further secret needs managing; its public key is in every checkpoint, and its
`key_id` (the first 16 hex digits of the SHA-256 of the raw public key) is what an officer pins.

The exported file is JSON: `statement` is the exact text that was signed (canonical JSON of `format`,
`seq`, `hash`, `at`, `key_id`), `signature` and `public_key` are URL-safe base64 (raw Ed25519), and
`public_key_pem` is the same key for `openssl pkeyutl -verify -rawin`. It verifies offline, without the
broker or its database (`verify_export`, or any Ed25519 implementation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlmodel import Session

from idbroker.audit.chain import append, canonical_json, lock_head, timestamp_text
from idbroker.audit.models import AuditCheckpoint, AuditEvent
from idbroker.clock import utcnow
from idbroker.config import Settings, get_settings
from idbroker.jobs.queue import enqueue
from idbroker.jobs.worker import register

STATEMENT_FORMAT = "idbroker-audit-checkpoint-v1"
CHECKPOINT_KEY_INFO = b"idbroker audit checkpoint signing key v1"
QUEUE = "audit.checkpoint"


class CheckpointInvalid(ValueError):
    """A checkpoint file that is malformed, has a bad signature, or was signed by another key."""


@dataclass(frozen=True)
class SignedHead:
    """What a valid checkpoint states: event `seq` of the log had hash `hash` at `at`."""

    seq: int
    hash: str
    at: str
    key_id: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=CHECKPOINT_KEY_INFO).derive(
        settings.key("encryption_key")
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def public_key_pem(public: bytes) -> str:
    key = Ed25519PublicKey.from_public_bytes(public)
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def statement_text(seq: int, head_hash: str, at: datetime, kid: str) -> str:
    statement = {"format": STATEMENT_FORMAT, "seq": seq, "hash": head_hash, "at": timestamp_text(at), "key_id": kid}
    return canonical_json(statement)


def create_checkpoint(session: Session, settings: Settings, *, actor: str) -> AuditCheckpoint:
    """Sign the current head, store the checkpoint and record it in the log (in the caller's transaction)."""
    private = signing_key(settings)
    public = raw_public_key(private.public_key())
    kid = key_id(public)
    head = lock_head(session)
    at = utcnow()
    signature = private.sign(statement_text(head.seq, head.hash, at, kid).encode("utf-8"))
    checkpoint = AuditCheckpoint(
        seq=head.seq,
        hash=head.hash,
        at=at,
        key_id=kid,
        public_key=_b64(public),
        signature=_b64(signature),
        actor=actor,
    )
    session.add(checkpoint)
    session.flush()
    append(
        session,
        actor=actor,
        action="audit.checkpoint",
        details={"checkpoint": checkpoint.id, "seq": head.seq, "key_id": kid},
    )
    return checkpoint


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)).first()  # type: ignore[union-attr]


def export_checkpoint(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The checkpoint as a self-contained document an officer keeps outside the broker."""
    public = _unb64(checkpoint.public_key)
    return {
        "statement": statement_text(checkpoint.seq, checkpoint.hash, checkpoint.at, checkpoint.key_id),
        "signature": checkpoint.signature,
        "public_key": checkpoint.public_key,
        "public_key_pem": public_key_pem(public),
        "algorithm": "Ed25519",
    }


def verify_export(document: Any, *, trusted_key_id: str | None = None) -> SignedHead:
    """Check a checkpoint document offline: its signature, its format and (if given) the signer's key id."""
    if not isinstance(document, dict):
        raise CheckpointInvalid("a checkpoint is a JSON object with statement, signature and public_key")
    try:
        statement = document["statement"]
        signature = _unb64(document["signature"])
        public = _unb64(document["public_key"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise CheckpointInvalid(f"the checkpoint is incomplete or not base64: {exc}") from None
    if not isinstance(statement, str):
        raise CheckpointInvalid("statement must be the signed text")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, statement.encode("utf-8"))
    except (InvalidSignature, ValueError):
        raise CheckpointInvalid("the signature does not match the statement: the checkpoint was altered") from None
    try:
        fields = json.loads(statement)
        head = SignedHead(
            seq=int(fields["seq"]), hash=str(fields["hash"]), at=str(fields["at"]), key_id=str(fields["key_id"])
        )
        known_format = fields["format"] == STATEMENT_FORMAT
    except (ValueError, KeyError, TypeError):
        raise CheckpointInvalid("the signed statement is not a checkpoint statement") from None
    if not known_format:
        raise CheckpointInvalid(f"unknown checkpoint format {fields['format']!r}")
    if head.key_id != key_id(public):
        raise CheckpointInvalid("the statement names another key than the one that signed it")
    if trusted_key_id is not None and head.key_id != trusted_key_id:
        raise CheckpointInvalid(f"signed by key {head.key_id}, not by the trusted key {trusted_key_id}")
    return head


def log_matches(session: Session, head: SignedHead) -> str | None:
    """None when event `head.seq` of the log still has the signed hash; otherwise what is wrong."""
    if head.seq == 0:
        return None
    stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == head.seq))
    if stored is None:
        return f"the log has no event {head.seq}, which the checkpoint of {head.at} signed: events were removed"
    if stored != head.hash:
        return f"event {head.seq} does not have the hash the checkpoint of {head.at} signed: the log was rewritten"
    return None


def run_checkpoint_job(session: Session, payload: dict[str, Any]) -> None:
    """The worker's periodic checkpoint: sign the head, then queue the next one."""
    settings = get_settings()
    create_checkpoint(session, settings, actor="system:checkpoint")
    schedule(session, settings.audit_checkpoint_interval_seconds)


def schedule(session: Session, interval_seconds: int) -> None:
    """Queue the next periodic checkpoint (one per interval, however often this is called)."""
    next_run = utcnow() + timedelta(seconds=interval_seconds)
    slot = int(next_run.timestamp()) // interval_seconds
    enqueue(session, QUEUE, {}, delay=interval_seconds, dedupe_key=f"{QUEUE}:{interval_seconds}:{slot}")


register(QUEUE, run_checkpoint_job)  # `idbroker worker` runs it (idbroker.jobs.handlers.HANDLER_MODULES)
