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
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from time import perf_counter
from typing import Any

from sqlalchemy import Row, or_, select, tuple_
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.db import DriverStatement, bulk_insert, bulk_update_by_id, driver_converter, driver_row, driver_value
from idbroker.directory.events import emit_many
from idbroker.directory.ids import new_person_id
from idbroker.directory.models import Person, SourceRecord
from idbroker.linking.compare import compare
from idbroker.linking.engine import Linker, agreeing_groups
from idbroker.linking.fields import COLUMNS, RecordReader
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
    seconds: dict[str, float] = field(default_factory=dict)  # load, link, write

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = {phase: round(value, 3) for phase, value in self.seconds.items()}
        return data


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


# The two reads of a large batch, at driver speed (a million rows is common): records without a person, and
# every record with one.
PENDING = DriverStatement(_select_records().where(RECORDS.c.person_id.is_(None)))
PLACED = DriverStatement(_select_records().where(RECORDS.c.person_id.is_not(None)))
PERSON = len(COLUMNS)  # where a read row holds the record's person


def _people_reached(session: Session, records: Sequence[LinkRecord], spaces: dict[str, str]) -> set[str]:
    """Who the blocking keys of these records lead to: indexed lookups, one query per key and chunk."""
    wanted: dict[str, set[Any]] = defaultdict(set)
    for record in records:
        f = record.fields
        for name in ("national_id_hash", "phone", "email"):
            if f.get(name):
                wanted[name].add(f[name])
        wanted["national_id_hash"].update(f.get("national_id_hashes") or ())  # every key version (issue 7)
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


def _records_of(session: Session, people: Iterable[str] | None) -> Sequence[Sequence[Any]]:
    if people is None:
        return PLACED.run(session)[0]
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


@dataclass
class Neighbourhood:
    """The people a batch of records can reach, loaded from the database, as clusters of the engine."""

    linker: Linker
    cluster_of: dict[str, int]  # person id -> cluster
    records_of: dict[str, list[LinkRecord]]  # person id -> their records


def _load(session: Session, policy: MatchingPolicy, spaces: dict[str, str], batch: list[LinkRecord], everyone: bool,
          extra_people: set[str]) -> Neighbourhood:  # fmt: skip
    if everyone:
        people: set[str] | None = None
        rows = _records_of(session, None)
    else:
        people = _people_reached(session, batch, spaces) | extra_people
        rows = _records_of(session, people)
    linker = Linker(policy)
    records_of: dict[str, list[LinkRecord]] = defaultdict(list)
    read = RecordReader(spaces)
    for row in rows:
        records_of[row[PERSON]].append(read(row))
    cluster_of = {pid: linker.seed(records) for pid, records in records_of.items()}
    for a, b in _kept_apart(session, people):
        if a in cluster_of and b in cluster_of:
            linker.keep_apart(cluster_of[a], cluster_of[b])
    return Neighbourhood(linker, cluster_of, records_of)


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
    clock = perf_counter()
    read = RecordReader(spaces)
    pending = [read(row) for row in PENDING.run(session)[0]]
    probes: list[LinkRecord] = []
    probe_people: set[str] = set()
    if changed and not full:
        for start in range(0, len(changed), CHUNK):
            for row in session.execute(_select_records().where(RECORDS.c.id.in_(list(changed[start : start + CHUNK])))):
                probes.append(read(row))
                probe_people.add(row.person_id)
    everyone = full or len(pending) + len(probes) > LOAD_EVERYONE_ABOVE
    near = _load(session, policy, spaces, pending + probes, everyone, probe_people)
    if full:
        probes = [record for records in near.records_of.values() for record in records]
    report = LinkReport(linked=len(pending), probed=len(probes), people_loaded=len(near.cluster_of))
    report.seconds["load"] = perf_counter() - clock

    clock = perf_counter()
    linker = near.linker
    for group in agreeing_groups(pending, policy):
        linker.link_group(group)
        if progress is not None:
            progress(len(group))
    person_of_record = {record.id: pid for pid, records in near.records_of.items() for record in records}
    for record in probes:
        linker.probe(record, near.cluster_of[person_of_record[record.id]])
    candidates = linker.settle()
    report.vetoed, report.joined = linker.stats.vetoed, linker.stats.joined
    report.seconds["link"] = perf_counter() - clock

    clock = perf_counter()
    person_of_root, created, merges = _people_of(linker, near)
    _write_people(session, created)
    touched = _write_assignments(session, linker, person_of_root)
    fresh = set(created)
    emit_many(session, "person.created", created)
    emit_many(session, "person.updated", (pid for pid in touched if pid not in fresh), reason="records linked")
    _write_merges(session, policy, near, merges, actor)
    report.new_people, report.merged = len(created), len(merges)
    report.queued = _queue(session, linker, candidates, person_of_root)
    report.seconds["write"] = perf_counter() - clock
    return report


