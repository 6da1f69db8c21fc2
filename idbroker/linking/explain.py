"""`idbroker explain`: why a person is who they are — their records, and the evidence of each link."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, or_, select

from idbroker.directory.models import Person, SourceRecord
from idbroker.directory.queries import PersonNotFound, people_by_number, records_of, resolve_person
from idbroker.linking.models import MergeCandidate, MergeOperation


@dataclass
class Explanation:
    person: Person
    asked: str
    aliases: list[str]
    records: list[SourceRecord]
    history: list[MergeOperation]
    candidates: list[MergeCandidate]
    others: list[str] = field(default_factory=list)  # other people holding the same number


def find_people(session: Session, query: str) -> list[Person]:
    """A person ID (or an absorbed one) or any number a person holds."""
    try:
        return [resolve_person(session, query)]
    except PersonNotFound:
        return people_by_number(session, query)


def explain(session: Session, query: str) -> Explanation:
    people = find_people(session, query)
    if not people:
        raise PersonNotFound(f"no person and no record with the number {query!r}")
    person = people[0]
    aliases = list(session.exec(select(Person.id).where(Person.merged_into == person.id)).all())
    history = list(
        session.exec(
            select(MergeOperation)
            .where(or_(MergeOperation.survivor_id == person.id, MergeOperation.absorbed_id == person.id))
            .order_by(MergeOperation.id)  # type: ignore[arg-type]
        ).all()
    )
    candidates = list(
        session.exec(
            select(MergeCandidate).where(
                or_(MergeCandidate.person_a == person.id, MergeCandidate.person_b == person.id)
            )
        ).all()
    )
    return Explanation(
        person,
        query,
        aliases,
        records_of(session, person.id),
        history,
        candidates,
        [p.id for p in people[1:]],
    )


def describe_evidence(evidence: dict[str, Any] | None) -> str:
    """`national_id agree +12, name agree +4 … = 19` — the evidence of one link in one line."""
    if not evidence:
        return "-"
    parts = [f"{name} {level} {weight:+g}" for name, level, weight, _records in evidence.get("evidence", [])]
    text = ", ".join(parts) or "no shared evidence"
    if "score" in evidence:
        text += f" = {evidence['score']:g}"
    if evidence.get("veto"):
        text += f" (veto: {evidence['veto']})"
    return text
