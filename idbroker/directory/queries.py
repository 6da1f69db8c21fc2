"""Finding people: by their ID (an absorbed ID resolves to its survivor) or by any number they hold."""

from __future__ import annotations

from sqlmodel import Session, select

from idbroker.directory.models import Person, SourceRecord


class PersonNotFound(LookupError):
    pass


def resolve_person(session: Session, person_id: str) -> Person:
    """The person an ID stands for today: itself, or the survivor it was merged into."""
    person = session.get(Person, person_id)
    seen: set[str] = set()
    while person is not None and person.state == "merged" and person.merged_into and person.id not in seen:
        seen.add(person.id)
        person = session.get(Person, person.merged_into)
    if person is None:
        raise PersonNotFound(f"no person {person_id}")
    return person


def people_by_number(session: Session, number: str) -> list[Person]:
    """Everyone holding this number (学号, 工号, CAS uid, account…) in any source."""
    if "\x00" in number:  # nobody's (and PostgreSQL refuses NUL in text)
        return []
    ids = session.exec(
        select(SourceRecord.person_id).where(SourceRecord.key == number, SourceRecord.person_id.is_not(None))  # type: ignore[union-attr]
    ).all()
    people = {resolve_person(session, pid).id: resolve_person(session, pid) for pid in ids if pid}
    return list(people.values())


def records_of(session: Session, person_id: str) -> list[SourceRecord]:
    return list(
        session.exec(
            select(SourceRecord)
            .where(SourceRecord.person_id == person_id)
            .order_by(SourceRecord.source, SourceRecord.key)  # type: ignore[arg-type]
        ).all()
    )
