"""Finding a person at the helpdesk by whatever the caller gives: any number, a phone, an email or a name.

Names match through the stored normalised keys (`idbroker.normalize`): the simplified-character key (张帅
finds 張帥) and the pinyin key (张帅 finds "Zhang Shuai" and "SHUAI ZHANG", and homophones such as 章帅,
ranked after exact matches). Phones and emails are normalised first, so `138-0000-1111` finds
`+8613800001111`. Results show masked values only; the full record opens with a reason (`record.py`).
Every search is recorded (`helpdesk.search`, with the kind of query and the number of results, never the
query itself, which may be a phone number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from idbroker.audit.chain import append
from idbroker.contacts.mask import mask_email, mask_number, mask_phone
from idbroker.contacts.models import ContactPoint
from idbroker.directory.ids import PERSON_ID_LENGTH
from idbroker.directory.models import Person, SourceRecord
from idbroker.directory.queries import PersonNotFound, resolve_person
from idbroker.helpdesk.errors import HelpdeskRefused
from idbroker.normalize import InvalidValue, normalize_email, normalize_name, normalize_phone

MAX_RESULTS = 50
RANKS = {"person_id": 0, "number": 0, "phone": 1, "email": 1, "name": 2, "pinyin": 3}
_PERSON_ID = re.compile(rf"[a-z2-7]{{{PERSON_ID_LENGTH}}}")
_NUMBER = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{2,63}")
_PHONE_CHARS = re.compile(r"[+\d][\d\s()-]{5,24}")


@dataclass
class PersonHit:
    """One person found, as the result list shows them: masked values only."""

    person_id: str
    matched: str  # person_id | number | phone | email | name | pinyin
    names: list[str] = field(default_factory=list)
    numbers: list[tuple[str, str]] = field(default_factory=list)  # (source, masked number)
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)
    affiliations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SearchResult:
    kind: str  # what the query was taken for: person_id | number | phone | email | name
    hits: list[PersonHit]
    truncated: bool


def mask_name(name: str) -> str:
    """张帅 → 张*, 欧阳娜娜 → 欧**娜, Zhang Shuai → Zhang S****: enough to tell people apart, no more."""
    if " " in name.strip():
        first, *rest = name.split()
        return " ".join([first, *(part[:1] + "*" * (len(part) - 1) for part in rest)])
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _matches(session: Session, query: str) -> tuple[str, dict[int | str, str]]:
    """(kind of query, {record id or person id: how it matched})."""
    if _PERSON_ID.fullmatch(query):
        try:
            return "person_id", {resolve_person(session, query).id: "person_id"}
        except PersonNotFound:
            pass
    found: dict[int | str, str] = {}
    if "@" in query:
        try:
            address = normalize_email(query)
        except InvalidValue:
            raise HelpdeskRefused("query_invalid", "this is not a valid email address") from None
        for record_id in session.scalars(select(SourceRecord.id).where(SourceRecord.email == address)):
            found.setdefault(record_id, "email")
        for person_id in session.scalars(
            select(ContactPoint.person_id).where(ContactPoint.kind == "email", ContactPoint.value == address)
        ):
            found.setdefault(person_id, "email")
        return "email", found
    digits = re.sub(r"\D", "", query)
    if _NUMBER.fullmatch(query) or _PHONE_CHARS.fullmatch(query):
        kind = "number"
        for record_id in session.scalars(select(SourceRecord.id).where(SourceRecord.key == query)):
            found[record_id] = "number"
        phone = None
        if len(digits) >= 7:
            try:
                phone = normalize_phone(query)
            except InvalidValue:
                phone = None
        if phone is not None:
            kind = "phone" if not found else kind
            for record_id in session.scalars(select(SourceRecord.id).where(SourceRecord.phone == phone.e164)):
                found.setdefault(record_id, "phone")
            for person_id in session.scalars(
                select(ContactPoint.person_id).where(ContactPoint.kind == "phone", ContactPoint.value == phone.e164)
            ):
                found.setdefault(person_id, "phone")
        if found or phone is not None or digits == query:
            return kind, found
    try:
        name = normalize_name(query)
    except InvalidValue:
        raise HelpdeskRefused("query_invalid", "give a number, a phone, an email or a name") from None
    if name is None:
        raise HelpdeskRefused("query_missing", "type a number, a phone, an email or a name")
    for record_id in session.scalars(select(SourceRecord.id).where(SourceRecord.name_key == name.key)):
        found[record_id] = "name"
    if name.pinyin:
        for record_id in session.scalars(select(SourceRecord.id).where(SourceRecord.name_pinyin == name.pinyin)):
            found.setdefault(record_id, "pinyin")
    return "name", found


def _people(session: Session, matches: dict[int | str, str]) -> dict[str, str]:
    """{person id today: best way they matched}."""
    record_ids = [key for key in matches if isinstance(key, int)]
    owners: dict[int | str, str] = {key: key for key in matches if isinstance(key, str)}
    for start in range(0, len(record_ids), 500):
        chunk = record_ids[start : start + 500]
        rows = session.execute(select(SourceRecord.id, SourceRecord.person_id).where(SourceRecord.id.in_(chunk)))  # type: ignore[union-attr]
        owners.update({record_id: person_id for record_id, person_id in rows if person_id})
    best: dict[str, str] = {}
    survivors: dict[str, str] = {}
    for key, owner in owners.items():
        if owner not in survivors:
            survivors[owner] = resolve_person(session, owner).id
        person = survivors[owner]
        how = matches[key]
        if person not in best or RANKS[how] < RANKS[best[person]]:
            best[person] = how
    return best


def _describe(session: Session, people: dict[str, str]) -> list[PersonHit]:
    hits = {person_id: PersonHit(person_id, how) for person_id, how in people.items()}
    ids = list(hits)
    absorbed = dict(
        session.execute(select(Person.id, Person.merged_into).where(Person.merged_into.in_(ids))).all()  # type: ignore[union-attr]
    )
    owner = {**{pid: pid for pid in ids}, **absorbed}
    records = session.scalars(
        select(SourceRecord)
        .where(SourceRecord.person_id.in_(list(owner)))  # type: ignore[union-attr]
        .order_by(SourceRecord.source, SourceRecord.key)  # type: ignore[arg-type]
    )
    for record in records:
        hit = hits[owner[record.person_id]]  # type: ignore[index]
        for values, value in (
            (hit.names, mask_name(record.name) if record.name else None),
            (hit.numbers, (record.source, mask_number(record.key))),
            (hit.phones, mask_phone(record.phone) if record.phone else None),
            (hit.emails, mask_email(record.email) if record.email else None),
            (hit.orgs, record.org),
            (hit.affiliations, record.affiliation),
        ):
            if value and value not in values:
                values.append(value)  # type: ignore[arg-type]
    for point in session.scalars(
        select(ContactPoint).where(ContactPoint.person_id.in_(list(owner)), ContactPoint.state == "active")  # type: ignore[attr-defined]
    ):
        hit = hits[owner[point.person_id]]
        masked = mask_phone(point.value) if point.kind == "phone" else mask_email(point.value)
        values = hit.phones if point.kind == "phone" else hit.emails
        if masked not in values:
            values.append(masked)
    return sorted(hits.values(), key=lambda hit: (RANKS[hit.matched], hit.names, hit.person_id))


def find_people(
    session: Session, query: str, *, actor: str, client_ip: str | None = None, limit: int = MAX_RESULTS
) -> SearchResult:
    """The people a query names, best matches first, masked; the search is recorded."""
    text = " ".join((query or "").split())
    if not text:
        raise HelpdeskRefused("query_missing", "type a number, a phone, an email or a name")
    if len(text) > 100:
        raise HelpdeskRefused("query_invalid", "the query is too long")
    kind, matches = _matches(session, text)
    hits = _describe(session, _people(session, matches))
    details: dict[str, object] = {"query_kind": kind, "results": len(hits), "purpose": "helpdesk"}
    if client_ip:
        details["client_ip"] = client_ip
    append(session, actor=actor, action="helpdesk.search", details=details)
    return SearchResult(kind, hits[:limit], len(hits) > limit)
