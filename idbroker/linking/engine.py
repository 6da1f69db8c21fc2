"""The linker: normalize → block → score → decide, one record at a time, against people in memory.

Each record is compared with the people its blocking keys lead to (never with everyone). At or above
`auto_merge` it joins the best; if it also reaches another person strongly, the two people join too —
unless a veto (two different valid national IDs, a pair a human kept apart) forbids it, in which case
the pair goes to review. Between `review` and `auto_merge` the pair goes to review. Below, a new person.
`settle()` then re-scores the review pairs person against person, since people grew as records arrived.
The same engine serves a full run (every record) and an incremental one (new records against the people
their keys reach, loaded from the database).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from idbroker.linking.compare import Score, compare, vetoed
from idbroker.linking.policy import MatchingPolicy
from idbroker.linking.records import LinkRecord, Profile
from idbroker.memory import cycle_collector_paused


@dataclass(slots=True)
class RecordDecision:
    cluster: int
    outcome: str  # new | joined | probed
    score: Score | None = None
    matched_record: int | None = None


@dataclass(slots=True)
class Union:
    survivor: int
    absorbed: int
    score: Score
    record_id: int | None  # the record whose evidence bridged the two, if any


@dataclass(slots=True)
class Candidate:
    a: int
    b: int
    score: Score
    record_id: int | None


@dataclass
class LinkStats:
    records: int = 0
    new: int = 0
    joined: int = 0
    unions: int = 0
    vetoed: int = 0
    oversized_blocks: int = 0
    comparisons: int = 0


@dataclass
class Linker:
    policy: MatchingPolicy
    parent: dict[int, int] = field(default_factory=dict)
    profiles: dict[int, Profile] = field(default_factory=dict)
    index: list[dict[Any, Any]] = field(default_factory=list)  # per blocking rule: key -> cluster, or a list
    kept_apart: dict[int, set[int]] = field(default_factory=dict)
    decisions: dict[int, RecordDecision] = field(default_factory=dict)
    unions: list[Union] = field(default_factory=list)
    candidates: dict[tuple[int, int], Candidate] = field(default_factory=dict)
    stats: LinkStats = field(default_factory=LinkStats)
    _compared: set[tuple[int, int]] = field(default_factory=set)
    _next_cluster: int = 1

    def __post_init__(self) -> None:
        rules = list(enumerate(tuple(rule) for rule in self.policy.blocking))
        self.index = [{} for _ in rules]
        self._single = [(number, rule[0]) for number, rule in rules if len(rule) == 1]
        self._multi = [(number, rule) for number, rule in rules if len(rule) > 1]
        self._auto = self.policy.thresholds.auto_merge
        self._review = self.policy.thresholds.review
        self._max_block = self.policy.max_block_size

    # -- clusters -------------------------------------------------------------------------------------
    def find(self, cluster: int) -> int:
        parent = self.parent
        root = cluster
        while parent[root] != root:
            root = parent[root]
        while parent[cluster] != root:
            parent[cluster], cluster = root, parent[cluster]
        return root

    def new_cluster(self, profile: Profile) -> int:
        cluster = self._next_cluster
        self._next_cluster += 1
        self.parent[cluster] = cluster
        self.profiles[cluster] = profile
        return cluster

    def keep_apart(self, a: int, b: int) -> None:
        self.kept_apart.setdefault(a, set()).add(b)
        self.kept_apart.setdefault(b, set()).add(a)

    def _kept_apart(self, ra: int, rb: int) -> bool:
        for cluster, others in self.kept_apart.items():
            if self.find(cluster) == ra and any(self.find(o) == rb for o in others):
                return True
        return False

    def _union(self, survivor: int, absorbed: int, score: Score, record_id: int | None) -> int:
        survivor, absorbed = self.find(survivor), self.find(absorbed)
        if len(self.profiles[survivor].records) < len(self.profiles[absorbed].records):
            survivor, absorbed = absorbed, survivor
        self.parent[absorbed] = survivor
        self.profiles[survivor].absorb(self.profiles.pop(absorbed))
        self.unions.append(Union(survivor, absorbed, score, record_id))
        self.stats.unions += 1
        return survivor

    def _may_join(self, ra: int, rb: int) -> str | None:
        reason = vetoed(self.policy, self.profiles[ra], self.profiles[rb])
        if reason is None and self.kept_apart and self._kept_apart(ra, rb):
            reason = "kept_apart"
        return reason

    # -- blocking -------------------------------------------------------------------------------------
    def keys_of(self, record: LinkRecord) -> list[tuple[int, Any]]:
        """The blocking keys of a record: (rule, value) for each rule whose fields are all present (empty is
        None); a rule of several fields has a tuple of their values."""
        get = record.fields.get
        keys: list[tuple[int, Any]] = [
            (number, value) for number, name in self._single if (value := get(name)) is not None
        ]
        for number, names in self._multi:
            parts = tuple(map(get, names))
            if None not in parts:
                keys.append((number, parts))
        return keys

    def _index(self, keys: Iterable[tuple[int, Any]], cluster: int) -> None:
        """Remember which cluster each key leads to: an int for one cluster, a list once several share it.
        One dictionary per rule, keyed by the value itself: a million records hold millions of keys."""
        index, limit, find = self.index, self._max_block, self.find
        root = find(cluster)
        for rule, key in keys:
            of_rule = index[rule]
            members = of_rule.get(key)
            if members is None:
                of_rule[key] = cluster
            elif members.__class__ is int:
                if find(members) != root:
                    of_rule[key] = [members, cluster]
            elif len(members) <= limit and find(members[-1]) != root:
                members.append(cluster)
                if len(members) > limit:
                    self.stats.oversized_blocks += 1

    def _neighbours(self, keys: Iterable[tuple[int, Any]]) -> set[int]:
        found: set[int] = set()
        index, limit, find = self.index, self._max_block, self.find
        for rule, key in keys:
            members = index[rule].get(key)
            if members is None:
                continue
            if members.__class__ is int:
                found.add(find(members))
            elif len(members) <= limit:
                for cluster in members:
                    found.add(find(cluster))
        return found

    def seed(self, records: Iterable[LinkRecord]) -> int:
        """Add an existing person (all their records) as one cluster; returns its cluster id."""
        profile = Profile()
        cluster = self.new_cluster(profile)
        for record in records:
            profile.add(record)
            self._index(self.keys_of(record), cluster)
        return cluster

    # -- deciding -------------------------------------------------------------------------------------
    def link(self, record: LinkRecord) -> int:
        """Place a record that belongs to no one yet; returns its cluster."""
        return self.link_group([record])

    def link_group(self, records: list[LinkRecord]) -> int:
        """Place records that belong together (see `agreeing_groups`) as one: one profile, one decision."""
        self.stats.records += len(records)
        mine = Profile.of(records)
        if len(records) == 1:
            keys: Iterable[tuple[int, Any]] = self.keys_of(records[0])  # one record's keys differ by rule
        else:
            keys = dict.fromkeys(chain.from_iterable(map(self.keys_of, records)))
        scored: list[tuple[float, int, Score]] = []
        for cluster in self._neighbours(keys):
            score = compare(self.policy, mine, self.profiles[cluster])
            self.stats.comparisons += 1
            if score.vetoed_by:
                self.stats.vetoed += 1
                continue
            if score.total >= self._review:
                scored.append((score.total, cluster, score))
        scored.sort(key=lambda item: -item[0])
        strong = [item for item in scored if item[0] >= self._auto]
        first = records[0].id
        if strong:
            _, target, best = strong[0]
            self.profiles[target].absorb(mine)
            self.stats.joined += len(records)
            matched = best.evidence[0].records[1] if best.evidence else None
            decision = RecordDecision(target, "joined", best, matched)
            for _, other, score in strong[1:]:
                self._bridge(self.find(target), other, score, first)
            for _, other, score in scored[len(strong) :]:
                self._propose(self.find(target), other, score, first)
            cluster = self.find(target)
        else:
            cluster = self.new_cluster(mine)
            self.stats.new += 1
            self.stats.joined += len(records) - 1
            decision = RecordDecision(cluster, "new", scored[0][2] if scored else None)
            for _, other, score in scored:
                self._propose(cluster, other, score, first)
        for record in records:
            self.decisions[record.id] = decision
        self._index(keys, cluster)
        return cluster

    def probe(self, record: LinkRecord, cluster: int) -> None:
        """Look again at a record already placed (changed, or a full re-link): may join two people."""
        own = self.find(cluster)
        for other in self._neighbours(self.keys_of(record)):
            own = self.find(own)
            if other == own:
                continue
            pair = (min(own, other), max(own, other))
            if pair in self._compared:
                continue  # already compared person to person in this pass
            self._compared.add(pair)
            score = compare(self.policy, self.profiles[own], self.profiles[other])
            self.stats.comparisons += 1
            if score.vetoed_by:
                self.stats.vetoed += 1
            elif score.total >= self._auto:
                self._bridge(own, other, score, record.id)
            elif score.total >= self._review:
                self._propose(own, other, score, record.id)

    def _bridge(self, a: int, b: int, score: Score, record_id: int | None) -> None:
        """A record reached two people strongly: they join only if, person against person, they agree too."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.kept_apart and self._kept_apart(ra, rb):
            return
        whole = compare(self.policy, self.profiles[ra], self.profiles[rb])
        self.stats.comparisons += 1
        if whole.vetoed_by:
            self.stats.vetoed += 1
        elif whole.total >= self._auto:
            self._union(ra, rb, whole, record_id)
        elif whole.total >= self._review:
            self._propose(ra, rb, whole, record_id)

    def _propose(self, a: int, b: int, score: Score, record_id: int | None) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        pair = (min(ra, rb), max(ra, rb))
        known = self.candidates.get(pair)
        if known is None or known.score.total < score.total:
            self.candidates[pair] = Candidate(pair[0], pair[1], score, record_id)

    def settle(self, max_rounds: int = 5) -> list[Candidate]:
        """Re-score the review pairs person against person until nothing more joins."""
        for _ in range(max_rounds):
            joined = 0
            pending, self.candidates = self.candidates, {}
            for candidate in pending.values():
                ra, rb = self.find(candidate.a), self.find(candidate.b)
                if ra == rb:
                    continue
                if self._may_join(ra, rb) == "kept_apart":
                    continue
                score = compare(self.policy, self.profiles[ra], self.profiles[rb])
                self.stats.comparisons += 1
                if score.vetoed_by:
                    continue
                if score.total >= self._auto:
                    self._union(ra, rb, score, candidate.record_id)
                    joined += 1
                elif score.total >= self._review:
                    self._propose(ra, rb, score, candidate.record_id)
            if not joined:
                break
        return list(self.candidates.values())


