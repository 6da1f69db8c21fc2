"""Generating a large audit log fast: events sealed and chained in Python, bulk-loaded (not `append` calls).

Each event is what `idbroker.audit.chain.append` would write — the same canonical details, a random salt per
details key, the same leaves, digest and v2 hash, each linked to the one before — so `verify_chain` accepts
the result. Sealing (the per-key leaves and the digest) runs in worker processes; the chain (seq, prev_hash,
hash) is computed in order in the parent. SQLite loads through executemany in large transactions, PostgreSQL
through COPY. Secondary indexes are dropped for the load and created again afterwards (the same definitions
as migration 0007's).

The mix (per 100 events): 74 app releases, 12 logins, 4 consents, 4 helpdesk record openings (with a reason
and a client IP), 3 helpdesk searches (no subject), 3 privacy-officer searches. People, apps and staff are
random IDs; nobody is real.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text

from idbroker.audit.chain import (
    GENESIS_HASH,
    SALT_BYTES,
    canonical_json,
    details_digest,
    details_leaf,
    event_hash_v2,
)
from idbroker.audit.models import AuditEvent
from idbroker.directory.models import Person

CHUNK = 50_000
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
APPS = [f"app{n:02d}.example" for n in range(40)]
CLAIM_SETS = [["name"], ["name", "email"], ["affiliation", "department", "name"], ["email"], ["nickname"]]
PURPOSES = {app: f"{app} 的服务：登录与通知" for app in APPS}
VIA = ["id_token", "userinfo", "introspection", "feed"]

Sealed = tuple[str, str, str, str | None, str | None]  # details, salts, digest, app, purpose


def person_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return ["".join(rng.choice(alphabet) for _ in range(26)) for _ in range(count)]


def _event(
    rng: random.Random, people: list[str], staff: list[str], officers: list[str]
) -> tuple[str, str, str | None, dict[str, Any]]:
    roll = rng.random()
    subject = people[rng.randrange(len(people))]
    if roll < 0.74:
        app = APPS[min(int(rng.paretovariate(1.2)) - 1, len(APPS) - 1)]
        details = {
            "app": app,
            "claims": CLAIM_SETS[rng.randrange(len(CLAIM_SETS))],
            "purpose": PURPOSES[app],
            "via": VIA[rng.randrange(len(VIA))],
        }
        return f"app:{app}", "release", subject, details
    if roll < 0.86:
        return f"person:{subject}", "login", subject, {"via": "cas", "result": "ok"}
    if roll < 0.90:
        app = APPS[rng.randrange(len(APPS))]
        return f"person:{subject}", "consent.grant", subject, {"app": app, "claims": ["name"], "purpose": PURPOSES[app]}
    if roll < 0.94:
        details = {
            "reason": f"ticket {rng.randrange(100000)}",
            "purpose": "helpdesk",
            "result": "ok",
            "fields": ["records", "contacts", "history", "candidates", "consents"],
            "client_ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        }
        return f"person:{staff[rng.randrange(len(staff))]}", "helpdesk.record.open", subject, details
    if roll < 0.97:
        details = {
            "query_kind": "name",
            "results": rng.randrange(5),
            "purpose": "helpdesk",
            "client_ip": f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        }
        return f"person:{staff[rng.randrange(len(staff))]}", "helpdesk.search", None, details
    details = {"filters": {"person": subject}, "results": rng.randrange(300), "purpose": "privacy audit"}
    return f"person:{officers[rng.randrange(len(officers))]}", "audit.search", subject, details


def _value_text(value: Any, cache: dict[Any, str]) -> str:
    """`canonical_json(value)`, remembered for the values that repeat (apps, claim lists, purposes)."""
    if isinstance(value, dict):
        return canonical_json(value)
    key = (type(value), tuple(value) if isinstance(value, list) else value)
    text_ = cache.get(key)
    if text_ is None:
        text_ = cache[key] = canonical_json(value)
    return text_


def _seal(details: dict[str, Any], salts_hex: str, cache: dict[Any, str]) -> Sealed:
    """What `chain.seal_details` computes, with the salts given (keys are plain ASCII names here)."""
    width = 2 * SALT_BYTES
    salts = {key: salts_hex[i * width : (i + 1) * width] for i, key in enumerate(details)}
    leaves = {
        key: hashlib.sha256(f'["{key}","{salts[key]}",{_value_text(value, cache)}]'.encode()).hexdigest()
        for key, value in details.items()
    }
    return (
        canonical_json(details),
        canonical_json(salts),
        details_digest(leaves),
        details.get("app"),
        details.get("purpose"),
    )


_GROUPS: dict[str, list[str]] = {}


def _init_worker(people: list[str], staff: list[str], officers: list[str]) -> None:
    _GROUPS.update(people=people, staff=staff, officers=officers)


def seal_chunk(args: tuple[int, int, int]) -> list[tuple[str, str, str | None, Sealed]]:
    start, count, seed = args
    people, staff, officers = _GROUPS["people"], _GROUPS["staff"], _GROUPS["officers"]
    rng = random.Random(seed * 1_000_003 + start)
    cache: dict[Any, str] = {}
    out = []
    for _ in range(count):
        actor, action, subject, details = _event(rng, people, staff, officers)
        salts_hex = secrets.token_hex(SALT_BYTES * len(details))
        out.append((actor, action, subject, _seal(details, salts_hex, cache)))
    return out


def check_sealing() -> None:
    """The fast path computes exactly the chain's leaves (checked once per run, on every kind of event)."""
    rng = random.Random(1)
    people, staff = person_ids(10, 2), person_ids(3, 3)
    for _ in range(200):
        _actor, _action, _subject, details = _event(rng, people, staff, staff)
        salts_hex = secrets.token_hex(SALT_BYTES * len(details))
        text_, salts_text, digest, _app, _purpose = _seal(details, salts_hex, {})
        salts = json.loads(salts_text)
        leaves = {key: details_leaf(key, salts[key], value) for key, value in details.items()}
        assert text_ == canonical_json(details) and digest == details_digest(leaves), details


