"""The release gate: the one way anything about a person leaves the broker.

`ReleaseGate.release` does, in the caller's transaction, the three things invariant 2 ties together:
the policy check (only claims the app's policy allows, only with the separate consent it requires, only
to an enabled app), the pseudonym (the app's sector's, never an internal ID), and the audit record (app,
person, claims released, purpose, channel). If the audit record cannot be written, the caller's
transaction fails and nothing is released. ID tokens, userinfo, introspection, the REST API and the
change feed all call it; nothing else reads a person's claim values (`claims.person_claims`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, select
from sqlmodel import Session

from idbroker.audit.chain import append_later as audit
from idbroker.config import Settings
from idbroker.db import NOT_READ, DriverStatement, put_ahead, take_ahead
from idbroker.directory.models import Person, SourceRecord
from idbroker.release.claims import OUTPUT_NAMES, RECORD_COLUMNS, ClaimRecord, person_claims
from idbroker.release.consent import has_consent
from idbroker.release.models import Pseudonym
from idbroker.release.nicknames import nickname
from idbroker.release.policies import AppPolicy
from idbroker.release.pseudonyms import Pseudonyms

CHANNELS = ("id_token", "userinfo", "introspection", "resolve", "lookup", "feed")


_PERSON = Person.__table__.c  # type: ignore[attr-defined]
_PSEUDONYM = Pseudonym.__table__.c  # type: ignore[attr-defined]
_RECORD = SourceRecord.__table__.c  # type: ignore[attr-defined]
# One statement for what a release reads of a person: their state, their stored pseudonym in the app's sector and
# the record columns claims are made of (a row per record; one row of NULLs for a person without records).
_SUBJECT = DriverStatement(
    select(_PERSON.id, _PERSON.state, _PSEUDONYM.value, *RECORD_COLUMNS)
    .select_from(Person.__table__)  # type: ignore[attr-defined]
    .outerjoin(
        Pseudonym.__table__,  # type: ignore[attr-defined]
        and_(_PSEUDONYM.person_id == _PERSON.id, _PSEUDONYM.sector == bindparam("sector")),
    )
    .outerjoin(SourceRecord.__table__, _RECORD.person_id == _PERSON.id)  # type: ignore[attr-defined]
    .where(_PERSON.id == bindparam("person_id"))
    .order_by(_RECORD.source, _RECORD.key)
)
# The same for many people and sectors at once (a group of requests, `idbroker.web.grouped`): a row per person,
# pseudonym in one of the sectors and record; `read_subjects_ahead` splits them into `_SUBJECT`'s rows.
_SUBJECTS = (
    select(_PERSON.id, _PERSON.state, _PSEUDONYM.sector, _PSEUDONYM.value, *RECORD_COLUMNS)
    .select_from(Person.__table__)  # type: ignore[attr-defined]
    .outerjoin(
        Pseudonym.__table__,  # type: ignore[attr-defined]
        and_(_PSEUDONYM.person_id == _PERSON.id, _PSEUDONYM.sector.in_(bindparam("sectors", expanding=True))),
    )
    .outerjoin(SourceRecord.__table__, _RECORD.person_id == _PERSON.id)  # type: ignore[attr-defined]
    .where(_PERSON.id.in_(bindparam("person_ids", expanding=True)))
    .order_by(_PERSON.id, _PSEUDONYM.sector, _RECORD.source, _RECORD.key)
)


def read_subjects_ahead(session: Session, wanted: Mapping[tuple[str, str], int]) -> None:
    """Read in one statement what `release` reads of each (sector, person ID) in `wanted`, for as many releases
    as the count says (`idbroker.db.take_ahead`). What the releases before one in the group stored (a first
    pseudonym) `release` still finds: a pseudonym read ahead as missing is looked up again before one is made."""
    if not wanted:
        return
    sectors = sorted({sector for sector, _ in wanted})
    person_ids = sorted({person_id for _, person_id in wanted})
    by_person: dict[str, list[Any]] = {}
    for row in session.execute(_SUBJECTS, {"sectors": sectors, "person_ids": person_ids}):
        by_person.setdefault(row[0], []).append(row)
    for (sector, person_id), uses in wanted.items():
        rows = by_person.get(person_id, [])
        value = next((row[3] for row in rows if row[2] == sector), None)
        first = rows[0][2] if rows else None  # one sector's rows hold every record once, in order
        subject = [(row[0], row[1], value, *row[4:]) for row in rows if row[2] == first]
        put_ahead(session, ("subject", sector, person_id), subject, uses=uses)


class Receiver(Protocol):
    """What the gate reads of the app it releases to: an `App` row, or the app a token lookup read along with
    the token (`idbroker.oidc.rfc6749.tokens.BearerApp`). Never cached: `enabled` is as the database says now."""

    @property
    def client_id(self) -> str: ...

    @property
    def sector(self) -> str: ...

    @property
    def enabled(self) -> bool: ...


class ReleaseRefused(PermissionError):
    """Nothing may be released: `reason` is `app_disabled`, `policy_mismatch` or `consent_required`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Release:
    """What left the broker: `claims` (with `sub`), and which policy claims they were. `person_id` is for
    the broker's own bookkeeping (grants, audit) and is never put in a response."""

    person_id: str = field(repr=False)
    sub: str
    claims: dict[str, Any]
    released: tuple[str, ...]