@dataclass
class InMemoryResult:
    clusters: list[list[int]]
    review: list[tuple[int, int, float]]
    stats: LinkStats


def ordered(records: Iterable[LinkRecord], policy: MatchingPolicy) -> list[LinkRecord]:
    """Records in the policy's source order (sources it does not name last), each source's in the order given."""
    rank = {source: number for number, source in enumerate(policy.order)}
    unnamed = len(rank)
    by_rank: list[list[LinkRecord]] = [[] for _ in range(unnamed + 1)]
    for record in records:
        by_rank[rank.get(record.source, unnamed)].append(record)
    return [record for records_of_rank in by_rank for record in records_of_rank]


def _consistent(members: list[LinkRecord], names: list[str]) -> bool:
    """Do these records hold at most one value of each of these fields between them?"""
    for name in names:
        seen = None
        for member in members:
            value = member.fields.get(name)
            if value is None or value == "":
                continue
            if seen is None:
                seen = value
            elif value != seen:
                return False
    return True


def agreeing_groups(records: Iterable[LinkRecord], policy: MatchingPolicy) -> list[list[LinkRecord]]:
    """Records that share every field named in `policy.group_by` and contradict each other nowhere are
    linked together, as one: a role's records in the
    systems that share its number (the 学号's student, CAS and billing rows). "Contradict" means two values of a
    field whose comparison weighs a disagreement (national ID, birth date, gender). Everything else stays alone.
    Groups come in the policy's source order."""
    if not policy.group_by:
        return [[record] for record in ordered(records, policy)]
    singles = [c.field for c in policy.comparisons if c.kind in ("exact", "date") and (c.disagree < 0 or c.veto)]
    groups: dict[tuple[Any, ...], list[LinkRecord]] = {}
    alone: list[list[LinkRecord]] = []
    group_by = policy.group_by
    for record in ordered(records, policy):
        key = tuple(map(record.fields.get, group_by))
        if None in key or "" in key:
            alone.append([record])
        else:
            members = groups.get(key)
            if members is None:
                groups[key] = [record]
            else:
                members.append(record)
    result: list[list[LinkRecord]] = []
    for members in groups.values():
        if len(members) == 1 or _consistent(members, singles):
            result.append(members)
        else:
            result.extend([member] for member in members)
    return result + alone


def link_in_memory(records: Iterable[LinkRecord], policy: MatchingPolicy) -> InMemoryResult:
    """Link records among themselves (no database): the engine as the benchmarks and FEBRL use it, under the same
    conditions as `idbroker link` (the cycle collector paused)."""
    linker = Linker(policy)
    with cycle_collector_paused():
        for group in agreeing_groups(records, policy):
            linker.link_group(group)
        candidates = linker.settle()
    clusters: dict[int, list[int]] = {}
    for record_id, decision in linker.decisions.items():
        clusters.setdefault(linker.find(decision.cluster), []).append(record_id)
    review = []
    for c in candidates:
        a, b = linker.profiles[linker.find(c.a)], linker.profiles[linker.find(c.b)]
        review.append((a.record_ids[0], b.record_ids[0], c.score.total))
    return InMemoryResult(list(clusters.values()), review, linker.stats)
