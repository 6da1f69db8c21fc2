"""Retention-safe hashing and retention: old details are reduced, and the chain still verifies."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from plugins.privacy import add_events
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from idbroker.audit.chain import (
    GENESIS_HASH,
    append,
    canonical_json,
    details_digest,
    details_leaf,
    event_hash,
    event_hash_v2,
)
from idbroker.audit.models import AuditEvent, AuditHead
from idbroker.audit.retention import RetentionPolicy, apply_retention, load_retention_policy
from idbroker.audit.verify import verify_chain
from idbroker.clock import utcnow
from idbroker.config import get_settings
from idbroker.db import session_scope
from idbroker.policy import PolicyError

POLICY = RetentionPolicy.model_validate(
    {
        "network_logs": {"keep_days": 190, "keys": ["client_ip", "user_agent"]},
        "processing_records": {"keep_days": 1100, "keep_keys": ["app", "purpose", "result"]},
        "batch": 2,  # several batches even with a few events
    }
)
DETAILS = {
    "app": "bus",
    "claims": ["name", "email"],
    "purpose": "login",
    "client_ip": "10.1.2.3",
    "result": "ok",
}


def events(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())


def verify(engine: Engine):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return verify_chain(session)


def retain(engine: Engine, days_later: int, policy: RetentionPolicy = POLICY):  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return apply_retention(session, policy, actor="cli:officer", now=utcnow() + timedelta(days=days_later))


def tamper(engine: Engine, statement: str) -> None:
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        if postgres:
            connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER ALL"))
        connection.exec_driver_sql(statement)
        if postgres:
            connection.execute(text("ALTER TABLE audit_event ENABLE TRIGGER ALL"))


def test_appended_events_hash_a_digest_of_salted_leaves(engine: Engine) -> None:
    add_events(engine, 1, subject="person01", details=DETAILS)
    (event,) = events(engine)
    salts = json.loads(event.details_salts or "{}")
    assert set(salts) == set(DETAILS) and all(len(salt) == 16 for salt in salts.values())
    assert len(set(salts.values())) == len(salts)  # one salt per key
    leaves = {key: details_leaf(key, salts[key], value) for key, value in DETAILS.items()}
    assert event.details_digest == details_digest(leaves)
    assert event.hash == event_hash_v2(
        1, event.at, "app:bus", "release", "person01", event.details_digest, GENESIS_HASH
    )
    assert (event.app, event.purpose) == ("bus", "login")
    assert event.details == canonical_json(DETAILS)


def test_network_details_go_after_their_period_and_the_chain_still_verifies(engine: Engine) -> None:
    add_events(engine, 5, subject="person01", details=DETAILS)
    assert retain(engine, 100).network == 0  # too young: nothing changes
    report = retain(engine, 200)
    assert report.network == 5 and report.processing == 0  # the first run (seq 6) had nothing to remove
    reduced = events(engine)[:5]
    for event in reduced:
        kept = json.loads(event.details)
        assert "client_ip" not in kept and kept["claims"] == ["name", "email"]
        assert "10.1.2.3" not in (event.details + (event.details_salts or "") + (event.details_removed or ""))
        assert set(json.loads(event.details_removed or "{}")) == {"client_ip"}
        assert "client_ip" not in json.loads(event.details_salts or "{}")
        assert event.retention_level == 1 and event.reduced_at is not None
    result = verify(engine)
    assert result.ok and result.checked == 7  # 5 events and the two retention runs


def test_processing_records_keep_only_what_the_policy_keeps(engine: Engine) -> None:
    add_events(engine, 3, subject="person01", details=DETAILS | {"reason": "ticket 12"})
    retain(engine, 200)
    report = retain(engine, 1200)
    assert report.processing >= 3
    for event in events(engine)[:3]:
        assert json.loads(event.details) == {"app": "bus", "purpose": "login", "result": "ok"}
        assert set(json.loads(event.details_removed or "{}")) == {"claims", "client_ip", "reason"}
        assert event.retention_level == 2 and (event.app, event.purpose) == ("bus", "login")
    assert verify(engine).ok


def test_one_run_reduces_events_past_both_periods(engine: Engine) -> None:
    add_events(engine, 2, subject="person01", details=DETAILS)
    report = retain(engine, 1200)
    assert report.network == 2 and report.processing == 2
    assert verify(engine).ok


def test_a_kept_value_of_a_reduced_event_is_still_checked(engine: Engine) -> None:
    add_events(engine, 3, subject="person01", details=DETAILS)
    retain(engine, 200)
    tamper(engine, """UPDATE audit_event SET details = replace(details, '"login"', '"other"') WHERE seq = 2""")
    result = verify(engine)
    assert not result.ok and result.bad_seq == 2 and "altered" in (result.problem or "")


def test_a_forged_leaf_of_a_removed_value_is_found(engine: Engine) -> None:
    add_events(engine, 3, subject="person01", details=DETAILS)
    retain(engine, 200)
    forged = canonical_json({"client_ip": details_leaf("client_ip", "0" * 16, "10.9.9.9")})
    tamper(engine, f"UPDATE audit_event SET details_removed = '{forged}' WHERE seq = 3")
    result = verify(engine)
    assert not result.ok and result.bad_seq == 3


def test_a_search_column_that_disagrees_with_the_details_is_found(engine: Engine) -> None:
    add_events(engine, 2, subject="person01", details=DETAILS)
    tamper(engine, "UPDATE audit_event SET app = 'other' WHERE seq = 1")
    result = verify(engine)
    assert not result.ok and result.bad_seq == 1 and "app or purpose" in (result.problem or "")


def test_an_event_that_does_not_verify_is_never_reduced(engine: Engine) -> None:
    add_events(engine, 3, subject="person01", details=DETAILS)
    tamper(engine, """UPDATE audit_event SET details = replace(details, '"bus"', '"tram"') WHERE seq = 2""")
    report = retain(engine, 200)
    assert report.unverifiable == [2] and report.network == 2
    assert "client_ip" in json.loads(events(engine)[1].details)  # the evidence is kept as it is


def test_events_of_format_v1_are_kept_whole(engine: Engine) -> None:
    """Events written before migration 0007 hash the whole details text: retention leaves them alone."""
    at = utcnow()
    details = canonical_json(DETAILS)
    digest = event_hash(1, at, "app:bus", "release", "person01", details, GENESIS_HASH)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_event (seq, at, actor, action, subject, details, prev_hash, hash, app, purpose,"
                " retention_level) VALUES (1, :at, 'app:bus', 'release', 'person01', :details, :prev, :hash,"
                " 'bus', 'login', 0)"
            ),
            {"at": at, "details": details, "prev": GENESIS_HASH, "hash": digest},
        )
        connection.execute(text("UPDATE audit_head SET seq = 1, hash = :hash WHERE id = 1"), {"hash": digest})
    add_events(engine, 1, subject="person01", details=DETAILS)
    assert verify(engine).ok
    report = retain(engine, 200)
    assert report.legacy_kept == 1 and report.network == 1
    first = events(engine)[0]
    assert first.details == details and first.retention_level == 1
    assert verify(engine).ok


def test_retention_is_itself_recorded(engine: Engine) -> None:
    add_events(engine, 2, subject="person01", details=DETAILS)
    retain(engine, 200)
    last = events(engine)[-1]
    assert last.action == "audit.retention" and last.actor == "cli:officer"
    assert json.loads(last.details)["network"] == 2


def test_the_shipped_policy_loads_and_keeps_the_legal_minimums(tmp_path: Path) -> None:
    policy = load_retention_policy(get_settings())
    assert policy.network_logs.keep_days >= 183 and policy.processing_records.keep_days >= 1096
    short = tmp_path / "retention.yaml"
    short.write_text(
        "network_logs:\n  keep_days: 90\n  keys: [client_ip]\nprocessing_records:\n  keep_days: 1100\n",
        encoding="utf-8",
    )
    settings = get_settings().model_copy(update={"policies_dir": tmp_path})
    with pytest.raises(PolicyError, match=r"retention.yaml:2: network_logs.keep_days"):
        load_retention_policy(settings)


@pytest.mark.postgresql
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_postgresql_lets_only_retention_change_stored_events(engine: Engine) -> None:
    add_events(engine, 2, subject="person01", details=DETAILS)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET details = '{}' WHERE seq = 1"))
    # Even on retention's path, what the hash covers cannot change.
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("SELECT set_config('idbroker.audit_retention', 'on', true)"))
        connection.execute(text("UPDATE audit_event SET actor = 'someone' WHERE seq = 1"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("SELECT set_config('idbroker.audit_retention', 'on', true)"))
        connection.execute(text("DELETE FROM audit_event WHERE seq = 1"))
    assert retain(engine, 200).network == 2
    with engine.begin() as connection:  # the setting was local to retention's transaction
        assert connection.execute(text("SELECT current_setting('idbroker.audit_retention', true)")).scalar() in (
            None,
            "",
            "off",
        )
    assert verify(engine).ok


def test_the_head_moves_with_every_append(engine: Engine) -> None:
    with session_scope(engine) as session:
        event = append(session, actor="system", action="test", details={})
    with Session(engine) as session:
        head = session.get(AuditHead, 1)
    assert head is not None and head.hash == event.hash
