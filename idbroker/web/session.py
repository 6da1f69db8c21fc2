"""Server-side login sessions: the cookie holds only a random value, the table only its SHA-256.

A login lasts at most `session_ttl_seconds` and ends after `session_idle_seconds` without a request. Each
login gets a fresh value (no fixation: whatever cookie came before is dropped), and `POST /logout` ends it.

For routes and pages:
- `current_login(request) -> Login | None` — who is signed in; their staff roles are re-read on every request.
- `require_login` — a dependency; without a login a page redirects (303) to `/login?next=…`, an API gets 401.
- `start_login(request, response, db, person_id=, uid=, auth_time=)` / `end_login(request, response, db)`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import delete, or_
from sqlmodel import Field, Session, SQLModel

from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.db import session_scope
from idbroker.directory.queries import PersonNotFound, resolve_person
from idbroker.staff.roles import roles_of

COOKIE_NAME = "idb_session"
MAX_COOKIE_LENGTH = 128
_UNSET = object()
TOUCH_EVERY = timedelta(seconds=30)  # `last_seen_at` is written at most this often (idleness is coarser)


class WebSession(SQLModel, table=True):
    __tablename__ = "web_session"

    id: str = Field(primary_key=True, max_length=64)  # hex SHA-256 of the cookie value; the value is never stored
    person_id: str = Field(foreign_key="person.id", max_length=32, index=True)
    uid: str = Field(max_length=64)  # the CAS uid the person signed in with
    auth_time: datetime  # when the person authenticated (OIDC max_age and auth_time need it)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


@dataclass(frozen=True)
class Login:
    """The person behind a request."""

    session_id: str
    person_id: str
    uid: str
    auth_time: datetime
    roles: frozenset[str]

    @property
    def actor(self) -> str:
        """How this person appears as the actor of audit events."""
        return f"person:{self.person_id}"


class LoginRequired(Exception):
    """Raised by `require_login`; pages turn it into a redirect to `/login?next=…`, APIs into 401."""

    def __init__(self, next_path: str) -> None:
        super().__init__("login required")
        self.next_path = next_path


def session_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# --- the store (no web framework) ------------------------------------------------------------------------


def open_session(
    db: Session, settings: Settings, *, person_id: str, uid: str, auth_time: datetime, now: datetime | None = None
) -> str:
    """A new session; returns the cookie value (shown once, stored only as its hash)."""
    now = now or utcnow()
    purge_expired(db, settings, now)
    value = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=settings.session_ttl_seconds)
    db.add(
        WebSession(
            id=session_hash(value),
            person_id=person_id,
            uid=uid,
            auth_time=auth_time,
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
        )
    )
    db.flush()
    return value


def find_session(db: Session, settings: Settings, value: str, now: datetime | None = None) -> WebSession | None:
    """The live session of a cookie value, touched; an expired or idle one is deleted and gives None."""
    if not value or len(value) > MAX_COOKIE_LENGTH:
        return None
    now = now or utcnow()
    row = db.get(WebSession, session_hash(value))
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at + timedelta(seconds=settings.session_idle_seconds) <= now:
        db.delete(row)
        db.flush()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        db.add(row)
    return row


def close_session(db: Session, value: str) -> None:
    db.exec(delete(WebSession).where(WebSession.id == session_hash(value)))  # type: ignore[call-overload,arg-type]


def purge_expired(db: Session, settings: Settings, now: datetime) -> None:
    idle_before = now - timedelta(seconds=settings.session_idle_seconds)
    db.exec(
        delete(WebSession).where(or_(WebSession.expires_at <= now, WebSession.last_seen_at <= idle_before))  # type: ignore[call-overload,arg-type]
    )


# --- the web side ----------------------------------------------------------------------------------------


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def is_https(settings: Settings) -> bool:
    return settings.public_url.lower().startswith("https://")


def set_private_cookie(response: Response, settings: Settings, name: str, value: str) -> None:
    """A cookie for this site only: HttpOnly, SameSite=Lax, Secure when the broker is served over HTTPS."""
    response.set_cookie(name, value, path="/", httponly=True, samesite="lax", secure=is_https(settings))


def _login_of(db: Session, row: WebSession) -> Login | None:
    try:
        person_id = resolve_person(db, row.person_id).id  # a merge since login: the survivor
    except PersonNotFound:
        return None
    return Login(row.id, person_id, row.uid, row.auth_time, roles_of(db, row.uid))


def current_login(request: Request) -> Login | None:
    """Who is signed in (None if nobody); read once per request."""
    cached = getattr(request.state, "idb_login", _UNSET)
    if cached is not _UNSET:
        return cached
    login = None
    value = request.cookies.get(COOKIE_NAME)
    if value:
        with session_scope(request.app.state.engine) as db:
            row = find_session(db, settings_of(request), value)
            login = _login_of(db, row) if row is not None else None
    request.state.idb_login = login
    return login


def request_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def require_login(request: Request) -> Login:
    """Dependency: the signed-in person, or `LoginRequired` (a redirect to the login for pages)."""
    login = current_login(request)
    if login is None:
        raise LoginRequired(request_path(request))
    return login


def start_login(
    request: Request, response: Response, db: Session, *, person_id: str, uid: str, auth_time: datetime
) -> Login:
    """Sign the person in with a fresh session value; any session the browser had is ended first."""
    settings = settings_of(request)
    previous = request.cookies.get(COOKIE_NAME)
    if previous:
        close_session(db, previous)
    value = open_session(db, settings, person_id=person_id, uid=uid, auth_time=auth_time)
    set_private_cookie(response, settings, COOKIE_NAME, value)
    login = Login(session_hash(value), person_id, uid, auth_time, roles_of(db, uid))
    request.state.idb_login = login
    request.state.idb_session_value = value  # the CSRF token of the rest of this request derives from it
    return login


def end_login(request: Request, response: Response, db: Session) -> None:
    value = request.cookies.get(COOKIE_NAME)
    if value:
        close_session(db, value)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=is_https(settings_of(request)))
    request.state.idb_login = None
