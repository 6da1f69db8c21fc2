"""What each release-policy claim means in the directory, and which OIDC scope asks for it.

`person_claims` reads the person's current source records and returns the values of the claims it is
asked for — and only those. It is called by the release gate alone (`idbroker.release.gate`), after the
policy check; nothing else turns a person into claim values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session

from idbroker.directory.models import SourceRecord
from idbroker.directory.queries import records_of

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


def claims_for_scopes(scopes: Iterable[str]) -> frozenset[str]:
    return frozenset(claim for scope in scopes for claim in SCOPE_CLAIMS.get(scope, ()))


def output_names(claims: Iterable[str]) -> set[str]:
    return {name for claim in claims for name in OUTPUT_NAMES[claim]}


def person_claims(session: Session, person_id: str, wanted: Iterable[str]) -> dict[str, Any]:
    """Values of the `wanted` policy claims (except pseudonym and nickname, made by the gate); a claim the
    directory has no value for is left out."""
    wanted = set(wanted) - {"pseudonym", "nickname"}
    if not wanted:
        return {}
    records = _current(records_of(session, person_id))
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


def _current(records: list[SourceRecord]) -> list[SourceRecord]:
    """Records still listed by their source, newest first (the whole history when none is)."""
    present = [r for r in records if r.present] or records
    return sorted(present, key=lambda r: (r.first_seen, r.key), reverse=True)


def _first(values: Iterable[str | None]) -> str | None:
    return next((value for value in values if value), None)


def _put(values: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        values[name] = value
