"""What each release-policy claim means in the directory, and which OIDC scope asks for it.

`person_claims` reads the person's current source records and returns the values of the claims it is
asked for — and only those. It is called by the release gate alone (`idbroker.release.gate`), after the
policy check; nothing else turns a person into claim values.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlmodel import Session

from idbroker.db import DriverStatement
from idbroker.directory.models import SourceRecord

# policy claim → the OIDC/JSON claim names it releases (OIDC Core §5.1 names where one exists)
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "pseudonym": ("sub",),
    "nickname": ("nickname",),
    "name": ("name",),
    "affiliation": ("affiliation",),
    "degree_level": ("degree_level",),
    "department": ("department",),
    "student_number": ("student_number",),
    "staff_number": ("staff_number",),
    "phone": ("phone_number", "phone_number_verified"),
    "email": ("email", "email_verified"),
}

# OIDC scope → the policy claims it asks for (OIDC Core §5.4, plus `campus` for the campus attributes)
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("pseudonym",),
    "profile": ("name", "nickname"),
    "email": ("email",),
    "phone": ("phone",),
    "campus": ("affiliation", "degree_level", "department", "student_number", "staff_number"),
}
SCOPES_SUPPORTED = tuple(SCOPE_CLAIMS)
STAFF_SOURCES = ("hr",)
STUDENT_SOURCES = ("student",)
LEVEL_ORDER = {"bachelor": 1, "master": 2, "doctoral": 3}


class ClaimRecord(NamedTuple):
    """The columns of a source record a claim reads (no ORM object, no JSON column, for a release)."""

    source: str
    key: str
    present: bool
    first_seen: datetime
    name: str | None
    affiliation: str | None
    level: str | None
    org: str | None
    email: str | None
    phone: str | None


_RECORD = SourceRecord.__table__.c  # type: ignore[attr-defined]
RECORD_COLUMNS = tuple(_RECORD[name] for name in ClaimRecord._fields)
_RECORDS = DriverStatement(
    select(*RECORD_COLUMNS).where(_RECORD.person_id == bindparam("person_id")).order_by(_RECORD.source, _RECORD.key)
)


def claims_for_scopes(scopes: Iterable[str]) -> frozenset[str]:
    return frozenset(claim for scope in scopes for claim in SCOPE_CLAIMS.get(scope, ()))


def output_names(claims: Iterable[str]) -> set[str]:
    return {name for claim in claims for name in OUTPUT_NAMES[claim]}


def person_claims(
    session: Session, person_id: str, wanted: Iterable[str], *, records: list[ClaimRecord] | None = None
) -> dict[str, Any]:
    """Values of the `wanted` policy claims (except pseudonym and nickname, made by the gate); a claim the
    directory has no value for is left out. `records`: the person's records, when the gate read them already."""
    wanted = set(wanted) - {"pseudonym", "nickname"}
    if not wanted:
        return {}
    if records is None:
        rows, _ = _RECORDS.run(session, {"person_id": person_id})
        records = [ClaimRecord(*row) for row in rows]
    records = _current(records)
    values: dict[str, Any] = {}
    students = [r for r in records if r.source in STUDENT_SOURCES]
    staff = [r for r in records if r.source in STAFF_SOURCES]
    if "name" in wanted:
        _put(values, "name", _first(r.name for r in [*staff, *students, *records]))
    if "affiliation" in wanted:
        _put(values, "affiliation", _first(r.affiliation for r in [*staff, *students, *records]))
    if "degree_level" in wanted:
        levels = [r.level for r in students if r.level]
        _put(values, "degree_level", max(levels, key=lambda level: LEVEL_ORDER.get(level, 0)) if levels else None)
    if "department" in wanted:
        _put(values, "department", _first(r.org for r in [*staff, *students]))
    if "student_number" in wanted:
        _put(values, "student_number", _first(r.key for r in students))
    if "staff_number" in wanted:
        _put(values, "staff_number", _first(r.key for r in staff))
    if "email" in wanted:
        email = _first(r.email for r in [*staff, *students, *records])
        if email:
            values.update(email=email, email_verified=False)
    if "phone" in wanted:
        phone = _first(r.phone for r in [*staff, *students, *records])
        if phone:
            values.update(phone_number=phone, phone_number_verified=False)
    return values


def _current(records: list[ClaimRecord]) -> list[ClaimRecord]:
    """Records still listed by their source, newest first (the whole history when none is)."""
    present = [r for r in records if r.present] or records
    return sorted(present, key=lambda r: (r.first_seen, r.key), reverse=True)


def _first(values: Iterable[str | None]) -> str | None:
    return next((value for value in values if value), None)


def _put(values: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        values[name] = value
