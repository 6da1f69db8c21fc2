"""Where each phone and email came from: contact points, the claims of every source, and a person's view.

A contact point belongs to the person it was said of. After a merge a person's view gathers the points of
every ID that resolves to them (so an un-merge gives each person back exactly what was theirs); claims from
source records follow their record (re-pointed by `collect` when a record moves to another person).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.contacts.models import ContactClaim, ContactPoint
from idbroker.directory.models import Person, SourceRecord
from idbroker.directory.queries import PersonNotFound
from idbroker.normalize import InvalidValue
from idbroker.normalize.phones import normalize_phone

KINDS = ("phone", "email")
PERSON_SOURCES = ("self_service", "helpdesk")  # claims made by a person or a helpdesk call, not a record
POINTS = ContactPoint.__table__  # type: ignore[attr-defined]
CLAIMS = ContactClaim.__table__  # type: ignore[attr-defined]
RECORDS = SourceRecord.__table__  # type: ignore[attr-defined]
PEOPLE = Person.__table__  # type: ignore[attr-defined]
CHUNK = 1000


def chunks(items: list, size: int = CHUNK) -> Iterable[list]:  # type: ignore[type-arg]
    for start in range(0, len(items), size):
        yield items[start : start + size]


def phone_type(e164: str) -> str:
    """mobile | fixed_line | other, as phonenumbers classifies the number."""
    try:
        phone = normalize_phone(e164)
    except InvalidValue:
        return "other"
    return phone.kind if phone else "other"


def clusters(session: Session, person_ids: Iterable[str]) -> dict[str, set[str]]:
    """Each person as they are today (merges followed) → every ID that resolves to them, their own included.

    Read in bulk (a few queries per 1,000 people); an unknown ID raises `PersonNotFound` like `resolve_person`.
    """
    ids = list(dict.fromkeys(person_ids))
    rows: dict[str, tuple[str, str | None]] = {}
    wanted = set(ids)
    while wanted:
        for chunk in chunks(sorted(wanted)):
            for pid, state, into in session.execute(
                select(PEOPLE.c.id, PEOPLE.c.state, PEOPLE.c.merged_into).where(PEOPLE.c.id.in_(chunk))
            ):
                rows[pid] = (state, into)
        wanted = {into for state, into in rows.values() if state == "merged" and into and into not in rows}

    def resolve(pid: str) -> str:
        seen: set[str] = set()
        while pid in rows and rows[pid][0] == "merged" and rows[pid][1] and pid not in seen:
            seen.add(pid)
            pid = rows[pid][1]  # type: ignore[assignment]
        if pid not in rows:
            raise PersonNotFound(f"no person {pid}")
        return pid

    survivors: dict[str, set[str]] = {}
    for pid in ids:
        person = resolve(pid)
        survivors.setdefault(person, {person})
    owner = {pid: pid for pid in survivors}
    frontier = list(survivors)
    while frontier:
        found: list[str] = []
        for chunk in chunks(frontier):
            for absorbed, into in session.execute(
                select(PEOPLE.c.id, PEOPLE.c.merged_into).where(PEOPLE.c.merged_into.in_(chunk))
            ):
                if absorbed not in owner:
                    owner[absorbed] = owner[into]
                    survivors[owner[into]].add(absorbed)
                    found.append(absorbed)
        frontier = found
    return survivors


def contact_point(
    session: Session, person_id: str, kind: str, value: str, phone_type: str | None = None
) -> ContactPoint:
    """The person's point for this value, made if new."""
    point = session.scalars(
        select(ContactPoint).where(
            ContactPoint.person_id == person_id,  # type: ignore[arg-type]
            ContactPoint.kind == kind,  # type: ignore[arg-type]
            ContactPoint.value == value,  # type: ignore[arg-type]
        )
    ).first()
    if point is None:
        point = ContactPoint(person_id=person_id, kind=kind, value=value, phone_type=phone_type)
        session.add(point)
        session.flush()
    return point


def say(session: Session, point: ContactPoint, source: str, *, actor: str, reason: str | None = None) -> ContactClaim:
    """A person (`self_service`) or the helpdesk (`helpdesk`) says this value is theirs, now."""
    if source not in PERSON_SOURCES:
        raise ValueError(f"{source!r} is not a person's source; records speak through collect")
    now = utcnow()
    claim = session.scalars(
        select(ContactClaim).where(ContactClaim.contact_id == point.id, ContactClaim.source == source)  # type: ignore[arg-type]
    ).first()
    if claim is None:
        claim = ContactClaim(contact_id=point.id, source=source, first_said=now)  # type: ignore[arg-type]
    elif not claim.current:
        claim.first_said = now
    claim.actor, claim.reason, claim.current, claim.last_said, claim.until = actor, reason, True, now, None
    session.add(claim)
    return claim


def unsay(session: Session, point_ids: Iterable[int], source: str) -> None:
    """The person's own claims on these points end (they removed the value)."""
    now = utcnow()
    for claim in session.scalars(
        select(ContactClaim).where(
            ContactClaim.contact_id.in_(list(point_ids)),  # type: ignore[union-attr]
            ContactClaim.source == source,  # type: ignore[arg-type]
            ContactClaim.current,  # type: ignore[arg-type]
        )
    ):
        claim.current, claim.until = False, now
        session.add(claim)


