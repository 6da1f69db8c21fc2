"""`policies/contacts.yaml`: the primary-choice rules, code lifetimes, sending limits and delivery retries."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from idbroker.config import Settings
from idbroker.policy import load_policy

M = TypeVar("M", bound=BaseModel)
RULES = ("verified_by_person", "confirmed_by_helpdesk", "still_listed", "freshest", "source_order")
Rule = Literal["verified_by_person", "confirmed_by_helpdesk", "still_listed", "freshest", "source_order"]
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"(\d+)\s*/\s*(second|minute|hour|day)")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limit(Strict):
    count: int
    seconds: int

    def __str__(self) -> str:
        unit = next(name for name, size in UNITS.items() if size == self.seconds)
        return f"{self.count}/{unit}"


def _limits(values: list[str]) -> list[Limit]:
    limits = []
    for value in values:
        match = _LIMIT.fullmatch(str(value).strip())
        if match is None:
            raise ValueError(f"{value!r} is not COUNT/second|minute|hour|day")
        limits.append(Limit(count=int(match.group(1)), seconds=UNITS[match.group(2)]))
    return limits


class Primary(Strict):
    rules: list[Rule] = Field(min_length=1)
    source_order: list[str] = Field(min_length=1)
    phone_types: list[Literal["mobile", "fixed_line", "other"]] = ["mobile"]
    shared_needs_verification: bool = True

    @field_validator("rules")
    @classmethod
    def _distinct(cls, rules: list[str]) -> list[str]:
        if len(set(rules)) != len(rules):
            raise ValueError("a rule is listed twice")
        return rules


class Verification(Strict):
    code_digits: int = Field(default=6, ge=6, le=10)
    code_minutes: int = Field(default=10, ge=1, le=10)
    wrong_tries: int = Field(default=5, ge=1, le=10)
    link_minutes: int = Field(default=30, ge=1, le=1440)
    failures_per_day: int = Field(default=20, ge=1, le=100)
    sms_regions: list[str] = ["CN"]


class Limits(Strict):
    per_target: list[Limit]
    per_person: list[Limit]
    per_ip: list[Limit]
    per_block: list[Limit] = []
    block_digits: int = Field(default=3, ge=1, le=6)

    @field_validator("per_target", "per_person", "per_ip", "per_block", mode="before")
    @classmethod
    def _parse(cls, values: object) -> object:
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            return _limits(values)
        return values


class UpdateLinkPolicy(Strict):
    minutes: int = Field(default=30, ge=1, le=1440)


class DeliveryPolicy(Strict):
    attempts: int = Field(default=5, ge=1, le=20)
    backoff_seconds: float = Field(default=10, gt=0)
    backoff_cap_seconds: float = Field(default=900, gt=0)
    lease_seconds: float = Field(default=60, gt=0)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed try."""
        return float(min(self.backoff_cap_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1)))


class ContactsPolicy(Strict):
    primary: Primary
    verification: Verification = Verification()
    limits: Limits
    update_link: UpdateLinkPolicy = UpdateLinkPolicy()
    delivery: DeliveryPolicy = DeliveryPolicy()


@lru_cache(maxsize=16)
def _load_at(path: Path, mtime: float, model: type[M]) -> M:
    return load_policy(path, model)


def policy_file(settings: Settings, name: str, model: type[M]) -> M:
    """`<policies_dir>/<name>` validated as `model`, read again only when the file changes."""
    path = Path(settings.policies_dir) / name
    return _load_at(path, path.stat().st_mtime if path.exists() else 0.0, model)


def contacts_policy(settings: Settings) -> ContactsPolicy:
    return policy_file(settings, "contacts.yaml", ContactsPolicy)
