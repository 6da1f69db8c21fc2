"""Pseudonyms: one per person per sector, `HMAC-SHA256(versioned key, sector ‖ 0x00 ‖ internal ID)`.

The value is stored with the key version, so the broker alone can reverse it and it never changes, even
when the key is rotated later. It is base32 (lowercase, 32 characters: 160 bits), so it fits OIDC's
`sub` (≤ 255 ASCII) and SAML's case-insensitive pairwise-id grammar.

Merges: a merged person keeps answering to the pseudonyms of all its records. The survivor's pseudonym is
canonical and an absorbed one resolves to the survivor; when an app only ever knew the absorbed person's
pseudonym, that one stays canonical for the app, so a merge never changes the `sub` an app already holds.
Rows are never re-pointed, so an un-merge gives each person its own pseudonym back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from idbroker.config import Settings
from idbroker.db import DriverStatement
from idbroker.directory.models import Person
from idbroker.directory.queries import PersonNotFound, resolve_person
from idbroker.keys.keyring import PSEUDONYM, keyring
from idbroker.release.models import Pseudonym

KEY_VERSION = "k1"  # of every pseudonym made before the first `idbroker keys rotate pseudonym`
PSEUDONYM_LENGTH = 32


class UnknownPseudonym(LookupError):
    pass


def pseudonym_key(settings: Settings, version: str | None = None) -> bytes:
    """The HMAC key of a version (default: the current one); k1 is derived from the encryption key's k1."""
    return keyring(settings, PSEUDONYM).key(version)


def compute(key: bytes, sector: str, person_id: str) -> str:
    mac = hmac.new(key, sector.encode() + b"\x00" + person_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:20]).decode("ascii").lower()


class Pseudonyms:
    """Pseudonyms of one broker (one key): issue, look up and reverse, in the caller's transaction."""

    def __init__(self, settings: Settings) -> None:
        ring = keyring(settings, PSEUDONYM)  # new pseudonyms use the current version; stored ones never change
        self.version, self.key = ring.current, ring.key()

    def own(self, session: Session, sector: str, person_id: str) -> str:
        """The pseudonym of exactly this person ID (merged or not), stored on first use."""
        row = _row(session, sector, person_id)
        if row is not None:
            return row.value
        value = compute(self.key, sector, person_id)
        try:
            with session.begin_nested():
                session.add(Pseudonym(sector=sector, value=value, person_id=person_id, key_version=self.version))
        except IntegrityError:  # another transaction stored it first: the same value
            row = _row(session, sector, person_id)
            if row is None:
                raise
            return row.value
        return value

    def current_and_canonical(self, session: Session, sector: str, person_id: str) -> tuple[str, str | None]:
        """The person `person_id` stands for today and, when already stored, what the sector calls them
        (None: call `canonical`, which may store one). One query for the usual case, a person who is not
        merged and already has a pseudonym here; `PersonNotFound` for an unknown ID."""
        rows, _ = _PERSON_AND_OWN.run(session, {"sector": sector, "person_id": person_id})
        if rows and rows[0][1] != "merged":
            return rows[0][0], rows[0][2]
        person = resolve_person(session, person_id)
        return person.id, None

    def canonical(self, session: Session, sector: str, person_id: str) -> str:
        """What the sector calls this person today (see the module docstring for merges)."""
        person = resolve_person(session, person_id)
        row = _row(session, sector, person.id)
        if row is not None:
            return row.value
        absorbed = absorbed_ids(session, person.id)
        if absorbed:
            known = session.scalars(
                select(Pseudonym)
                .where(Pseudonym.sector == sector, Pseudonym.person_id.in_(absorbed))  # type: ignore[attr-defined]
                .order_by(Pseudonym.created_at, Pseudonym.id)  # type: ignore[arg-type]
                .limit(1)
            ).first()
            if known is not None:
                return known.value
        return self.own(session, sector, person.id)


def reverse(session: Session, sector: str, value: str) -> Person:
    """The person a pseudonym stands for today (the survivor, for an absorbed person's pseudonym)."""
    if "\x00" in value:  # never a pseudonym, and PostgreSQL refuses NUL in text
        raise UnknownPseudonym(value)
    row = session.scalars(select(Pseudonym).where(Pseudonym.sector == sector, Pseudonym.value == value)).first()
    if row is None:
        raise UnknownPseudonym(value)
    return resolve_person(session, row.person_id)


def reverse_many(session: Session, sector: str, values: Iterable[str]) -> dict[str, str]:
    """pseudonym → the ID of the person it stands for today, for each known value (unknown ones are left out)."""
    wanted = [value for value in dict.fromkeys(values) if "\x00" not in value]  # NUL: as in `reverse`
    found: dict[str, str] = {}
    connection = session.connection()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        if len(chunk) == 1:  # the REST API's one-person route: a fixed statement, run on the driver
            rows: Iterable[Any] = _REVERSE_ONE.run(session, {"sector": sector, "value": chunk[0]})[0]
        else:
            rows = connection.execute(_REVERSE, {"sector": sector, "values": chunk})
        for value, person_id, state in rows:
            if state != "merged":
                found[value] = person_id
                continue
            try:
                found[value] = resolve_person(session, person_id).id
            except PersonNotFound:
                continue
    return found


def known_people(session: Session, sector: str, person_ids: Iterable[str]) -> set[str]:
    """Which of these person IDs have ever been given a pseudonym in the sector."""
    ids = list(dict.fromkeys(person_ids))
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Pseudonym.person_id).where(Pseudonym.sector == sector, Pseudonym.person_id.in_(ids))  # type: ignore[attr-defined]
        )
    )


def absorbed_ids(session: Session, person_id: str) -> list[str]:
    """Every person ID merged (directly or through others) into this one."""
    found: list[str] = []
    frontier = [person_id]
    while frontier:
        children = list(
            session.scalars(
                select(Person.id).where(Person.merged_into.in_(frontier), Person.state == "merged")  # type: ignore[union-attr]
            )
        )
        children = [child for child in children if child not in found and child != person_id]
        found.extend(children)
        frontier = children
    return found


_PERSON = Person.__table__.c  # type: ignore[attr-defined]
_PSEUDONYM = Pseudonym.__table__.c  # type: ignore[attr-defined]
_PERSON_AND_OWN = DriverStatement(
    select(_PERSON.id, _PERSON.state, _PSEUDONYM.value)
    .select_from(Person.__table__)  # type: ignore[attr-defined]
    .outerjoin(
        Pseudonym.__table__,  # type: ignore[attr-defined]
        and_(_PSEUDONYM.person_id == _PERSON.id, _PSEUDONYM.sector == bindparam("sector")),
    )
    .where(_PERSON.id == bindparam("person_id"))
)


_REVERSE_FROM = (
    select(_PSEUDONYM.value, _PSEUDONYM.person_id, _PERSON.state)
    .select_from(Pseudonym.__table__)  # type: ignore[attr-defined]
    .join(Person.__table__, _PERSON.id == _PSEUDONYM.person_id)  # type: ignore[attr-defined]
    .where(_PSEUDONYM.sector == bindparam("sector"))
)
_REVERSE = _REVERSE_FROM.where(_PSEUDONYM.value.in_(bindparam("values", expanding=True)))
_REVERSE_ONE = DriverStatement(_REVERSE_FROM.where(_PSEUDONYM.value == bindparam("value")))


def _row(session: Session, sector: str, person_id: str) -> Pseudonym | None:
    return session.scalars(
        select(Pseudonym).where(Pseudonym.sector == sector, Pseudonym.person_id == person_id)
    ).first()
