"""Matching rules as configuration (`policies/matching.yaml`): blocking keys, comparisons, weights, thresholds.

The engine knows no field by name: a policy says which fields block, how each is compared and what an
agreement or a disagreement weighs. Scores are sums of weights (log-odds points); at or above
`auto_merge` two records are one person, between `review` and `auto_merge` a human decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from idbroker.policy import load_policy


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(Strict):
    auto_merge: float
    review: float

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.review > self.auto_merge:
            raise ValueError("review must not be above auto_merge")
        return self


class FuzzyLevel(Strict):
    min: float = Field(ge=0, le=1)
    weight: float


class Comparison(Strict):
    """How one field (or a name's two keys) is compared, and what each outcome weighs.

    kinds: `exact` (equal values), `name` (characters, then pinyin, then fuzzy), `fuzzy` (Jaro–Winkler levels
    on strings), `date` (equal, close — one digit or day/month swapped — or different).
    """

    name: str
    kind: Literal["exact", "name", "fuzzy", "date"]
    field: str  # for `name`: a field of (characters key, pinyin key) pairs
    agree: float = 0
    disagree: float = 0
    veto: bool = False  # two different values forbid a merge whatever else agrees
    pinyin: float = 0  # `name`: same pinyin, different characters (homophones: weak evidence)
    fuzzy: float = 0  # `name`: similar spelling (one character off in a long name, a romanisation typo)
    close: float = 0  # `date`: one digit off or day and month swapped
    levels: list[FuzzyLevel] = Field(default_factory=list)  # `fuzzy`: best level first

    @model_validator(mode="after")
    def _consistent(self) -> Comparison:
        if self.kind == "fuzzy" and not self.levels:
            raise ValueError("a `fuzzy` comparison needs `levels`")
        if self.veto and self.kind != "exact":
            raise ValueError("only an `exact` comparison can veto")
        return self


class MatchingPolicy(Strict):
    thresholds: Thresholds
    blocking: list[list[str]] = Field(min_length=1)
    comparisons: list[Comparison] = Field(min_length=1)
    max_block_size: int = Field(default=50, ge=2)
    # Sources linked first: the records that carry the strongest evidence start the people.
    order: list[str] = Field(default_factory=list)
    # Records equal on all these fields (and contradicting nowhere) are linked together, as one.
    group_by: list[str] = Field(default_factory=list)
    # When true, a person holds at most one record of each source (two-file linkage such as FEBRL).
    exclusive_sources: bool = False
    # Largest weight a single comparison may contribute alone towards auto_merge is not limited here:
    # tests hold the campus policy to its rules (a shared phone alone, or name and birth year, never merge).

    @model_validator(mode="after")
    def _names_unique(self) -> MatchingPolicy:
        names = [c.name for c in self.comparisons]
        if len(names) != len(set(names)):
            raise ValueError("comparison names must be unique")
        return self

    def fields(self) -> set[str]:
        used = {f for rule in self.blocking for f in rule} | set(self.group_by)
        for c in self.comparisons:
            used.add(c.field)
        return used


def load_matching_policy(path: Path) -> MatchingPolicy:
    return load_policy(path, MatchingPolicy)
