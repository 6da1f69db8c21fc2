"""Storing what the provider hands out: grants, authorization codes, access and refresh tokens.

Every code and token is 256 random bits, given out once and stored only as its SHA-256 digest (a
database leak gives no usable token). A grant is one sign-in of a person to an app; revoking it
revokes every code and token that came from it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.db import NOT_READ, DriverStatement, put_ahead, take_ahead
from idbroker.oidc.models import AuthorizationCode, Grant, Token
from idbroker.release.models import App

TOKEN_BYTES = 32


def new_secret_value() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Issued:
    value: str  # handed to the client, never stored
    row: Token


def new_grant(
    session: Session, *, client_id: str, person_id: str, scope: str, auth_time: datetime, session_id: str | None
) -> Grant:
    grant = Grant(
        id=secrets.token_hex(16),
        client_id=client_id,
        person_id=person_id,
        scope=scope,
        auth_time=auth_time,
        session_id=session_id,
    )
    session.add(grant)
    session.flush()
    return grant


def new_code(
    session: Session,
    grant: Grant,
    *,
    redirect_uri: str,
    nonce: str | None,
    code_challenge: str | None,
    code_challenge_method: str | None,
    lifetime_seconds: int,
) -> str:
    value = new_secret_value()
    session.add(
        AuthorizationCode(
            digest=digest(value),
            grant_id=grant.id,
            client_id=grant.client_id,
            redirect_uri=redirect_uri,
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            expires_at=utcnow() + timedelta(seconds=lifetime_seconds),
        )
    )
    return value


def new_token(
    session: Session, *, kind: str, client_id: str, grant_id: str | None, scope: str, lifetime_seconds: int
) -> Issued:
    value = new_secret_value()
    now = utcnow()
    row = Token(
        digest=digest(value),
        kind=kind,
        client_id=client_id,
        grant_id=grant_id,
        scope=scope,
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime_seconds),
    )
    session.add(row)
    return Issued(value, row)


def find_code(session: Session, value: str) -> AuthorizationCode | None:
    statement = select(AuthorizationCode).where(AuthorizationCode.digest == digest(value)).with_for_update()
    return session.scalars(statement).first()


def find_token(session: Session, value: str, *, lock: bool = False) -> Token | None:
    statement = select(Token).where(Token.digest == digest(value))
    return session.scalars(statement.with_for_update() if lock else statement).first()


@dataclass(frozen=True, slots=True)
class BearerApp:
    """The app of a usable token, as the release gate needs it; read with the token on every request, so a
    disabled app is refused at once."""

    client_id: str
    sector: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class Bearer:
    """A usable access token: its scope, the signed-in person (None for an app's own, client-credentials token)
    and its app, read in one query."""

    scope: str
    person_id: str | None
    app: BearerApp


_TOKEN = Token.__table__.c  # type: ignore[attr-defined]
_GRANT = Grant.__table__.c  # type: ignore[attr-defined]
_APP = App.__table__.c  # type: ignore[attr-defined]
# The token, its grant and its app by the token's digest: one statement on the driver, no ORM objects.
_ACCESS_COLUMNS = (
    _TOKEN.kind,
    _TOKEN.scope,
    _TOKEN.expires_at,
    _TOKEN.revoked_at,
    _TOKEN.grant_id,
    _GRANT.person_id,
    _GRANT.revoked_at,
    _APP.client_id,
    _APP.sector,
    _APP.enabled,
)
_ACCESS_FROM = (
    select(*_ACCESS_COLUMNS, _TOKEN.digest)
    .select_from(Token.__table__)  # type: ignore[attr-defined]
    .join(App.__table__, _APP.client_id == _TOKEN.client_id)  # type: ignore[attr-defined]
    .outerjoin(Grant.__table__, _GRANT.id == _TOKEN.grant_id)  # type: ignore[attr-defined]
)
_ACCESS = DriverStatement(_ACCESS_FROM.where(_TOKEN.digest == bindparam("digest")))
_ACCESS_MANY = _ACCESS_FROM.where(_TOKEN.digest.in_(bindparam("digests", expanding=True)))


def read_access_ahead(session: Session, values: Sequence[str]) -> dict[str, tuple[str | None, str]]:
    """Read the rows of many tokens in one statement for `find_access` to take (`idbroker.db.take_ahead`), once
    per time a value is in `values`; token value → (the grant's person ID or None, the app's sector), for each
    token found (usable or not: `find_access` decides)."""
    uses = Counter(values)
    by_digest = {digest(value): value for value in uses}
    found: dict[str, tuple[str | None, str]] = {}
    rows = {row[-1]: tuple(row) for row in session.execute(_ACCESS_MANY, {"digests": list(by_digest)})}
    for key, value in by_digest.items():
        row = rows.get(key)
        put_ahead(session, ("access", key), [] if row is None else [row], uses=uses[value])
        if row is not None:
            found[value] = (row[5], row[8])
    return found


def find_access(session: Session, value: str) -> Bearer:
    """The access token `value` if it can be used now; `Unusable` otherwise (also for a disabled app)."""
    key = digest(value)
    rows = take_ahead(session, ("access", key))
    if rows is NOT_READ:
        rows, _ = _ACCESS.run(session, {"digest": key})
    if not rows:
        raise Unusable
    kind, scope, expires_at, revoked_at, grant_id, person_id, grant_revoked_at, client_id, sector, enabled, _ = rows[0]
    if kind != "access" or revoked_at or expires_at <= utcnow() or not enabled:
        raise Unusable
    if grant_id is not None and (person_id is None or grant_revoked_at is not None):
        raise Unusable
    return Bearer(scope, person_id, BearerApp(client_id, sector, enabled))


class Unusable(Exception):
    """The token cannot be used now: unknown, of another kind, expired, revoked, rotated, or its grant revoked."""


def live_grant(session: Session, token: Token | None, *, kind: str) -> Grant | None:
    """The grant of a usable token (None for a client-credentials token); `Unusable` otherwise."""
    if token is None or token.kind != kind or token.revoked_at or token.used_at or token.expires_at <= utcnow():
        raise Unusable
    if token.grant_id is None:
        return None
    grant = session.get(Grant, token.grant_id)
    if grant is None or grant.revoked_at is not None:
        raise Unusable
    return grant


def revoke_grant(session: Session, grant_id: str, *, reason: str) -> None:
    now = utcnow()
    session.execute(
        update(Grant)
        .where(Grant.id == grant_id, Grant.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)  # type: ignore[union-attr]
    )
    session.execute(
        update(Token).where(Token.grant_id == grant_id, Token.revoked_at.is_(None)).values(revoked_at=now)  # type: ignore[arg-type, union-attr]
    )


def revoke_token(session: Session, token: Token) -> None:
    token.revoked_at = token.revoked_at or utcnow()
    session.add(token)


def revoke_grants(session: Session, *, client_id: str, person_ids: Sequence[str] | None = None, reason: str) -> int:
    """Revoke every live grant of an app (for these people only, when given); how many were revoked."""
    statement = select(Grant.id).where(Grant.client_id == client_id, Grant.revoked_at.is_(None))  # type: ignore[union-attr]
    if person_ids is not None:
        statement = statement.where(Grant.person_id.in_(list(person_ids)))  # type: ignore[attr-defined]
    ids = list(session.scalars(statement))
    for grant_id in ids:
        revoke_grant(session, grant_id, reason=reason)
    if person_ids is None:  # the app's own (client-credentials) tokens too
        session.execute(
            update(Token)
            .where(Token.client_id == client_id, Token.grant_id.is_(None), Token.revoked_at.is_(None))  # type: ignore[union-attr]
            .values(revoked_at=utcnow())
        )
    return len(ids)
