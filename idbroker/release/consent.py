"""Separate consent (PIPL Art. 23): asked when an app's policy says so, before anything is released to it.

A consent covers the claims, purpose and recipient the person was shown (`AppPolicy.purpose_digest`):
when the policy changes, the person is asked again. Withdrawing is as easy as giving: it takes effect at
once, revokes the app's sign-ins for that person, is audited like the grant, and is told to that app alone
through its change feed (a `consent.withdrawn` directory event naming the app; `idbroker.release.feed`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.directory.events import emit
from idbroker.directory.queries import resolve_person
from idbroker.oidc.rfc6749.tokens import revoke_grants
from idbroker.release.models import App, Consent
from idbroker.release.policies import AppPolicy
from idbroker.release.pseudonyms import absorbed_ids


def _ids(session: Session, person_id: str) -> list[str]:
    person = resolve_person(session, person_id)
    return [person.id, *absorbed_ids(session, person.id)]


def active_consent(session: Session, person_id: str, client_id: str) -> Consent | None:
    return session.scalars(
        select(Consent)
        .where(
            Consent.person_id.in_(_ids(session, person_id)),  # type: ignore[attr-defined]
            Consent.client_id == client_id,
            Consent.withdrawn_at.is_(None),  # type: ignore[union-attr]
        )
        .order_by(Consent.granted_at.desc())  # type: ignore[attr-defined]
        .limit(1)
    ).first()


def has_consent(session: Session, person_id: str, policy: AppPolicy) -> bool:
    """True when the policy needs no separate consent, or the person gave it for what the policy says now."""
    if not policy.separate_consent:
        return True
    consent = active_consent(session, person_id, policy.client_id)
    return consent is not None and consent.purpose_digest == policy.purpose_digest


def grant(session: Session, person_id: str, policy: AppPolicy, *, actor: str) -> Consent:
    person = resolve_person(session, person_id)
    current = active_consent(session, person.id, policy.client_id)
    if current is not None:
        current.withdrawn_at = utcnow()  # superseded by the consent to what the policy says now
        session.add(current)
    consent = Consent(
        person_id=person.id,
        client_id=policy.client_id,
        claims=sorted(policy.claims),
        purpose_digest=policy.purpose_digest,
    )
    session.add(consent)
    session.flush()
    audit(
        session,
        actor=actor,
        action="consent.grant",
        subject=person.id,
        details={"app": policy.client_id, "claims": consent.claims, "purpose": policy.purpose, "consent": consent.id},
    )
    return consent


def withdraw(session: Session, person_id: str, client_id: str, *, actor: str) -> bool:
    """Withdraw the person's consent to the app; False when there was none."""
    person = resolve_person(session, person_id)
    consent = active_consent(session, person.id, client_id)
    if consent is None:
        return False
    consent.withdrawn_at = utcnow()
    session.add(consent)
    revoked = revoke_grants(
        session, client_id=client_id, person_ids=_ids(session, person.id), reason="consent withdrawn"
    )
    audit(
        session,
        actor=actor,
        action="consent.withdraw",
        subject=person.id,
        details={"app": client_id, "consent": consent.id, "grants_revoked": revoked},
    )
    emit(session, "consent.withdrawn", person.id, app=client_id)  # the app hears it in its change feed
    return True


def consents_of(session: Session, person_id: str) -> list[tuple[Consent, App | None]]:
    """The person's active consents with their apps, for the page where they can withdraw them."""
    rows = session.scalars(
        select(Consent)
        .where(Consent.person_id.in_(_ids(session, person_id)), Consent.withdrawn_at.is_(None))  # type: ignore[attr-defined, union-attr]
        .order_by(Consent.granted_at.desc())  # type: ignore[attr-defined]
    ).all()
    return [(row, session.get(App, row.client_id)) for row in rows]
