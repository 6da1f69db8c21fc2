"""Comparing two profiles field by field: each comparison gives a level, a weight and its records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from rapidfuzz.distance import JaroWinkler

from idbroker.linking.policy import Comparison, MatchingPolicy
from idbroker.linking.records import Profile
from idbroker.normalize.names import key_similarity


@dataclass(slots=True)
class Evidence:
    comparison: str
    level: str  # agree | pinyin | fuzzy | close | disagree | level-N
    weight: float
    records: tuple[int, int]  # the record on each side that gave the compared values

    def as_json(self) -> list[Any]:
        return [self.comparison, self.level, self.weight, list(self.records)]


@dataclass(slots=True)
class Score:
    total: float
    evidence: list[Evidence]
    vetoed_by: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "score": round(self.total, 3),
            "evidence": [e.as_json() for e in self.evidence],
        }
        if self.vetoed_by:
            data["veto"] = self.vetoed_by
        return data


def _first_pair(a: dict[Any, int], b: dict[Any, int]) -> tuple[int, int]:
    return next(iter(a.values())), next(iter(b.values()))


def _exact(c: Comparison, a: dict[Any, int], b: dict[Any, int]) -> Evidence:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    for value in small:
        if value in large:
            return Evidence(c.name, "agree", c.agree, (a[value], b[value]))
    return Evidence(c.name, "disagree", c.disagree, _first_pair(a, b))


NAME_LEVELS = ("exact", "pinyin", "fuzzy", "different")


def _name(c: Comparison, a: dict[Any, int], b: dict[Any, int]) -> Evidence:
    """Values are (characters key, pinyin key) pairs; the best level over all pairs counts."""
    best, pair = len(NAME_LEVELS) - 1, _first_pair(a, b)
    for value_a, rid_a in a.items():
        if value_a in b:
            return Evidence(c.name, "agree", c.agree, (rid_a, b[value_a]))
    for (key_a, pinyin_a), rid_a in a.items():
        for (key_b, pinyin_b), rid_b in b.items():
            level = NAME_LEVELS.index(key_similarity(key_a, pinyin_a, key_b, pinyin_b))
            if level < best:
                best, pair = level, (rid_a, rid_b)
    name = NAME_LEVELS[best]
    weight = {"exact": c.agree, "pinyin": c.pinyin, "fuzzy": c.fuzzy, "different": c.disagree}[name]
    return Evidence(c.name, "agree" if name == "exact" else ("disagree" if name == "different" else name), weight, pair)


def _fuzzy(c: Comparison, a: dict[Any, int], b: dict[Any, int]) -> Evidence:
    best = 0.0
    pair = _first_pair(a, b)
    for value_a, rid_a in a.items():
        for value_b, rid_b in b.items():
            sim = 1.0 if value_a == value_b else JaroWinkler.similarity(str(value_a), str(value_b))
            if sim > best:
                best, pair = sim, (rid_a, rid_b)
    for number, level in enumerate(c.levels):
        if best >= level.min:
            return Evidence(c.name, f"level-{number}", level.weight, pair)
    return Evidence(c.name, "disagree", c.disagree, pair)


def dates_close(a: Any, b: Any) -> bool:
    """One digit off, or day and month swapped: the usual typing slips in a birth date."""
    sa = a.strftime("%Y%m%d") if isinstance(a, date) else str(a)
    sb = b.strftime("%Y%m%d") if isinstance(b, date) else str(b)
    if len(sa) != len(sb):
        return False
    if sum(x != y for x, y in zip(sa, sb, strict=True)) == 1:
        return True
    return len(sa) == 8 and sa[:4] == sb[:4] and sa[4:6] == sb[6:8] and sa[6:8] == sb[4:6]


def _date(c: Comparison, a: dict[Any, int], b: dict[Any, int]) -> Evidence:
    for value, rid in a.items():
        if value in b:
            return Evidence(c.name, "agree", c.agree, (rid, b[value]))
    for value_a, rid_a in a.items():
        for value_b, rid_b in b.items():
            if dates_close(value_a, value_b):
                return Evidence(c.name, "close", c.close, (rid_a, rid_b))
    return Evidence(c.name, "disagree", c.disagree, _first_pair(a, b))


KINDS = {"exact": _exact, "name": _name, "date": _date, "fuzzy": _fuzzy}


def compare(policy: MatchingPolicy, a: Profile, b: Profile) -> Score:
    """Score two profiles; a comparison with a missing side gives no evidence either way."""
    total = 0.0
    evidence: list[Evidence] = []
    vetoed_by: str | None = None
    values_a, values_b = a.values, b.values
    for c in policy.comparisons:
        va = values_a.get(c.field)
        if not va:
            continue
        vb = values_b.get(c.field)
        if not vb:
            continue
        found = KINDS[c.kind](c, va, vb)
        if found.weight:
            total += found.weight
            evidence.append(found)
            if c.veto and found.level == "disagree":
                vetoed_by = c.name
        elif c.veto and found.level == "disagree":
            vetoed_by = c.name
            evidence.append(found)
    if policy.exclusive_sources and a.sources & b.sources:
        vetoed_by = vetoed_by or "same_source"
    return Score(total, evidence, vetoed_by)


def vetoed(policy: MatchingPolicy, a: Profile, b: Profile) -> str | None:
    """The first veto between two profiles, checked cheaply (used before joining two people)."""
    for c in policy.comparisons:
        if c.veto:
            va, vb = a.values.get(c.field), b.values.get(c.field)
            if va and vb and not (va.keys() & vb.keys()):
                return c.name
    if policy.exclusive_sources and a.sources & b.sources:
        return "same_source"
    return None