class ReleaseGate:
    def __init__(self, settings: Settings) -> None:
        self.pseudonyms = Pseudonyms(settings)

    def release(
        self,
        session: Session,
        app: Receiver,
        policy: AppPolicy,
        person_id: str,
        *,
        wanted: Iterable[str] | None,
        via: str,
        former: Mapping[str, str] | None = None,
    ) -> Release:
        """Release to `app` the claims of `wanted` (None: all) that its policy allows, about `person_id`.

        `former` names other person IDs whose *own* pseudonyms the app is told too (the change feed's
        `merged_sub`, for example): output name → person ID.
        """
        if via not in CHANNELS:
            raise ValueError(f"unknown release channel {via!r}")
        if not app.enabled:
            raise ReleaseRefused("app_disabled", f"app {app.client_id!r} is disabled")
        if policy.client_id != app.client_id:
            raise ReleaseRefused("policy_mismatch", f"policy of {policy.client_id!r} given for {app.client_id!r}")
        session.flush()  # what the caller changed in this session is what the queries below read
        rows = take_ahead(session, ("subject", app.sector, person_id))
        if rows is NOT_READ:
            rows, _ = _SUBJECT.run(session, {"sector": app.sector, "person_id": person_id})
        records: list[ClaimRecord] | None = None
        if rows and rows[0][1] != "merged":  # the usual case: the person, their pseudonym here, their records
            current, sub = rows[0][0], rows[0][2]
            records = [ClaimRecord(*row[3:]) for row in rows if row[3] is not None]  # `source` is never NULL
        else:  # a merged (or unknown) ID: resolved the long way
            current, sub = self.pseudonyms.current_and_canonical(session, app.sector, person_id)
        if policy.separate_consent and not has_consent(session, current, policy):
            raise ReleaseRefused("consent_required", f"the person has not consented to {app.client_id!r}")
        allowed = set(policy.claims) if wanted is None else set(policy.claims) & set(wanted)
        allowed.add("pseudonym")  # every policy holds it: it is how the app knows the person at all
        if sub is None:  # the first release to this sector, or a merged person: may store a pseudonym
            sub = self.pseudonyms.canonical(session, app.sector, current)
        real_nickname = policy.nickname_is_real_name and "nickname" in allowed
        values = person_claims(session, current, allowed | ({"name"} if real_nickname else set()), records=records)
        if "nickname" in allowed:
            real = values.get("name") if real_nickname else None
            values["nickname"] = real or nickname(app.client_id, sub)
        values["sub"] = sub
        permitted = {name for claim in allowed for name in OUTPUT_NAMES[claim]}
        claims = {name: value for name, value in values.items() if name in permitted}
        for name, other in (former or {}).items():
            claims[name] = self.pseudonyms.own(session, app.sector, other)
        released = tuple(sorted(c for c in allowed if any(name in claims for name in OUTPUT_NAMES[c])))
        audit(
            session,
            actor=f"app:{app.client_id}",
            action="release",
            subject=current,
            details={"app": app.client_id, "claims": list(released), "purpose": policy.purpose, "via": via},
        )
        return Release(person_id=current, sub=sub, claims=claims, released=released)
