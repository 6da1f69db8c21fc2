"""The desired member state, from the directory: what each person's member should look like now.

- name: from the first source of the policy's `display_name.sources` that has one (a name in Chinese
  characters preferred over a pinyin one), as the freshest present record of that source spells it;
- mobile and email: the person's primary contacts, as the contacts engine chose them (verified first;
  `idbroker.contacts.primary`); mobiles only (a fixed line cannot be a member's mobile), written as WeChat
  Work writes them (`+86 13800000000`);
- departments: each active role (the affiliation of a present record of a role source whose status is
  active) placed by its 学院/部门 through `policies/wecom.yaml`;
- active: whether the person holds any active role at all (a member is enabled while they do).
People with no present record at all have no desired state: their member only waits to be disabled.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import phonenumbers
from sqlalchemy import select
from sqlmodel import Session

from idbroker.contacts.models import PrimaryChoice
from idbroker.directory.models import SourceRecord
from idbroker.normalize import InvalidValue, normalize_phone
from idbroker.sources.mapping import SourceMapping, load_mapping
from idbroker.wecom.policy import ROOT_DEPARTMENT, WeComPolicy

RECORDS = SourceRecord.__table__  # type: ignore[attr-defined]
CHOICES = PrimaryChoice.__table__  # type: ignore[attr-defined]
_HAN = re.compile(r"[\u3400-\u9fff]")
CHUNK = 5000
MAX_NAME = 64
EMAIL_BYTES = (6, 64)


@dataclass(frozen=True, slots=True)
class Role:
    role: str  # the record's affiliation (student, staff, …), or its source when it has none
    org: str | None  # 学院 / 部门


@dataclass(frozen=True, slots=True)
class Desired:
    person_id: str
    name: str | None
    mobile: str | None  # "+86 13800000000"
    email: str | None
    departments: tuple[int, ...]
    roles: tuple[Role, ...]  # the active ones

    @property
    def active(self) -> bool:
        return bool(self.roles)


@dataclass(frozen=True, slots=True)
class _Record:
    source: str
    name: str | None
    org: str | None
    affiliation: str | None
    status: str | None
    last_seen: datetime


def wecom_mobile(e164: str | None) -> str | None:
    """A mobile number as WeChat Work writes it ("+86 13800000000"); None for anything but a mobile."""
    if not e164:
        return None
    try:
        phone = normalize_phone(e164)
    except InvalidValue:
        return None
    if phone is None or phone.kind != "mobile":
        return None
    if phone.e164.startswith("+86"):
        return f"+86 {phone.e164[3:]}"
    parsed = phonenumbers.parse(phone.e164)
    return f"+{parsed.country_code} {phonenumbers.national_significant_number(parsed)}"


def wecom_email(email: str | None) -> str | None:
    if not email:
        return None
    size = len(email.encode())
    return email if EMAIL_BYTES[0] <= size <= EMAIL_BYTES[1] else None


def _display_name(records: list[_Record], policy: WeComPolicy) -> str | None:
    order = {source: rank for rank, source in enumerate(policy.display_name.sources)}
    named = sorted(
        (r for r in records if r.name and r.name.strip() and r.source in order),
        key=lambda r: (order[r.source], -r.last_seen.timestamp()),
    )
    if policy.display_name.prefer_characters:
        in_characters = [r for r in named if _HAN.search(r.name or "")]
        named = in_characters or named
    if not named:
        return None
    return " ".join((named[0].name or "").split())[:MAX_NAME]


def _primaries(session: Session, people: list[str]) -> dict[str, dict[str, str | None]]:
    """The primary phone and email the contacts engine chose (`idbroker.contacts.primary`), read in bulk:
    the same rows `primary_contacts(session, person_id)` reads one person at a time."""
    found: dict[str, dict[str, str | None]] = defaultdict(dict)
    for start in range(0, len(people), CHUNK):
        rows = session.execute(
            select(CHOICES.c.person_id, CHOICES.c.kind, CHOICES.c.value).where(
                CHOICES.c.person_id.in_(people[start : start + CHUNK])
            )
        )
        for person_id, kind, value in rows:
            found[person_id][kind] = value
    return found


class DesiredState:
    """Computes desired members; `role_mappings` are read once per run."""

    def __init__(self, policy: WeComPolicy, policies_dir: Path) -> None:
        self.policy = policy
        self.mappings: dict[str, SourceMapping] = {s: load_mapping(policies_dir, s) for s in policy.role_sources}

    def _roles(self, records: list[_Record]) -> tuple[Role, ...]:
        roles: dict[Role, None] = {}
        for record in records:
            mapping = self.mappings.get(record.source)
            if mapping is not None and mapping.is_active(record.status):
                roles[Role(record.affiliation or record.source, record.org)] = None
        return tuple(roles)

    def _departments(self, roles: tuple[Role, ...]) -> tuple[int, ...]:
        placed = [self.policy.department_of(role.role, role.org) for role in roles]
        departments = tuple(dict.fromkeys(d for d in placed if d is not None))
        return departments[:20] or ((ROOT_DEPARTMENT,) if roles else ())

    def compute(self, session: Session, people: Iterable[str] | None = None) -> dict[str, Desired]:
        """Desired state of every person with a present record (or of `people` only)."""
        by_person = _present_records(session, people)
        primaries = _primaries(session, sorted(by_person))
        result: dict[str, Desired] = {}
        for person_id, records in by_person.items():
            primary = primaries.get(person_id, {})
            mobile, email = wecom_mobile(primary.get("phone")), wecom_email(primary.get("email"))
            roles = self._roles(records)
            result[person_id] = Desired(
                person_id=person_id,
                name=_display_name(records, self.policy),
                mobile=mobile,
                email=email,
                departments=self._departments(roles),
                roles=roles,
            )
        return result


def _present_records(session: Session, people: Iterable[str] | None) -> dict[str, list[_Record]]:
    columns = (
        RECORDS.c.person_id,
        RECORDS.c.source,
        RECORDS.c.name,
        RECORDS.c.org,
        RECORDS.c.affiliation,
        RECORDS.c.status,
        RECORDS.c.last_seen,
    )
    base = select(*columns).where(RECORDS.c.present.is_(True), RECORDS.c.person_id.is_not(None))
    if people is None:
        statements = [base]
    else:
        wanted = sorted(set(people))
        statements = [base.where(RECORDS.c.person_id.in_(wanted[i : i + CHUNK])) for i in range(0, len(wanted), CHUNK)]
    by_person: dict[str, list[_Record]] = defaultdict(list)
    for statement in statements:
        for row in session.execute(statement):
            by_person[row[0]].append(_Record(*row[1:]))
    return by_person