def _people_of(linker: Linker, near: Neighbourhood) -> tuple[dict[int, str], list[str], list[tuple[str, str]]]:
    """Each final cluster is one person: an existing one, the survivor of several (merges), or a new one."""
    seeded_in: dict[int, list[str]] = defaultdict(list)
    for pid, cluster in near.cluster_of.items():
        seeded_in[linker.find(cluster)].append(pid)
    person_of_root: dict[int, str] = {}
    new_people: list[str] = []
    merges: list[tuple[str, str]] = []
    roots = list(linker.profiles)  # every final cluster (seeded or new) holds a profile, in the order they formed
    # New people get random IDs handed out in ascending order, so the records' person index grows at its end as
    # the records are written in their own order (a third less time to write a campus's first link).
    fresh = iter(sorted(new_person_id() for root in roots if root not in seeded_in))
    for root in roots:
        existing = seeded_in.get(root, [])
        if len(existing) > 1:
            existing.sort(key=lambda pid: -len(near.records_of[pid]))
        if existing:
            person_of_root[root] = existing[0]
            merges.extend((existing[0], absorbed) for absorbed in existing[1:])
        else:
            person_of_root[root] = next(fresh)
            new_people.append(person_of_root[root])
    return person_of_root, new_people, merges


def _write_people(session: Session, new_people: list[str]) -> None:
    now = utcnow()
    fixed = {"state": "active", "created_at": now, "updated_at": now}
    columns, as_row = driver_row(session, PEOPLE, ["id"], fixed)
    rows = [as_row({"id": person}) for person in new_people]
    for start in range(0, len(rows), 20_000):
        bulk_insert(session, PEOPLE, columns, rows[start : start + 20_000])


def _write_assignments(session: Session, linker: Linker, person_of_root: dict[int, str]) -> list[str]:
    """Each linked record's person and the evidence of its link, at driver speed (a million rows is common),
    in the order of the records' ids (the table's own order). Returns the people who got records."""
    as_json = driver_converter(session.get_bind().dialect, RECORDS.c.link_evidence)
    linked_at = driver_value(session, RECORDS.c.linked_at, utcnow())
    columns = ["person_id", "link_score", "linked_at", "link_evidence"]
    written: dict[int, tuple[Any, ...]] = {}  # per decision (a group's records share one): the values written
    bare: dict[str, Any] = {}  # the evidence of an outcome without a score, serialised once
    decisions = linker.decisions
    rows: list[tuple[Any, ...]] = []
    for record_id in sorted(decisions):
        decision = decisions[record_id]
        values = written.get(id(decision))
        if values is None:
            if decision.score is None:
                if decision.outcome not in bare:
                    bare[decision.outcome] = as_json({"outcome": decision.outcome})
                text, score = bare[decision.outcome], None
            else:
                text, score = as_json({"outcome": decision.outcome, **decision.score.as_json()}), decision.score.total
            values = written[id(decision)] = (person_of_root[linker.find(decision.cluster)], score, linked_at, text)
        rows.append((*values, record_id))
        if len(rows) >= 20_000:
            bulk_update_by_id(session, RECORDS, columns, rows)
            rows = []
    bulk_update_by_id(session, RECORDS, columns, rows)
    return [values[0] for values in written.values()]


def _write_merges(session: Session, policy: MatchingPolicy, near: Neighbourhood, merges: list[tuple[str, str]],
                  actor: str) -> None:  # fmt: skip
    """Two existing people joined by new evidence: a merge operation with that evidence, undoable."""
    for survivor, absorbed in merges:
        score = compare(policy, Profile.of(near.records_of[survivor]), Profile.of(near.records_of[absorbed]))
        merge_people(session, survivor, absorbed, actor=actor, reason="automatic: evidence at or above auto_merge",
                     score=score.total, evidence=score.as_json())  # fmt: skip


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
