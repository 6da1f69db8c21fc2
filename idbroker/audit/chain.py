"""Appending to the audit log: each event holds the hash of the one before, in the caller's transaction.

Callers describe *what* happened with ids and counts — a person id as `subject`, record ids, numbers of
rows — never a phone number, national ID, verification code, token or password. `append` refuses the
obvious cases (such keys, or values shaped like an E.164 phone number or an 18-character national ID),
but it cannot recognise everything: the rule is the caller's to keep.

Details keys the privacy console reads (all optional; `DETAIL_KEYS`): `app` (the client id of the app that
read or received data), `purpose` (why, in words or a short code), `fields` (what was read or released:
claim or field names, never values), `changed` (field names changed), `client_ip`, `result` (`ok`,
`refused`, `error` …), `reason` (a helpdesk ticket or call). `app` and `purpose` are copied into indexed
columns for search.

`append` writes the event at once; `append_later`, within an `appending_later` block (a group of requests in one
transaction, `idbroker.web.grouped`), queues it, and the block's end appends the queue in one go: same checks,
same hash, same order.

Hash formats. v1 (`idbroker-audit-v1`, events written before migration 0007) hashes the details text itself.
v2 (`idbroker-audit-v2`, every event `append` writes now) hashes a digest of the details instead: each
top-level key gets a random salt and a leaf `SHA-256(canonical [key, salt, value])`; the digest is
`SHA-256(canonical {key: leaf})`. Retention (`retention.py`) can then remove a key's value and salt and
keep only its leaf: the digest, and so the whole chain, still verifies, the values kept are still checked,
and the removed value cannot be guessed back from its leaf (the salt went with it).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlmodel import Session, select

from idbroker.audit.models import AuditEvent, AuditHead
from idbroker.clock import utcnow
from idbroker.db import DriverStatement

GENESIS_HASH = "0" * 64
"""The `prev_hash` of event 1, and the hash of the head of an empty log."""

HASH_FORMAT = "idbroker-audit-v1"
"""The first element of every hashed serialisation, so a later format can never be mistaken for this one."""

HASH_FORMAT_V2 = "idbroker-audit-v2"
"""The format of events written since migration 0007: the details enter the hash through their digest."""

SALT_BYTES = 8  # per details key: 64 random bits make a removed value impossible to guess from its leaf

DETAIL_KEYS = ("app", "purpose", "fields", "changed", "client_ip", "result", "reason")
"""The details keys the privacy console shows in their own columns (see the module docstring)."""

MAX_ACTOR = 64
MAX_ACTION = 64
MAX_SUBJECT = 32
MAX_APP = 64
MAX_PURPOSE = 500

FORBIDDEN_DETAIL_KEYS = frozenset(
    {
        "phone",
        "mobile",
        "telephone",
        "tel",
        "phone_number",
        "mobile_phone",
        "national_id",
        "id_number",
        "id_card",
        "idcard",
        "id_card_number",
        "code",
        "otp",
        "verification_code",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "secret",
        "client_secret",
        "手机号",
        "手机",
        "电话",
        "身份证号",
        "身份证",
        "验证码",
        "密码",
    }
)
_json_string = encode_basestring  # a str as a JSON string literal, characters kept (ensure_ascii=False)
_QUOTED_FORMAT = _json_string(HASH_FORMAT)
_QUOTED_FORMAT_V2 = _json_string(HASH_FORMAT_V2)
_PHONE_E164 = re.compile(r"\+\d{8,15}")
_NATIONAL_ID_18 = re.compile(r"\d{17}[\dXx]")


class AuditDetailsError(ValueError):
    """The event is malformed, or its details hold what must never be logged."""


class AuditHeadMissingError(RuntimeError):
    """The `audit_head` row is missing: the database was not migrated by `idbroker db upgrade`."""


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_json(value: Any) -> str:
    """The one JSON text of a value: sorted keys, no whitespace, UTF-8 characters kept as they are."""
    return _CANONICAL.encode(value)


def timestamp_text(at: datetime) -> str:
    """`at` in UTC to the microsecond, exactly as both SQLite and PostgreSQL give it back."""
    if at.tzinfo is not UTC:  # the databases give UTC back; anything else is converted (or refused)
        if at.utcoffset() is None:
            raise AuditDetailsError("audit timestamps must be timezone-aware")
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


def _array_hash(
    quoted_format: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str | None,
    details: str,
    prev_hash: str,
) -> str:
    # Exactly `json.dumps([format, seq, at, actor, action, subject, details, prev_hash],
    # ensure_ascii=False, separators=(",", ":"))`, written out because `verify` runs it for every event.
    quoted_subject = "null" if subject is None else _json_string(subject)
    payload = (
        f"[{quoted_format},{int(seq)},{_json_string(timestamp_text(at))},{_json_string(actor)},"
        f"{_json_string(action)},{quoted_subject},{_json_string(details)},{_json_string(prev_hash)}]"
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def event_hash(
    seq: int, at: datetime, actor: str, action: str, subject: str | None, details: str, prev_hash: str
) -> str:
    """Format v1: SHA-256 (hex) of the canonical serialisation of one event; `details` is its JSON text."""
    return _array_hash(_QUOTED_FORMAT, seq, at, actor, action, subject, details, prev_hash)


def event_hash_v2(
    seq: int, at: datetime, actor: str, action: str, subject: str | None, digest: str, prev_hash: str
) -> str:
    """Format v2: as v1 with the details digest (see `details_digest`) in place of the details text."""
    return _array_hash(_QUOTED_FORMAT_V2, seq, at, actor, action, subject, digest, prev_hash)


def details_leaf(key: str, salt: str, value: Any) -> str:
    """The leaf of one details key: SHA-256 (hex) of the canonical JSON of `[key, salt, value]`."""
    # Exactly `canonical_json([key, salt, value])`, without re-encoding the key and salt each time.
    text = _json_string(value) if type(value) is str else canonical_json(value)
    payload = f"[{_json_string(key)},{_json_string(salt)},{text}]"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def details_digest(leaves: dict[str, str]) -> str:
    """The digest of an event's details: SHA-256 (hex) of the canonical JSON of `{key: leaf}`."""
    return hashlib.sha256(canonical_json(leaves).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SealedDetails:
    """Details ready to store: their text, the salts of their keys, their digest and the search columns."""

    text: str
    salts: str
    digest: str
    app: str | None
    purpose: str | None


def _search_value(details: dict[str, Any], key: str, limit: int) -> str | None:
    value = details.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise AuditDetailsError(f"details.{key} must be a non-empty string of at most {limit} characters")
    return value


def seal_details(details: dict[str, Any]) -> SealedDetails:
    """Check `details`, salt each key and compute the digest (what `append` stores; bulk loaders use it too)."""
    if not isinstance(details, dict):
        raise AuditDetailsError("audit details must be a JSON object (a dict)")
    check_details(details)
    try:
        text = canonical_json(details)
    except (TypeError, ValueError) as exc:
        raise AuditDetailsError(f"audit details are not JSON-serialisable: {exc}") from exc
    random_hex = secrets.token_hex(SALT_BYTES * len(details))  # one read of the system's randomness
    width = 2 * SALT_BYTES
    salts = {key: random_hex[i * width : (i + 1) * width] for i, key in enumerate(details)}
    leaves = {key: details_leaf(key, salts[key], value) for key, value in details.items()}
    return SealedDetails(
        text=text,
        salts=canonical_json(salts),
        digest=details_digest(leaves),
        app=_search_value(details, "app", MAX_APP),
        purpose=_search_value(details, "purpose", MAX_PURPOSE),
    )


def check_details(details: Any, path: str = "details") -> None:
    """Refuse keys and values that are obviously personal data (see the module docstring)."""
    if isinstance(details, dict):
        for key, value in details.items():
            if not isinstance(key, str):
                raise AuditDetailsError(f"{path}: keys must be strings, got {type(key).__name__}")
            if key.strip().lower().replace("-", "_") in FORBIDDEN_DETAIL_KEYS:
                raise AuditDetailsError(f"{path}.{key}: audit details must not hold personal data; pass ids and counts")
            check_details(value, f"{path}.{key}")
    elif isinstance(details, list | tuple):
        for index, value in enumerate(details):
            check_details(value, f"{path}[{index}]")
    elif isinstance(details, str) and (_PHONE_E164.fullmatch(details) or _NATIONAL_ID_18.fullmatch(details)):
        raise AuditDetailsError(
            f"{path}: looks like a phone number or national ID; audit details must hold ids and counts"
        )


def _check_field(name: str, value: str | None, limit: int, *, required: bool) -> None:
    if value is None or value == "":
        if required:
            raise AuditDetailsError(f"audit {name} must not be empty")
        return
    if len(value) > limit:
        raise AuditDetailsError(f"audit {name} is longer than {limit} characters")


def lock_head(session: Session) -> AuditHead:
    """The head row, locked until the transaction ends (FOR UPDATE on PostgreSQL; SQLite's write lock is
    already held, because `idbroker.db` begins every transaction IMMEDIATE)."""
    statement = select(AuditHead).where(AuditHead.id == 1).with_for_update().execution_options(populate_existing=True)
    head = session.exec(statement).first()
    if head is None:
        raise AuditHeadMissingError("the audit log has no head row: run `idbroker db upgrade`")
    return head


# `append` without the ORM, each statement run on the driver (`DriverStatement`): on SQLite reading the head (the
# write lock is already held), one INSERT and one UPDATE. The head row is the serialisation point on every database.
_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
_EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
_LOCK_HEAD = DriverStatement(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update())
_INSERT = insert(_EVENTS).values({column.name: bindparam(column.name, type_=column.type) for column in _EVENTS.c})
_MOVE = (
    update(_HEAD)
    .where(_HEAD.c.id == 1, _HEAD.c.seq == bindparam("old_seq"))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_INSERT_EVENT = DriverStatement(_INSERT)
_MOVE_HEAD = DriverStatement(_MOVE)
# PostgreSQL: the whole append is one statement — lock the head, hash, insert, move the head — so the head row,
# which every other append waits for, is held for this one round trip and the commit's. The database only joins
# text made here (every field already JSON-escaped by `_json_string`) with the next seq and the previous hash
# (a decimal and 64 hex digits, nothing to escape) and takes its SHA-256: the very payload of `_array_hash`.
_APPEND_POSTGRESQL = DriverStatement(
    text(
        """
WITH head AS (
    SELECT seq + 1 AS seq, hash AS prev_hash FROM audit_head WHERE id = 1 FOR UPDATE
), sealed AS (
    SELECT seq, prev_hash, encode(sha256(convert_to(
        CAST(:before_seq AS text) || CAST(seq AS text) || CAST(:after_seq AS text) || prev_hash || '"]',
        'UTF8')), 'hex') AS hash
    FROM head
), event AS (
    INSERT INTO audit_event (seq, at, actor, action, subject, details, prev_hash, hash, details_salts,
                             details_removed, details_digest, app, purpose, retention_level, reduced_at)
    SELECT seq, :at, :actor, :action, :subject, :details, prev_hash, hash, :details_salts,
           NULL, :details_digest, :app, :purpose, 0, NULL
    FROM sealed
)
UPDATE audit_head SET seq = sealed.seq, hash = sealed.hash FROM sealed WHERE audit_head.id = 1
RETURNING sealed.seq, sealed.prev_hash, sealed.hash
"""
    ).bindparams(bindparam("at", type_=_EVENTS.c.at.type))
)


@dataclass(frozen=True, slots=True)
class AppendedEvent:
    """What `append` wrote: the stored columns of the new event (a plain value; the row is not in the session)."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str | None
    details: str
    prev_hash: str
    hash: str
    details_salts: str
    details_removed: None
    details_digest: str
    app: str | None
    purpose: str | None
    retention_level: int
    reduced_at: None


def append(
    session: Session, *, actor: str, action: str, subject: str | None = None, details: dict[str, Any]
) -> AppendedEvent:
    """Add one event at the end of the chain, in the caller's transaction (committed or rolled back with it).

    `actor` is who did it (a staff login, `system`, `cli:<user>`), `action` a dotted verb such as
    `import.run` or `person.merge`, `subject` the person id concerned, `details` ids and counts only.
    """
    sealed = _sealed(actor, action, subject, details)
    if session.info.get(_PENDING):  # events appended later in this transaction go first: the chain keeps the order
        flush_pending(session)
    if session.get_bind().dialect.name == "postgresql":
        return _append_postgresql(session, actor, action, subject, sealed)
    heads, _ = _LOCK_HEAD.run(session)
    if not heads:
        raise AuditHeadMissingError("the audit log has no head row: run `idbroker db upgrade`")
    prev_seq, prev_hash = heads[0]
    seq = prev_seq + 1
    at = utcnow()
    digest = event_hash_v2(seq, at, actor, action, subject, sealed.digest, prev_hash)
    values = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": sealed.text,
        "prev_hash": prev_hash,
        "hash": digest,
        "details_salts": sealed.salts,
        "details_removed": None,
        "details_digest": sealed.digest,
        "app": sealed.app,
        "purpose": sealed.purpose,
        "retention_level": 0,
        "reduced_at": None,
    }
    _INSERT_EVENT.run(session, values)
    _, moved = _MOVE_HEAD.run(session, {"old_seq": prev_seq, "new_seq": seq, "new_hash": digest})
    if moved != 1:  # cannot happen while the head is locked; never chain from a head that moved
        raise RuntimeError("the audit head moved while it was locked")
    return AppendedEvent(**values)


def _sealed(actor: str, action: str, subject: str | None, details: dict[str, Any]) -> SealedDetails:
    _check_field("actor", actor, MAX_ACTOR, required=True)
    _check_field("action", action, MAX_ACTION, required=True)
    _check_field("subject", subject, MAX_SUBJECT, required=False)
    return seal_details(details)


# Appending later: a group of requests in one transaction (`idbroker.web.grouped`) appends all its events at once,
# in the order they were appended, with one read of the locked head, one multi-row insert and one move of the head,
# instead of a round trip (on PostgreSQL) per event. The events are checked and sealed at once, as by `append`.
_PENDING = "idbroker.audit.pending"


@contextmanager
def appending_later(session: Session) -> Iterator[None]:
    """Within the block, `append_later` queues its events; they are appended when the block ends without an error
    (an error drops them: the caller rolls its transaction back). `append` in the block first appends the queue."""
    session.info[_PENDING] = []
    try:
        yield
        flush_pending(session)
    finally:
        session.info.pop(_PENDING, None)


def append_later(
    session: Session, *, actor: str, action: str, subject: str | None = None, details: dict[str, Any]
) -> None:
    """`append`, deferred to the end of the session's `appending_later` block (at once outside one)."""
    pending = session.info.get(_PENDING)
    if pending is None:
        append(session, actor=actor, action=action, subject=subject, details=details)
        return
    pending.append((actor, action, subject, _sealed(actor, action, subject, details)))


def flush_pending(session: Session) -> list[AppendedEvent]:
    """Append the events queued by `append_later`, in order; what was written."""
    pending = session.info.get(_PENDING)
    if not pending:
        return []
    events = list(pending)
    pending.clear()
    if len(events) == 1 and session.get_bind().dialect.name == "postgresql":
        return [_append_postgresql(session, *events[0])]  # one round trip
    heads, _ = _LOCK_HEAD.run(session)
    if not heads:
        raise AuditHeadMissingError("the audit log has no head row: run `idbroker db upgrade`")
    first_seq, prev_hash = heads[0]
    at = utcnow()
    written: list[AppendedEvent] = []
    for offset, (actor, action, subject, sealed) in enumerate(events, start=1):
        seq = first_seq + offset
        digest = event_hash_v2(seq, at, actor, action, subject, sealed.digest, prev_hash)
        written.append(
            AppendedEvent(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                details=sealed.text,
                prev_hash=prev_hash,
                hash=digest,
                details_salts=sealed.salts,
                details_removed=None,
                details_digest=sealed.digest,
                app=sealed.app,
                purpose=sealed.purpose,
                retention_level=0,
                reduced_at=None,
            )
        )
        prev_hash = digest
    _INSERT_EVENT.run_many(session, [asdict(event) for event in written])
    last = written[-1]
    _, moved = _MOVE_HEAD.run(session, {"old_seq": first_seq, "new_seq": last.seq, "new_hash": last.hash})
    if moved != 1:  # cannot happen while the head is locked; never chain from a head that moved
        raise RuntimeError("the audit head moved while it was locked")
    return written


def _append_postgresql(
    session: Session, actor: str, action: str, subject: str | None, sealed: SealedDetails
) -> AppendedEvent:
    at = utcnow()
    quoted_subject = "null" if subject is None else _json_string(subject)
    fields = {
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": sealed.text,
        "details_salts": sealed.salts,
        "details_digest": sealed.digest,
        "app": sealed.app,
        "purpose": sealed.purpose,
    }
    # `_array_hash`'s payload around the two values only the locked head knows: seq and the previous hash
    before_seq = f"[{_QUOTED_FORMAT_V2},"
    after_seq = (
        f",{_json_string(timestamp_text(at))},{_json_string(actor)},{_json_string(action)},{quoted_subject},"
        f'{_json_string(sealed.digest)},"'
    )
    rows, _ = _APPEND_POSTGRESQL.run(session, {**fields, "before_seq": before_seq, "after_seq": after_seq})
    if not rows:
        raise AuditHeadMissingError("the audit log has no head row: run `idbroker db upgrade`")
    seq, prev_hash, digest = rows[0]
    return AppendedEvent(
        seq=seq, prev_hash=prev_hash, hash=digest, details_removed=None, retention_level=0, reduced_at=None, **fields
    )
