"""The primary phone and email of a person, chosen by the rules of `policies/contacts.yaml`.

Candidates are the live values of a person (not removed, and still said by a source, verified or confirmed).
Some cannot be primary at all: a phone of a type the policy excludes (a fixed line), or a value another
person also holds that this person has not verified (a parent's phone on twins' records is primary for
neither). The rest are ranked rule by rule; the first rule that separates the winner from the runner-up is
the reason, stored with the choice so `idbroker explain` can show it. Choices are recomputed whenever a
value, a claim or a person changes (collect, verification, helpdesk, merge, un-merge).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings, get_settings
from idbroker.contacts.mask import mask_contact
from idbroker.contacts.models import ContactClaim, ContactPoint, PrimaryChoice
from idbroker.contacts.policy import ContactsPolicy, contacts_policy
from idbroker.contacts.provenance import KINDS, ContactView, chunks, clusters, views_of
from idbroker.directory.queries import resolve_person

CHOICES = PrimaryChoice.__table__  # type: ignore[attr-defined]
POINTS = ContactPoint.__table__  # type: ignore[attr-defined]
CLAIMS = ContactClaim.__table__  # type: ignore[attr-defined]
NEVER = datetime.min.replace(tzinfo=UTC)

RULE_TEXT = {
    "verified_by_person": "verified by the person",
    "confirmed_by_helpdesk": "confirmed by the helpdesk",
    "still_listed": "still listed by a source",
    "freshest": "given most recently by a source",
    "source_order": "given by a source earlier in the source order",
    "only_candidate": "the only candidate",
}
INELIGIBLE_TEXT = {
    "removed": "removed by the person",
    "unsaid": "no source says it any more and it was never verified",
    "phone_type": "not a mobile number (the policy's phone_types)",
    "shared": "another person also holds it and this person has not verified it",
}


@dataclass(frozen=True)
class Primary:
    """What other parts read (the WeChat Work sync, releases): the primary values and whether verified."""

    phone: str | None
    email: str | None
    phone_verified: bool = False
    email_verified: bool = False


@dataclass
class Candidate:
    view: ContactView
    shared: bool
    source_rank: dict[str, int]

    def __post_init__(self) -> None:
        current = [c for c in self.view.claims if c.current]
        sources = [c.source for c in current]
        unranked = len(self.source_rank)
        self.best_source = min(sources, key=lambda s: self.source_rank.get(s, unranked)) if sources else None
        self.freshest = max((c.first_said for c in current), default=None)
        self.listed = any(c.listed for c in self.view.claims)
        self._keys: dict[str, tuple[Any, ...]] = {}

    def key(self, rule: str) -> tuple[Any, ...]:
        if rule not in self._keys:
            self._keys[rule] = self._key(rule)
        return self._keys[rule]

    def _key(self, rule: str) -> tuple[Any, ...]:
        """Bigger is better."""
        view = self.view
        if rule == "verified_by_person":
            return (view.person_word_at is not None, view.person_word_at or NEVER)
        if rule == "confirmed_by_helpdesk":
            confirmed = view.confirmed
            return (confirmed is not None, confirmed.confirmed_at if confirmed else NEVER)
        if rule == "still_listed":
            return (self.listed,)
        if rule == "freshest":
            return (self.freshest or NEVER,)
        if rule == "source_order":
            best = self.best_source
            return (-(self.source_rank.get(best, len(self.source_rank))) if best else -(10**6),)
        raise ValueError(f"unknown rule {rule!r}")

    def ineligible(self, policy: ContactsPolicy) -> str | None:
        view = self.view
        if view.removed:
            return "removed"
        if not view.live:
            return "unsaid"
        if view.kind == "phone" and (view.phone_type or "other") not in policy.primary.phone_types:
            return "phone_type"
        verified = view.verified_at is not None or view.confirmed is not None
        if self.shared and policy.primary.shared_needs_verification and not verified:
            return "shared"
        return None

    def facts(self) -> dict[str, Any]:
        view = self.view
        confirmed = view.confirmed
        return {
            "value": mask_contact(view.kind, view.value),
            "contact": view.id,
            "verified": view.verified_method and f"{view.verified_method} {view.verified_at:%Y-%m-%d %H:%M}",
            "chosen_or_verified": view.person_word_at and f"{view.person_word_at:%Y-%m-%d %H:%M}",
            "confirmed": confirmed and f"{confirmed.confirmed_at:%Y-%m-%d %H:%M} by {confirmed.confirmed_by}",
            "listed": self.listed,
            "freshest": self.freshest and f"{self.freshest:%Y-%m-%d %H:%M}",
            "best_source": self.best_source,
            "sources": sorted({c.source for c in view.claims if c.current}),
        }


@dataclass
class Choice:
    kind: str
    winner: Candidate | None
    rule: str | None  # the rule that decided, `only_candidate`, or None when there is no primary
    ranked: list[tuple[Candidate, str]]  # the others and the rule (or ineligibility) that put them below

    def explanation(self) -> dict[str, Any]:
        return {
            "winner": self.winner.facts() if self.winner else None,
            "rule": self.rule,
            "others": [{**c.facts(), "why": why} for c, why in self.ranked],
        }


def choose(policy: ContactsPolicy, kind: str, candidates: list[Candidate]) -> Choice:
    """Rank one person's candidates of one kind by the policy's rules."""
    eligible: list[Candidate] = []
    below: list[tuple[Candidate, str]] = []
    for candidate in candidates:
        reason = candidate.ineligible(policy)
        if reason is None:
            eligible.append(candidate)
        else:
            below.append((candidate, f"ineligible:{reason}"))
    rules = policy.primary.rules
    eligible.sort(key=lambda c: c.view.value)  # ties end in a fixed order
    eligible.sort(key=lambda c: tuple(c.key(rule) for rule in rules), reverse=True)
    if not eligible:
        return Choice(kind, None, None, below)
    winner = eligible[0]
    ranked: list[tuple[Candidate, str]] = []
    for other in eligible[1:]:
        decided = next((rule for rule in rules if winner.key(rule) != other.key(rule)), "value_order")
        ranked.append((other, decided))
    rule = ranked[0][1] if ranked else "only_candidate"
    return Choice(kind, winner, rule, ranked + below)


def _by_kind(values: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for kind, value in set(values):
        grouped[kind].append(value)
    return {kind: sorted(found) for kind, found in grouped.items()}


def _shared_holders(session: Session, values: set[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """For the values that two or more IDs hold with a live point: (kind, value) → those person IDs.

    One grouped, indexed lookup per kind and 1,000 values finds the shared ones (few); only they are read.
    """
    shared: list[tuple[str, str]] = []
    for kind, wanted in _by_kind(values).items():
        for chunk in chunks(wanted):
            shared.extend(
                (kind, value)
                for (value,) in session.execute(
                    select(POINTS.c.value)
                    .where(POINTS.c.kind == kind, POINTS.c.value.in_(chunk), POINTS.c.state == "active")
                    .group_by(POINTS.c.value)
                    .having(func.count(func.distinct(POINTS.c.person_id)) > 1)
                )
            )
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for kind, wanted in _by_kind(shared).items():
        for chunk in chunks(wanted):
            live = or_(
                POINTS.c.verified_at.is_not(None),
                POINTS.c.confirmed_at.is_not(None),
                select(CLAIMS.c.id).where(CLAIMS.c.contact_id == POINTS.c.id, CLAIMS.c.current).exists(),
            )
            rows = session.execute(
                select(POINTS.c.person_id, POINTS.c.value).where(
                    POINTS.c.kind == kind, POINTS.c.value.in_(chunk), POINTS.c.state == "active", live
                )
            )
            for person_id, value in rows:
                holders[(kind, value)].add(person_id)
    return holders


def holders_of(session: Session, values: Iterable[tuple[str, str]]) -> set[str]:
    """Everyone (as stored) with a point for any of these values: whose choice a change of them may move."""
    found: set[str] = set()
    for kind, wanted in _by_kind(values).items():
        for chunk in chunks(wanted):
            found.update(
                session.scalars(
                    select(POINTS.c.person_id).where(POINTS.c.kind == kind, POINTS.c.value.in_(chunk)).distinct()
                )
            )
    return found


def recompute(session: Session, person_ids: Iterable[str], settings: Settings | None = None) -> list[Choice]:
    """Choose again the primary phone and email of these people and store the choices."""
    policy = contacts_policy(settings or get_settings())
    session.flush()
    ids = list(dict.fromkeys(person_ids))
    choices: list[Choice] = []
    for chunk in chunks(ids):
        cluster = clusters(session, chunk)
        views = views_of(session, cluster)
        owner = {pid: person for person, members in cluster.items() for pid in members}
        values = {(v.kind, v.value) for person_views in views.values() for v in person_views if v.live}
        holders = _shared_holders(session, values)
        rank = {source: i for i, source in enumerate(policy.primary.source_order)}
        rows: list[dict[str, Any]] = []
        now = utcnow()
        for person in cluster:
            person_views = views.get(person, [])
            for kind in KINDS:
                candidates = [
                    Candidate(
                        view,
                        shared=any(owner.get(pid) != person for pid in holders.get((kind, view.value), ())),
                        source_rank=rank,
                    )
                    for view in person_views
                    if view.kind == kind
                ]
                choice = choose(policy, kind, candidates)
                choices.append(choice)
                winner = choice.winner
                rows.append(
                    {
                        "person_id": person,
                        "kind": kind,
                        "contact_id": winner.view.id if winner else None,
                        "value": winner.view.value if winner else None,
                        "verified": bool(winner and (winner.view.verified_at or winner.view.confirmed)),
                        "rule": choice.rule,
                        "explanation": choice.explanation(),
                        "computed_at": now,
                    }
                )
        stale = [pid for pid in owner]
        for part in chunks(stale):
            session.execute(delete(CHOICES).where(CHOICES.c.person_id.in_(part)))
        if rows:
            session.execute(insert(CHOICES), rows)
    return choices


def primary_contacts(session: Session, person_id: str) -> Primary:
    """The person's primary phone and email as last chosen (an absorbed ID gives its survivor's)."""
    person = resolve_person(session, person_id)
    found = {
        choice.kind: choice
        for choice in session.scalars(select(PrimaryChoice).where(PrimaryChoice.person_id == person.id))  # type: ignore[arg-type]
    }
    phone, email = found.get("phone"), found.get("email")
    return Primary(
        phone=phone.value if phone else None,
        email=email.value if email else None,
        phone_verified=bool(phone and phone.value and phone.verified),
        email_verified=bool(email and email.value and email.verified),
    )


def primary_choices(session: Session, person_id: str) -> dict[str, PrimaryChoice]:
    """The stored choices of a person (phone first), with their explanations."""
    person = resolve_person(session, person_id)
    found = {
        choice.kind: choice
        for choice in session.scalars(select(PrimaryChoice).where(PrimaryChoice.person_id == person.id))  # type: ignore[arg-type]
    }
    return {kind: found[kind] for kind in KINDS if kind in found}


def describe(choice: PrimaryChoice) -> list[str]:
    """Lines that say why this value is (or no value is) the person's primary, for `idbroker explain`."""
    data = choice.explanation or {}
    winner = data.get("winner")
    lines: list[str] = []
    if winner:
        rule = choice.rule or "-"
        lines.append(f"primary {choice.kind} {winner['value']}: {RULE_TEXT.get(rule, rule)} — {_facts(winner)}")
    else:
        lines.append(f"no primary {choice.kind}" + ("" if data.get("others") else ": none known"))
    for other in data.get("others", []):
        why = other["why"]
        if why.startswith("ineligible:"):
            text = "cannot be primary: " + INELIGIBLE_TEXT.get(why.split(":", 1)[1], why)
        else:
            text = "ranked below: the other is " + RULE_TEXT.get(why, why)
        lines.append(f"  {choice.kind} {other['value']}: {text} — {_facts(other)}")
    return lines


def _facts(facts: dict[str, Any]) -> str:
    parts = []
    if facts.get("verified"):
        parts.append(f"verified ({facts['verified']})")
    if facts.get("confirmed"):
        parts.append(f"helpdesk confirmed {facts['confirmed']}")
    if facts.get("sources"):
        parts.append("said by " + ", ".join(facts["sources"]))
    if facts.get("freshest"):
        parts.append(f"latest given {facts['freshest']}")
    if not facts.get("listed"):
        parts.append("not listed by any current export")
    return "; ".join(parts) or "no source"