def events(total: int, seed: int, people: list[str], workers: int | None = None) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of ready rows (tuples in `COLUMNS` order), chained in order, timestamps spread over 2 years."""
    check_sealing()
    staff, officers = person_ids(200, seed + 1), person_ids(5, seed + 2)
    end = datetime.now(UTC) - timedelta(minutes=5)
    start_at = end - timedelta(days=730)
    step_us = int((end - start_at) / timedelta(microseconds=1)) // total
    prev = GENESIS_HASH
    jobs = [(start, min(CHUNK, total - start), seed) for start in range(0, total, CHUNK)]
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(people, staff, officers)) as pool:
        pending = deque(pool.submit(seal_chunk, job) for job in jobs[: workers + 1])
        submitted = len(pending)
        for start, _count, _seed in jobs:
            sealed = pending.popleft().result()
            if submitted < len(jobs):  # a bounded window: never more than a few chunks in memory
                pending.append(pool.submit(seal_chunk, jobs[submitted]))
                submitted += 1
            rows = []
            for offset, (actor, action, subject, (details, salts, digest, app, purpose)) in enumerate(sealed):
                seq = start + offset + 1
                at = start_at + timedelta(microseconds=step_us * seq)
                digest_hash = event_hash_v2(seq, at, actor, action, subject, digest, prev)
                rows.append(
                    (
                        seq,
                        at,
                        actor,
                        action,
                        subject,
                        details,
                        prev,
                        digest_hash,
                        salts,
                        None,
                        digest,
                        app,
                        purpose,
                        0,
                        None,
                    )
                )
                prev = digest_hash
            yield rows


COLUMNS = [column.name for column in AuditEvent.__table__.columns]  # type: ignore[attr-defined]
assert COLUMNS[:8] == ["seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash"], COLUMNS
assert COLUMNS[8:] == [
    "details_salts",
    "details_removed",
    "details_digest",
    "app",
    "purpose",
    "retention_level",
    "reduced_at",
], COLUMNS


def secondary_indexes() -> list[Any]:
    return list(AuditEvent.__table__.indexes)  # type: ignore[attr-defined]


def load(engine: Engine, total: int, seed: int, people_count: int) -> tuple[list[str], int, str]:
    """Fill an empty, migrated database: people, then `total` chained events; returns (people, last seq, head)."""
    people = person_ids(people_count, seed)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(Person.__table__),  # type: ignore[attr-defined]
            [
                {"id": pid, "state": "active", "merged_into": None, "created_at": now, "updated_at": now}
                for pid in people
            ],
        )
        for index in secondary_indexes():
            index.drop(connection)
    postgres = engine.dialect.name == "postgresql"
    last_seq, head = 0, GENESIS_HASH
    at_column = COLUMNS.index("at")
    statement = f"INSERT INTO audit_event ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    raw = engine.raw_connection()
    try:
        for rows in events(total, seed, people):
            cursor = raw.cursor()
            if postgres:
                with cursor.copy(f"COPY audit_event ({', '.join(COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in rows:
                        copy.write_row(row)
            else:  # SQLAlchemy's SQLite DATETIME text, UTC, as the models read it back
                cursor.execute("BEGIN")
                cursor.executemany(
                    statement,
                    [(*row[:at_column], row[at_column].strftime(SQLITE_TIME), *row[at_column + 1 :]) for row in rows],
                )
            cursor.close()
            raw.commit()
            last_seq, head = rows[-1][0], rows[-1][7]
    finally:
        raw.close()
    with engine.begin() as connection:
        for index in secondary_indexes():
            index.create(connection)
        connection.execute(
            text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"), {"seq": last_seq, "hash": head}
        )
        connection.execute(text("ANALYZE"))
    return people, last_seq, head
