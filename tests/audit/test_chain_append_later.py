"""Appending later (`appending_later`, `append_later`): a group's events go into the chain at once, in the order
they were appended, each with the documented hash; the head moves once; old and new events verify; an error drops
what was queued; and groups appending at the same time never break the chain."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.audit import verify_chain
from idbroker.audit.chain import append, append_later, appending_later, event_hash_v2
from idbroker.audit.models import AuditEvent, AuditHead
from idbroker.db import session_scope


def labels(engine: Engine, action: str = "test.later") -> list[str]:
    with Session(engine) as session:
        return [e.subject or "" for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))]  # fmt: skip


def test_events_appended_later_are_chained_in_order(engine: Engine) -> None:
    with session_scope(engine) as session:
        append(session, actor="test", action="test.before", details={"n": 0})  # an old event, appended at once
    with session_scope(engine) as session, appending_later(session):
        for label in ("a", "b", "c"):
            append_later(session, actor="app:bus", action="test.later", subject=label, details={"app": "bus"})
        # `append` in the block: the queue goes first, so the chain keeps the order the events were made in
        appended = append(session, actor="test", action="test.later", subject="d", details={})
        append_later(session, actor="app:bus", action="test.later", subject="e", details={"purpose": "测试"})
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.subject == "e")) == 0
    assert labels(engine) == ["a", "b", "c", "d", "e"]
    assert appended.subject == "d"
    with Session(engine) as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        for before, event in itertools.pairwise(events):
            assert event.prev_hash == before.hash
            assert event.hash == event_hash_v2(event.seq, event.at, event.actor, event.action, event.subject,
                                               event.details_digest or "", event.prev_hash)  # fmt: skip
        head = session.get(AuditHead, 1)
        assert head is not None and (head.seq, head.hash) == (events[-1].seq, events[-1].hash)
        assert events[-1].purpose == "测试" and events[-2].app is None and events[-3].app == "bus"
        assert verify_chain(session).ok


def test_an_error_in_the_block_drops_what_was_queued(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session, appending_later(session):
        append_later(session, actor="test", action="test.later", subject="lost", details={})
        raise RuntimeError("the group failed")
    with session_scope(engine) as session:  # the same session machinery afterwards: nothing left queued
        append_later(session, actor="test", action="test.later", subject="kept", details={})  # at once, outside
    assert labels(engine) == ["kept"]
    with Session(engine) as session:
        assert verify_chain(session).ok


def test_bad_details_are_refused_when_appended_not_at_the_end(engine: Engine) -> None:
    with session_scope(engine) as session, appending_later(session):
        append_later(session, actor="test", action="test.later", subject="ok", details={})
        with pytest.raises(ValueError, match="personal data"):
            append_later(session, actor="test", action="test.later", details={"phone": "x"})
    assert labels(engine) == ["ok"]


def test_groups_appending_at_the_same_time_keep_one_chain(engine: Engine) -> None:
    start = threading.Barrier(6)

    def group(number: int) -> None:
        start.wait(10)
        for batch in range(2):
            with session_scope(engine) as session, appending_later(session):
                for n in range(5):
                    append_later(session, actor="test", action="test.later", subject=f"{number}-{batch}-{n}",
                                 details={"n": n})  # fmt: skip

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(group, range(6)))
    written = labels(engine)
    assert len(written) == 60 and len(set(written)) == 60
    for number in range(6):  # each group's events are together and in order
        for batch in range(2):
            first = written.index(f"{number}-{batch}-0")
            assert written[first : first + 5] == [f"{number}-{batch}-{n}" for n in range(5)]
    with Session(engine) as session:
        assert verify_chain(session).ok
