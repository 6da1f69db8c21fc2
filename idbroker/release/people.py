"""What the REST API answers an app about people: by pseudonym (one or up to 1,000) or by a number it
already holds (when its policy allows). Every answer is a release through the gate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session

from idbroker.db import NOT_READ, put_ahead, take_ahead
from idbroker.directory.models import Person
from idbroker.directory.queries import people_by_number
from idbroker.oidc.rfc6749.tokens import read_access_ahead
from idbroker.release.gate import Receiver, Release, ReleaseGate, ReleaseRefused, read_subjects_ahead
from idbroker.release.models import Pseudonym
from idbroker.release.policies import AppPolicy
from idbroker.release.pseudonyms import reverse_many

MAX_BATCH = 1000

_PSEUDONYM = Pseudonym.__table__.c  # type: ignore[attr-defined]
_PERSON = Person.__table__.c  # type: ignore[attr-defined]
_REVERSE_AHEAD = (
    select(_PSEUDONYM.sector, _PSEUDONYM.value, _PSEUDONYM.person_id, _PERSON.state)
    .select_from(Pseudonym.__table__)  # type: ignore[attr-defined]
    .join(Person.__table__, _PERSON.id == _PSEUDONYM.person_id)  # type: ignore[attr-defined]
    .where(
        _PSEUDONYM.sector.in_(bindparam("sectors", expanding=True)),
        _PSEUDONYM.value.in_(bindparam("values", expanding=True)),
    )
)


class LookupNotAllowed(PermissionError):
    pass


class AmbiguousNumber(LookupError):
    pass


@dataclass
class Resolved:
    found: dict[str, dict[str, Any]] = field(default_factory=dict)  # asked pseudonym → claims
    unknown: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # known, but nothing may be released (no consent)


@dataclass(frozen=True)
class Ahead:
    """What a grouped release request will read, named before it runs: its bearer token and, for the REST API's
    one-person route, the pseudonym it resolves (`read_ahead`)."""

    token: str
    pseudonym: str | None = None


def read_ahead(session: Session, requests: Sequence[Ahead]) -> None:
    """Make the reads of a group of releases set-based (`idbroker.web.grouped`): all their tokens (with grant and
    app) in one statement, all their pseudonyms in one, all their people (state, pseudonym, records) in one —
    whatever the number of requests. Each request then takes what was read for it (`idbroker.db.take_ahead`) and
    still decides alone: an unusable token, an unknown pseudonym or a refused release answers that request only."""
    if not requests:
        return
    bearers = read_access_ahead(session, [request.token for request in requests])
    subjects: Counter[tuple[str, str]] = Counter()
    asked: Counter[tuple[str, str]] = Counter()
    for request in requests:
        person_id, sector = bearers.get(request.token, (None, None))
        if sector is None:
            continue
        if request.pseudonym is None and person_id is not None:
            subjects[(sector, person_id)] += 1
        elif request.pseudonym is not None and person_id is None and "\x00" not in request.pseudonym:
            asked[(sector, request.pseudonym)] += 1
    if asked:
        found: dict[tuple[str, str], tuple[str, str]] = {}
        params = {"sectors": sorted({s for s, _ in asked}), "values": sorted({v for _, v in asked})}
        for sector, value, person_id, state in session.execute(_REVERSE_AHEAD, params):
            found[(sector, value)] = (person_id, state)
        for (sector, value), uses in asked.items():
            person_id, state = found.get((sector, value), (None, None))
            if state == "merged":  # resolved the long way, by `reverse_many`
                continue
            put_ahead(session, ("reverse", sector, value), person_id, uses=uses)  # None: unknown here
            if person_id is not None:
                subjects[(sector, person_id)] += uses
    read_subjects_ahead(session, subjects)


def _reverse(session: Session, sector: str, values: Sequence[str]) -> dict[str, str]:
    if len(values) == 1:
        person_id = take_ahead(session, ("reverse", sector, values[0]))
        if person_id is not NOT_READ:
            return {} if person_id is None else {values[0]: person_id}
    return reverse_many(session, sector, values)


def resolve(
    session: Session, gate: ReleaseGate, app: Receiver, policy: AppPolicy, pseudonyms: Sequence[str]
) -> Resolved:
    if len(pseudonyms) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} pseudonyms at once")
    people = _reverse(session, app.sector, pseudonyms)
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
