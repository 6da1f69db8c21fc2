"""Processing stored callbacks in the worker (queue `wecom.callbacks`), each exactly once.

Callbacks are taken oldest first in groups (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers
share a burst; SQLite's write lock serialises them), decrypted again, applied, and marked processed in the
same transaction as their effects: a worker that dies mid-group leaves the whole group for the next one.
- `subscribe` / `unsubscribe`: the member's follow status (only an event newer than the last one applied
  changes it), and a `wecom_member_event`;
- `change_contact`: `create_user`/`update_user`/`delete_user` — a member event; a deleted member is no
  longer in the corp, so the next sync creates it again if the directory still wants it;
  `create_party`/`update_party`/`delete_party` — a deleted department is created again by the next sync;
- `batch_job_result`: the batch job is marked finished-by-callback, and a waiting sync reads its result.
Anything else is marked `ignored`; an event that cannot be read any more (the corp's key changed) `unreadable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import get_settings
from idbroker.jobs.worker import register
from idbroker.wecom.callbacks.crypto import CallbackCrypto, CallbackRejected
from idbroker.wecom.callbacks.intake import QUEUE, WeComCallback, callback_crypto, parse_xml, wake_worker
from idbroker.wecom.follow import WeComMemberEvent
from idbroker.wecom.state import WeComBatch, WeComDepartment, WeComMember

CALLBACKS = WeComCallback.__table__  # type: ignore[attr-defined]
MEMBERS = WeComMember.__table__  # type: ignore[attr-defined]
EVENTS = WeComMemberEvent.__table__  # type: ignore[attr-defined]

GROUP = 300
MEMBER_EVENTS = {"subscribe", "unsubscribe", "create_user", "update_user", "delete_user"}


def _event_time(root: Element) -> datetime:
    try:
        return datetime.fromtimestamp(int((root.findtext("CreateTime") or "0").strip()), UTC)
    except (ValueError, OverflowError):
        return utcnow()


def _claim(session: Session, limit: int) -> list[Any]:
    query = (
        select(CALLBACKS.c.id, CALLBACKS.c.encrypt)
        .where(CALLBACKS.c.processed_at.is_(None))
        .order_by(CALLBACKS.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.execute(query))


@dataclass
class _Member:
    userid: str
    followed: bool
    follow_changed_at: datetime | None
    in_corp: bool
    changed: bool = False


def process_pending(session: Session, crypto: CallbackCrypto, limit: int = GROUP) -> tuple[int, int]:
    """Apply up to `limit` stored callbacks in the caller's transaction: (how many were taken, the last id).

    Written with SQLAlchemy Core, in a few statements per group: a burst is tens of thousands of callbacks."""
    callbacks = _claim(session, limit)
    if not callbacks:
        return 0, 0
    now = utcnow()
    parsed: list[tuple[int, Element | None]] = []
    for callback_id, encrypt in callbacks:
        try:
            parsed.append((callback_id, parse_xml(crypto.decrypt(encrypt), "the stored event")))
        except CallbackRejected:
            parsed.append((callback_id, None))
    named = {_userid(root) for _, root in parsed if root is not None and _member_kind(root) in MEMBER_EVENTS}
    wanted = sorted(named | {u.lower() for u in named})  # the broker's userids are lower case; WeChat Work's echo
    members: dict[str, _Member] = {}
    for start in range(0, len(wanted), 1000):
        rows = session.execute(
            select(MEMBERS.c.userid, MEMBERS.c.followed, MEMBERS.c.follow_changed_at, MEMBERS.c.in_corp).where(
                MEMBERS.c.userid.in_(wanted[start : start + 1000])
            )
        )
        members.update({row.userid.lower(): _Member(*row) for row in rows})
    events: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    for callback_id, root in parsed:
        outcome = "unreadable" if root is None else _apply(session, callback_id, root, members, events)
        outcomes.append({"cid": callback_id, "processed_at": now, "outcome": outcome})
    if events:
        session.execute(insert(EVENTS), events)
    changed = [
        {"u": m.userid, "followed": m.followed, "follow_changed_at": m.follow_changed_at, "in_corp": m.in_corp}
        for m in members.values()
        if m.changed
    ]
    if changed:
        session.execute(update(MEMBERS).where(MEMBERS.c.userid == bindparam("u")), changed)
    session.execute(update(CALLBACKS).where(CALLBACKS.c.id == bindparam("cid")), outcomes)
    return len(callbacks), callbacks[-1][0]


def _userid(root: Element) -> str:
    event = (root.findtext("Event") or "").strip()
    value = root.findtext("FromUserName") if event in ("subscribe", "unsubscribe") else root.findtext("UserID")
    return (value or "").strip()


def _member_kind(root: Element) -> str:
    event = (root.findtext("Event") or "").strip()
    return (root.findtext("ChangeType") or "").strip() if event == "change_contact" else event


def _apply(
    session: Session,
    callback_id: int,
    root: Element,
    members: dict[str, _Member],
    events: list[dict[str, Any]],
) -> str:
    event = (root.findtext("Event") or "").strip()
    kind = _member_kind(root)
    at = _event_time(root)
    if kind in MEMBER_EVENTS:
        userid = _userid(root)
        member = members.get(userid.lower())
        events.append(
            {"callback_id": callback_id, "userid": userid[:64], "kind": kind, "at": at, "known": member is not None}
        )
        if member is None:
            return "unknown member"
        if kind in ("subscribe", "unsubscribe"):
            if member.follow_changed_at is None or at >= member.follow_changed_at:
                member.followed, member.follow_changed_at, member.changed = kind == "subscribe", at, True
            return "applied"
        if kind == "delete_user":
            member.in_corp, member.changed = False, True
        return "applied"
    if event == "change_contact" and kind in ("create_party", "update_party", "delete_party"):
        department = session.get(WeComDepartment, int((root.findtext("Id") or "0").strip() or 0))
        if department is None:
            return "unknown department"
        if kind == "delete_party":
            department.in_corp = False
            session.add(department)
        return "applied"
    if event == "batch_job_result":
        jobid = (root.findtext("BatchJob/JobId") or "").strip()
        result = session.execute(
            update(WeComBatch).where(WeComBatch.jobid == jobid).values(callback_at=utcnow())  # type: ignore[arg-type]
        )
        return "applied" if result.rowcount else "unknown job"  # type: ignore[attr-defined]
    return "ignored"


def handle_wakeup(session: Session, payload: dict[str, Any]) -> None:
    """The job handler: one group in the job's own transaction; then, if it found any, the next group at once
    (a job of its own, so the database is never held for long); if it found none, one last look two seconds
    later, for a callback that was being committed while this job read."""
    crypto = callback_crypto(get_settings())
    taken, last_id = process_pending(session, crypto)
    if taken:
        wake_worker(session, tag=f"after:{last_id}:")
    elif not payload.get("last"):
        wake_worker(session, delay=2.0, tag="last:", payload={"last": True})


register(QUEUE, handle_wakeup)
