"""Linking records in the database: load the people new records can reach, run the engine, write back.

New records (no person yet) are linked; changed records are probed (they may now join two people). A
small batch loads only the people its blocking keys reach — a new record is linked in milliseconds,
without a full run; a large batch, or `full=True` (a full re-link of every record), loads everyone.
Automatic merges of two existing people are written as merge operations with their evidence, exactly
like a helpdesk merge, so they can be explained and undone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Row, bindparam, insert, or_, select, tuple_, update
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.directory.events import emit_many
from idbroker.directory.ids import new_person_id
from idbroker.directory.models import Person, SourceRecord
from idbroker.linking.compare import compare
from idbroker.linking.engine import Linker, ordered
from idbroker.linking.fields import COLUMNS, link_record
from idbroker.linking.merge import merge_people
from idbroker.linking.models import KeptApart, MergeCandidate
from idbroker.linking.policy import MatchingPolicy, load_matching_policy
from idbroker.linking.records import LinkRecord, Profile
from idbroker.sources.mapping import known_sources, load_mapping

RECORDS = SourceRecord.__table__  # type: ignore[attr-defined]
PEOPLE = Person.__table__  # type: ignore[attr-defined]
CHUNK = 500
LOAD_EVERYONE_ABOVE = 2000  # records in one batch; above this a full scan is cheaper than lookups
Progress = Callable[[int], None]


@dataclass
class LinkReport:
    linked: int = 0
    probed: int = 0
    new_people: int = 0
    joined: int = 0
    merged: int = 0
    queued: int = 0
    vetoed: int = 0
    people_loaded: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@lru_cache(maxsize=8)
def _policy_at(path: Path, mtime: float) -> MatchingPolicy:
    return load_matching_policy(path)


def matching_policy(settings: Settings) -> MatchingPolicy:
    path = Path(settings.policies_dir) / "matching.yaml"
    return _policy_at(path, path.stat().st_mtime if path.exists() else 0.0)


def key_spaces(settings: Settings) -> dict[str, str]:
    policies = Path(settings.policies_dir)
    return {source: load_mapping(policies, source).key_space for source in known_sources(policies)}


def _select_records() -> Any:
    return select(*(RECORDS.c[name] for name in COLUMNS), RECORDS.c.person_id)


def _people_reached(session: Session, records: Sequence[LinkRecord], spaces: dict[str, str]) -> set[str]:
    """Who the blocking keys of these records lead to: indexed lookups, one query per key and chunk."""
    wanted: dict[str, set[Any]] = defaultdict(set)
    for record in records:
        f = record.fields
        for name in ("national_id_hash", "phone", "email"):
            if f.get(name):
                wanted[name].add(f[name])
        if f.get("account"):
            wanted["key"].add(record.key)
        if f.get("name_key") and f.get("birth_date"):
            wanted["name_birth"].add((f["name_key"], f["birth_date"]))
        if f.get("name_pinyin") and f.get("birth_date"):
            wanted["pinyin_birth"].add((f["name_pinyin"], f["birth_date"]))
    shared = {s for s in spaces if spaces[s] in {spaces.get(r.source) for r in records}}
    people: set[str] = set()
    for name, values in wanted.items():
        items = list(values)
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            if name == "name_birth":
                condition = tuple_(RECORDS.c.name_key, RECORDS.c.birth_date).in_(chunk)
            elif name == "pinyin_birth":
                condition = tuple_(RECORDS.c.name_pinyin, RECORDS.c.birth_date).in_(chunk)
            elif name == "key":
                condition = RECORDS.c.key.in_(chunk) & RECORDS.c.source.in_(shared)
            else:
                condition = RECORDS.c[name].in_(chunk)
            query = select(RECORDS.c.person_id).where(condition, RECORDS.c.person_id.is_not(None)).distinct()
            people.update(session.scalars(query))
    return people


def _records_of(session: Session, people: Iterable[str] | None) -> list[Row[Any]]:
    if people is None:
        return list(session.execute(_select_records().where(RECORDS.c.person_id.is_not(None))))
    rows: list[Row[Any]] = []
    items = list(people)
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        rows.extend(session.execute(_select_records().where(RECORDS.c.person_id.in_(chunk))))
    return rows


def _kept_apart(session: Session, people: set[str] | None) -> list[tuple[str, str]]:
    query = select(KeptApart.person_a, KeptApart.person_b)  # type: ignore[call-overload]
    if people is not None:
        if not people:
            return []
        items = list(people)
        pairs: list[tuple[str, str]] = []
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            pairs.extend(
                session.execute(query.where(or_(KeptApart.person_a.in_(chunk), KeptApart.person_b.in_(chunk))))
            )
        return pairs
    return list(session.execute(query))


def link_records(
    session: Session,
    *,
    settings: Settings,
    actor: str,
    changed: Sequence[int] = (),
    full: bool = False,
    progress: Progress | None = None,
) -> LinkReport:
    """Link every record without a person, probe `changed` ones (or all, with `full`), write the outcome."""
    policy = matching_policy(settings)
    spaces = key_spaces(settings)
    pending = [
        link_record(row, spaces) for row in session.execute(_select_records().where(RECORDS.c.person_id.is_(None)))
    ]
    report = LinkReport(linked=len(pending))
    load_everyone = full or len(pending) + len(changed) > LOAD_EVERYONE_ABOVE
    probe_rows: list[Row[Any]] = []
    if changed and not full:
        for start in range(0, len(changed), CHUNK):
            chunk = list(changed[start : start + CHUNK])
            probe_rows.extend(session.execute(_select_records().where(RECORDS.c.id.in_(chunk))))
    if load_everyone:
        people: set[str] | None = None
        rows = _records_of(session, None)
    else:
        people = _people_reached(session, pending + [link_record(r, spaces) for r in probe_rows], spaces)
        people.update(r.person_id for r in probe_rows if r.person_id)
        rows = _records_of(session, people)

    linker = Linker(policy)
    by_person: dict[str, list[LinkRecord]] = defaultdict(list)
    for row in rows:
        by_person[row.person_id].append(link_record(row, spaces))
    cluster_of: dict[str, int] = {pid: linker.seed(records) for pid, records in by_person.items()}
    person_of_cluster = {cluster: pid for pid, cluster in cluster_of.items()}
    report.people_loaded = len(cluster_of)
    for a, b in _kept_apart(session, people):
        if a in cluster_of and b in cluster_of:
            linker.keep_apart(cluster_of[a], cluster_of[b])

    for record in ordered(pending, policy):
        linker.link(record)
        if progress is not None:
            progress(1)
    probes = (
        [r for rows_ in by_person.values() for r in rows_] if full else [link_record(r, spaces) for r in probe_rows]
    )
    record_person = {row.id: row.person_id for row in rows}
    for record in probes:
        linker.probe(record, cluster_of[record_person[record.id]])
        if progress is not None and full:
            progress(1)
    report.probed = len(probes)
    candidates = linker.settle()
    report.vetoed = linker.stats.vetoed
    report.joined = linker.stats.joined

    # Each final cluster is one person: an existing one, the survivor of several, or a new one.
    seeded_in: dict[int, list[str]] = defaultdict(list)
    for cluster, pid in person_of_cluster.items():
        seeded_in[linker.find(cluster)].append(pid)
    sizes = {pid: len(recs) for pid, recs in by_person.items()}
    person_of_root: dict[int, str] = {}
    new_people: list[dict[str, Any]] = []
    now = utcnow()
    merges: list[tuple[str, str]] = []
    for root in {linker.find(d.cluster) for d in linker.decisions.values()} | set(seeded_in):
        existing = sorted(seeded_in.get(root, []), key=lambda pid: -sizes.get(pid, 0))
        if existing:
            person_of_root[root] = existing[0]
            merges.extend((existing[0], absorbed) for absorbed in existing[1:])
        else:
            pid = new_person_id()
            person_of_root[root] = pid
            new_people.append({"id": pid, "state": "active", "created_at": now, "updated_at": now})
    if new_people:
        for start in range(0, len(new_people), 5000):
            session.execute(insert(PEOPLE), new_people[start : start + 5000])
    report.new_people = len(new_people)
    emit_many(session, "person.created", (p["id"] for p in new_people))

    statement = update(RECORDS).where(RECORDS.c.id == bindparam("rid"))
    assignments: list[dict[str, Any]] = []
    joined_people: list[str] = []
    for record_id, decision in linker.decisions.items():
        score = decision.score
        evidence: dict[str, Any] = {"outcome": decision.outcome}
        if score is not None:
            evidence.update(score.as_json())
        person_id = person_of_root[linker.find(decision.cluster)]
        joined_people.append(person_id)
        assignments.append(
            {
                "rid": record_id,
                "person_id": person_id,
                "link_score": score.total if score is not None else None,
                "link_evidence": evidence,
                "linked_at": now,
            }
        )
        if len(assignments) >= 5000:
            session.execute(statement, assignments)
            assignments = []
    if assignments:
        session.execute(statement, assignments)
    fresh = {p["id"] for p in new_people}
    emit_many(session, "person.updated", (pid for pid in joined_people if pid not in fresh), reason="records linked")

    profiles = {pid: Profile() for pair in merges for pid in pair}
    for pid in profiles:
        for record in by_person.get(pid, []):
            profiles[pid].add(record)
    for survivor, absorbed in merges:
        score = compare(policy, profiles[survivor], profiles[absorbed])
        merge_people(
            session,
            survivor,
            absorbed,
            actor=actor,
            reason="automatic: evidence at or above auto_merge",
            score=score.total,
            evidence=score.as_json(),
        )
    report.merged = len(merges)

    report.queued = _queue(session, linker, candidates, person_of_root)
    return report


def _queue(session: Session, linker: Linker, candidates: Iterable[Any], person_of_root: dict[int, str]) -> int:
    """Open a review case per uncertain pair, unless one is open already or a human kept them apart."""
    queued = 0
    for candidate in candidates:
        a = person_of_root.get(linker.find(candidate.a))
        b = person_of_root.get(linker.find(candidate.b))
        if a is None or b is None or a == b:
            continue
        a, b = min(a, b), max(a, b)
        open_case = session.scalar(
            select(MergeCandidate.id).where(  # type: ignore[call-overload]
                MergeCandidate.person_a == a,
                MergeCandidate.person_b == b,
                MergeCandidate.state.in_(["open", "deferred"]),
            )
        )
        if open_case is not None:
            continue
        session.add(
            MergeCandidate(
                person_a=a,
                person_b=b,
                record_id=candidate.record_id,
                score=candidate.score.total,
                evidence=candidate.score.as_json(),
            )
        )
        queued += 1
    return queued
