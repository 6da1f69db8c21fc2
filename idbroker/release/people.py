"""What the REST API answers an app about people: by pseudonym (one or up to 1,000) or by a number it
already holds (when its policy allows). Every answer is a release through the gate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from idbroker.directory.queries import people_by_number
from idbroker.release.gate import Receiver, Release, ReleaseGate, ReleaseRefused
from idbroker.release.policies import AppPolicy
from idbroker.release.pseudonyms import reverse_many

MAX_BATCH = 1000


class LookupNotAllowed(PermissionError):
    pass


class AmbiguousNumber(LookupError):
    pass


@dataclass
class Resolved:
    found: dict[str, dict[str, Any]] = field(default_factory=dict)  # asked pseudonym → claims
    unknown: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # known, but nothing may be released (no consent)


def resolve(
    session: Session, gate: ReleaseGate, app: Receiver, policy: AppPolicy, pseudonyms: Sequence[str]
) -> Resolved:
    if len(pseudonyms) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} pseudonyms at once")
    people = reverse_many(session, app.sector, pseudonyms)
    result = Resolved()
    releases: dict[str, Release] = {}
    for value in dict.fromkeys(pseudonyms):
        person_id = people.get(value)
        if person_id is None:
            result.unknown.append(value)
            continue
        try:
            release = releases.get(person_id) or gate.release(
                session, app, policy, person_id, wanted=None, via="resolve"
            )
        except ReleaseRefused:
            result.withheld.append(value)
            continue
        releases[person_id] = release
        result.found[value] = release.claims
    return result


def lookup_by_number(
    session: Session, gate: ReleaseGate, app: Receiver, policy: AppPolicy, number: str
) -> Release | None:
    """The person holding `number` (学号, 工号…), or None; only for apps whose policy allows it."""
    if not policy.lookup_by_number:
        raise LookupNotAllowed(f"the policy of {app.client_id!r} does not allow looking people up by number")
    people = people_by_number(session, number)
    if not people:
        return None
    if len(people) > 1:
        raise AmbiguousNumber("several people hold this number: ask the helpdesk")
    return gate.release(session, app, policy, people[0].id, wanted=None, via="lookup")
