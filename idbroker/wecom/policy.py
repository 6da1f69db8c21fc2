"""`policies/wecom.yaml`: who is a member, under which name, in which departments, and when leavers go.

Validated at load (`load_policy`), every mistake reported as `policies/wecom.yaml:LINE: what`.
Department ids are the operator's: WeChat Work keeps the id a department was created with, so the policy
names them and the sync creates them (parents first) before any member is placed in them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from idbroker.policy import load_policy

ROOT_DEPARTMENT = 1
MAX_DEPARTMENT_LEVELS = 15
MAX_MEMBER_DEPARTMENTS = 20
ANY_ORG = "*"
_BAD_DEPARTMENT_CHARS = re.compile(r'[\\:*?"<>|]')


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(gt=ROOT_DEPARTMENT, lt=2**32)
    name: str
    parent: int = ROOT_DEPARTMENT
    order: int = 0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not 1 <= len(value) <= 64:
            raise ValueError("a department name has 1 to 64 characters")
        if _BAD_DEPARTMENT_CHARS.search(value):
            raise ValueError('a department name cannot hold any of \\ : * ? " < > |')
        return value


class DisplayName(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[str] = Field(min_length=1)  # the name comes from the first of these sources that has one
    prefer_characters: bool = True  # a name in Chinese characters beats a pinyin one from an earlier source


class WeComPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: DisplayName
    role_sources: list[str] = Field(min_length=1)
    leaver_grace_days: int = Field(ge=0)
    batch_threshold: int = Field(default=1000, ge=1)
    invite_on_create: bool = False
    departments: list[Department] = Field(default_factory=list)
    placement: dict[str, dict[str, int]]

    @field_validator("departments")
    @classmethod
    def _tree(cls, departments: list[Department]) -> list[Department]:
        known: dict[int, Department] = {}
        for department in departments:
            if department.id in known:
                raise ValueError(f"department {department.id} is listed twice")
            if department.parent != ROOT_DEPARTMENT and department.parent not in known:
                raise ValueError(
                    f"department {department.id}: its parent {department.parent} must be listed before it "
                    "(parents are created first)"
                )
            known[department.id] = department
            if _depth(department, known) > MAX_DEPARTMENT_LEVELS:
                raise ValueError(f"department {department.id} is deeper than {MAX_DEPARTMENT_LEVELS} levels")
        if len({(d.parent, d.name) for d in departments}) != len(departments):
            raise ValueError("two departments under one parent have the same name")
        return departments

    @field_validator("placement")
    @classmethod
    def _placement(cls, placement: dict[str, dict[str, int]], info: ValidationInfo) -> dict[str, dict[str, int]]:
        known = {d.id for d in info.data.get("departments", [])}
        for role, orgs in placement.items():
            if ANY_ORG not in orgs:
                raise ValueError(f"placement.{role} needs a `{ANY_ORG!r}` entry for any other 学院/部门")
            for org, department_id in orgs.items():
                if department_id != ROOT_DEPARTMENT and department_id not in known:
                    raise ValueError(f"placement.{role}.{org}: department {department_id} is not listed")
        return placement

    def department_of(self, role: str, org: str | None) -> int | None:
        """Where a role held in a 学院/部门 is placed; None for a role the policy does not place."""
        orgs = self.placement.get(role)
        if orgs is None:
            return None
        return orgs.get(org or ANY_ORG, orgs[ANY_ORG])


def _depth(department: Department, known: dict[int, Department]) -> int:
    depth, parent = 1, department.parent
    while parent != ROOT_DEPARTMENT:
        depth += 1
        parent = known[parent].parent
    return depth


def policy_path(policies_dir: Path) -> Path:
    return Path(policies_dir) / "wecom.yaml"


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> WeComPolicy:
    return load_policy(path, WeComPolicy)


def load_wecom_policy(policies_dir: Path) -> WeComPolicy:
    path = policy_path(policies_dir)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _load(path, mtime)
