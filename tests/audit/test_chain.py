"""The audit chain on SQLite and PostgreSQL: appends link up, and tampering is found and located."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from idbroker.audit import AuditDetailsError, append, verify_chain
from idbroker.audit.chain import GENESIS_HASH, HASH_FORMAT, event_hash
from idbroker.audit.models import AuditEvent, AuditHead
from idbroker.db import session_scope


def add_events(engine: Engine, count: int) -> None:
    with session_scope(engine) as session:
        for number in range(count):
            append(
                session,
                actor="cli:tester",
                action="import.run",
                subject=f"person{number:02d}",
                details={"source": "student", "counts": {"read": number, "new": 1}},
            )


def verify(engine: Engine, batch: int = 10000):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return verify_chain(session, batch=batch)


def tamper(engine: Engine, *statements: str) -> None:
    """Run raw SQL as someone with write access to the database would, the append-only trigger disabled."""
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        if postgres:
            connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER ALL"))
        for statement in statements:
            connection.exec_driver_sql(statement)
        if postgres:
            connection.execute(text("ALTER TABLE audit_event ENABLE TRIGGER ALL"))


def test_an_empty_log_verifies(engine: Engine) -> None:
    report = verify(engine)
    assert report.ok and report.checked == 0 and report.problem is None and report.bad_seq is None


def test_appended_events_form_a_chain(engine: Engine) -> None:
    add_events(engine, 5)
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
        head = session.get(AuditHead, 1)
    assert [event.seq for event in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    assert head is not None and (head.seq, head.hash) == (5, events[-1].hash)
    assert events[2].details == '{"counts":{"new":1,"read":2},"source":"student"}'
    assert all(event.at.utcoffset() is not None for event in events)
    report = verify(engine)
    assert report.ok and report.checked == 5


def test_details_are_stored_as_canonical_json(engine: Engine) -> None:
    with session_scope(engine) as session:
        event = append(session, actor="system", action="export.identities", details={"z": 1, "a": "学院", "m": [2, 1]})
    assert event.details == '{"a":"学院","m":[2,1],"z":1}'
    assert json.loads(event.details) == {"z": 1, "a": "学院", "m": [2, 1]}
    assert verify(engine).ok


def test_verify_pages_through_the_log(engine: Engine) -> None:
    add_events(engine, 7)
    assert verify(engine, batch=2).checked == 7
    assert verify(engine, batch=7).checked == 7
    tamper(engine, "DELETE FROM audit_event WHERE seq = 5")
    report = verify(engine, batch=2)
    assert not report.ok and report.bad_seq == 5 and report.checked == 4


def test_a_rolled_back_append_leaves_no_trace(engine: Engine) -> None:
    add_events(engine, 2)
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        append(session, actor="system", action="person.merge", details={"records": [1, 2]})
        raise RuntimeError("the caller's transaction fails")
    add_events(engine, 1)
    report = verify(engine)
    assert report.ok and report.checked == 3


def test_an_edited_event_is_found(engine: Engine) -> None:
    add_events(engine, 5)
    tamper(
        engine,
        """UPDATE audit_event SET details = '{"counts":{"new":0,"read":2},"source":"student"}'"""
        " WHERE seq = 3",
    )
    report = verify(engine)
    assert not report.ok
    assert report.bad_seq == 3 and report.checked == 2
    assert report.problem is not None and "event 3" in report.problem and "altered" in report.problem


@pytest.mark.parametrize("column", ["actor", "action", "subject"])
def test_an_edit_of_any_field_is_found(engine: Engine, column: str) -> None:
    add_events(engine, 3)
    tamper(engine, f"UPDATE audit_event SET {column} = 'someone' WHERE seq = 2")
    report = verify(engine)
    assert not report.ok and report.bad_seq == 2


def test_an_edited_event_with_a_recomputed_hash_breaks_the_next_link(engine: Engine) -> None:
    add_events(engine, 4)
    with Session(engine) as session:
        event = session.get(AuditEvent, 2)
        assert event is not None
        forged = '{"counts":{"new":9,"read":9},"source":"hr"}'
        digest = event_hash(event.seq, event.at, event.actor, event.action, event.subject, forged, event.prev_hash)
    tamper(engine, f"UPDATE audit_event SET details = '{forged}', hash = '{digest}' WHERE seq = 2")
    report = verify(engine)
    assert not report.ok and report.bad_seq == 3
    assert report.problem is not None and "does not follow event 2" in report.problem


@pytest.mark.parametrize(("deleted", "bad_seq"), [(1, 1), (3, 3), (5, 5)])
def test_a_deleted_event_is_found(engine: Engine, deleted: int, bad_seq: int) -> None:
    add_events(engine, 5)
    tamper(engine, f"DELETE FROM audit_event WHERE seq = {deleted}")
    report = verify(engine)
    assert not report.ok
    assert report.bad_seq == bad_seq
    assert report.problem is not None and ("missing" in report.problem or "removed from the end" in report.problem)


def test_a_deleted_event_with_renumbered_successors_is_found(engine: Engine) -> None:
    add_events(engine, 4)
    tamper(
        engine,
        "DELETE FROM audit_event WHERE seq = 2",
        "UPDATE audit_event SET seq = 2 WHERE seq = 3",
        "UPDATE audit_event SET seq = 3 WHERE seq = 4",
    )
    report = verify(engine)
    assert not report.ok and report.bad_seq == 2


def test_swapped_events_are_found(engine: Engine) -> None:
    add_events(engine, 5)
    tamper(
        engine,
        "UPDATE audit_event SET seq = -1 WHERE seq = 2",
        "UPDATE audit_event SET seq = 2 WHERE seq = 3",
        "UPDATE audit_event SET seq = 3 WHERE seq = -1",
    )
    report = verify(engine)
    assert not report.ok and report.bad_seq == 2


def test_a_head_that_does_not_match_the_last_event_is_found(engine: Engine) -> None:
    add_events(engine, 3)
    tamper(engine, f"UPDATE audit_head SET hash = '{'f' * 64}' WHERE id = 1")
    report = verify(engine)
    assert not report.ok and report.bad_seq == 3 and report.checked == 3


def test_events_beyond_the_head_are_found(engine: Engine) -> None:
    add_events(engine, 3)
    tamper(engine, "UPDATE audit_head SET seq = 2 WHERE id = 1")
    report = verify(engine)
    assert not report.ok and report.bad_seq == 3


@pytest.mark.parametrize(
    "details",
    [
        {"phone": "x"},
        {"counts": {"National-ID": "x"}},
        {"手机号": "x"},
        {"records": [{"token": "x"}]},
        {"contact": "+8613800138000"},
        {"ids": ["11010519491231002X"]},
    ],
)
def test_personal_data_in_details_is_refused(engine: Engine, details: dict[str, object]) -> None:
    with pytest.raises(AuditDetailsError), session_scope(engine) as session:
        append(session, actor="system", action="contact.change", details=details)
    assert verify(engine).checked == 0


def test_malformed_events_are_refused(engine: Engine) -> None:
    with session_scope(engine) as session:
        with pytest.raises(AuditDetailsError, match="actor"):
            append(session, actor="", action="x", details={})
        with pytest.raises(AuditDetailsError, match="subject"):
            append(session, actor="system", action="x", subject="p" * 33, details={})
        with pytest.raises(AuditDetailsError, match="serialisable"):
            append(session, actor="system", action="x", details={"when": object()})
    assert verify(engine).checked == 0


def test_concurrent_appends_keep_one_chain(engine: Engine) -> None:
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            for index in range(10):
                with session_scope(engine) as session:
                    append(session, actor=f"worker{number}", action="test.append", details={"index": index})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    report = verify(engine)
    assert report.ok and report.checked == 40


@pytest.mark.postgresql
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # the append-only trigger is PostgreSQL's
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET actor = 'someone' WHERE seq = 1",
        "DELETE FROM audit_event WHERE seq = 1",
        "TRUNCATE audit_event",
    ],
)
def test_postgresql_refuses_changes_to_stored_events(engine: Engine, statement: str) -> None:
    add_events(engine, 2)
    with pytest.raises(DBAPIError, match="audit_event is append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert verify(engine).ok


@pytest.mark.parametrize(
    ("actor", "subject", "details"),
    [
        ("cli:tester", None, "{}"),
        ('staff "王"\\', "person01", '{"note":"tab\\t, newline\\n, \\u0001, 学院"}'),
    ],
)
def test_the_hash_is_sha256_of_the_documented_json_array(actor: str, subject: str | None, details: str) -> None:
    at = datetime(2026, 9, 1, 8, 30, 0, 5, tzinfo=UTC)
    expected = json.dumps(
        [
            HASH_FORMAT,
            7,
            "2026-09-01T08:30:00.000005+00:00",
            actor,
            "test.event",
            subject,
            details,
            GENESIS_HASH,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(expected.encode("utf-8")).hexdigest()
    assert event_hash(7, at, actor, "test.event", subject, details, GENESIS_HASH) == digest
    # The same instant in another zone is the same event.
    shanghai = at.astimezone(timezone(timedelta(hours=8)))
    assert event_hash(7, shanghai, actor, "test.event", subject, details, GENESIS_HASH) == digest


@pytest.mark.postgresql
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_appends_committed_during_verify_are_not_reported(engine: Engine) -> None:
    """Verify reads one snapshot: an event committed after it read the head is simply not part of this run."""
    add_events(engine, 3)
    appended: list[int] = []

    def append_once(_conn, _cursor, statement: str, *_args: object) -> None:  # type: ignore[no-untyped-def]
        if "FROM audit_event" in statement and not appended:
            appended.append(1)
            add_events(engine, 1)  # another connection, committed before verify reads the events

    event.listen(engine, "before_cursor_execute", append_once)
    try:
        report = verify(engine)
    finally:
        event.remove(engine, "before_cursor_execute", append_once)
    assert appended == [1]
    assert report.ok and report.checked == 3
    assert verify(engine).checked == 4