@dataclass
class Said:
    """One source saying a value: a record (its source and key) or a person or helpdesk call."""

    source: str
    current: bool
    first_said: datetime
    last_said: datetime
    until: datetime | None
    record_id: int | None = None
    record_key: str | None = None
    record_present: bool | None = None
    actor: str | None = None
    reason: str | None = None

    @property
    def listed(self) -> bool:
        """It still says so, and (for a record) the record is in its source's latest export."""
        return self.current and self.record_present is not False


@dataclass(frozen=True)
class Point:
    """One stored contact point, as read for a view (change points with statements, not through these)."""

    id: int
    person_id: str
    kind: str
    value: str
    phone_type: str | None
    state: str
    verified_at: datetime | None
    verified_method: str | None
    chosen_at: datetime | None
    confirmed_at: datetime | None
    confirmed_by: str | None
    confirmed_reason: str | None
    removed_at: datetime | None


POINT_COLUMNS = [POINTS.c[name] for name in Point.__dataclass_fields__]


@dataclass
class ContactView:
    """One value as one person sees it, gathered over every ID that resolves to them."""

    kind: str
    value: str
    phone_type: str | None
    points: list[Point]
    claims: list[Said] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cache: dict[str, object] = {}

    def _memo(self, name: str, compute: Callable[[], object]) -> object:
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]

    @property
    def id(self) -> int:
        """The point that stands for this value (the oldest)."""
        return min(p.id for p in self.points)

    @property
    def point_ids(self) -> list[int]:
        return [p.id for p in self.points]

    @property
    def removed(self) -> bool:
        return all(p.state == "removed" for p in self.points)

    def _verified(self) -> Point | None:
        verified = [p for p in self.points if p.verified_at and p.state == "active"]
        return max(verified, key=lambda p: p.verified_at) if verified else None  # type: ignore[arg-type, return-value]

    @property
    def verified_at(self) -> datetime | None:
        point = self._memo("verified", self._verified)
        return point.verified_at if point else None  # type: ignore[attr-defined]

    @property
    def verified_method(self) -> str | None:
        point = self._memo("verified", self._verified)
        return point.verified_method if point else None  # type: ignore[attr-defined]

    @property
    def person_word_at(self) -> datetime | None:
        """The latest time the person spoke for this value: verifying it or choosing it as primary."""
        if self.verified_at is None:
            return None
        chosen = max((p.chosen_at for p in self.points if p.chosen_at and p.state == "active"), default=None)
        return max(self.verified_at, chosen) if chosen else self.verified_at

    def _confirmed(self) -> Point | None:
        confirmed = [p for p in self.points if p.confirmed_at and p.state == "active"]
        return max(confirmed, key=lambda p: p.confirmed_at) if confirmed else None  # type: ignore[arg-type, return-value]

    @property
    def confirmed(self) -> Point | None:
        return self._memo("confirmed", self._confirmed)  # type: ignore[return-value]

    @property
    def has_current_claim(self) -> bool:
        return any(c.current for c in self.claims)

    @property
    def live(self) -> bool:
        """Someone still vouches for it: a current claim, a verification or a helpdesk confirmation."""
        return not self.removed and (self.has_current_claim or self.verified_at is not None or bool(self.confirmed))


def views_of(session: Session, cluster_ids: dict[str, set[str]]) -> dict[str, list[ContactView]]:
    """Every person's values (grouped over their IDs) with the claims of each source."""
    owner = {pid: person for person, ids in cluster_ids.items() for pid in ids}
    points: list[Point] = []
    for chunk in chunks(list(owner)):
        points.extend(
            Point(*row) for row in session.execute(select(*POINT_COLUMNS).where(POINTS.c.person_id.in_(chunk)))
        )
    grouped: dict[tuple[str, str, str], ContactView] = {}
    view_of_point: dict[int, ContactView] = {}
    for point in sorted(points, key=lambda p: p.id):
        key = (owner[point.person_id], point.kind, point.value)
        view = grouped.get(key)
        if view is None:
            view = grouped[key] = ContactView(point.kind, point.value, point.phone_type, [])
        view.points.append(point)
        view_of_point[point.id] = view
    for chunk in chunks(list(view_of_point)):
        rows = session.execute(
            select(
                CLAIMS.c.contact_id,
                CLAIMS.c.source,
                CLAIMS.c.current,
                CLAIMS.c.first_said,
                CLAIMS.c.last_said,
                CLAIMS.c.until,
                CLAIMS.c.source_record_id,
                RECORDS.c.key,
                CLAIMS.c.listed,
                CLAIMS.c.actor,
                CLAIMS.c.reason,
            )
            .select_from(CLAIMS.outerjoin(RECORDS, RECORDS.c.id == CLAIMS.c.source_record_id))
            .where(CLAIMS.c.contact_id.in_(chunk))
            .order_by(CLAIMS.c.id)
        )
        for contact_id, *said in rows:
            view_of_point[contact_id].claims.append(Said(*said))
    result: dict[str, list[ContactView]] = defaultdict(list)
    for (person, _kind, _value), view in grouped.items():
        result[person].append(view)
    return result


def contacts_of(session: Session, person_id: str) -> list[ContactView]:
    """A person's phones and emails, removed ones included, with where each came from."""
    cluster = clusters(session, [person_id])
    person = next(iter(cluster))
    return sorted(views_of(session, cluster).get(person, []), key=lambda v: (v.kind, v.id))
