"""The app registry: register an app, list, rotate its secret, disable it, and authenticate it.

A confidential app's secret is shown once, when made, and stored only as an argon2 hash (libpass, the
maintained fork of passlib). Redirect URIs are kept exactly as registered and compared exactly. The
sector of the app's pseudonyms is given, or else the single host of its redirect URIs (OIDC Core §8.1).
Every change is in the audit log.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from passlib.hash import argon2
from sqlalchemy import select
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.oidc.rfc6749.tokens import revoke_grants
from idbroker.release.models import App
from idbroker.release.policies import CLIENT_ID_PATTERN, AppPolicy, policy_for

# OWASP's argon2id parameters: 19 MiB, 2 passes, 1 lane (~25 ms to verify on this hardware)
SECRET_HASHER = argon2.using(type="ID", memory_cost=19456, time_cost=2, parallelism=1)
SECRET_BYTES = 32
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
KINDS = ("confidential", "public")


class RegistryError(ValueError):
    """A registration that cannot be made; the message says why."""


class UnknownApp(LookupError):
    pass


@dataclass(frozen=True)
class Registered:
    app: App
    secret: str | None  # shown once; None for a public app


def check_redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise RegistryError(f"redirect URI {uri!r} must be an absolute https:// URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise RegistryError(f"redirect URI {uri!r}: plain http is allowed only on loopback (127.0.0.1, localhost)")
    if parts.fragment or "#" in uri:
        raise RegistryError(f"redirect URI {uri!r} must not have a fragment (RFC 6749 §3.1.2)")
    return uri


def sector_of(redirect_uris: Sequence[str], sector: str | None) -> str:
    if sector:
        if len(sector) > 255 or not sector.isascii() or any(c.isspace() for c in sector):
            raise RegistryError(f"sector {sector!r} must be up to 255 ASCII characters without spaces")
        return sector.lower()
    hosts = {urlsplit(uri).hostname for uri in redirect_uris}
    if len(hosts) != 1:
        raise RegistryError("the redirect URIs have several hosts: give the app's sector explicitly (OIDC Core §8.1)")
    return str(hosts.pop())


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def register(
    session: Session,
    policies_dir: Path,
    *,
    client_id: str,
    name: str,
    redirect_uris: Sequence[str],
    kind: str = "confidential",
    sector: str | None = None,
    post_logout_redirect_uris: Sequence[str] = (),
    actor: str,
) -> Registered:
    """Register an app whose release policy file already exists and is valid."""
    if not re.fullmatch(CLIENT_ID_PATTERN, client_id):
        raise RegistryError(f"client id {client_id!r}: 3–60 of a-z, 0-9, '.', '_', '-'")
    if kind not in KINDS:
        raise RegistryError(f"kind {kind!r}: confidential or public")
    if not name.strip():
        raise RegistryError("an app needs a name")
    if not redirect_uris:
        raise RegistryError("an app needs at least one redirect URI")
    policy_for(policies_dir, client_id)  # the policy must exist and be valid before the app can exist
    if session.get(App, client_id) is not None:
        raise RegistryError(f"app {client_id!r} is already registered")
    uris = list(dict.fromkeys(check_redirect_uri(uri) for uri in redirect_uris))
    logout_uris = list(dict.fromkeys(check_redirect_uri(uri) for uri in post_logout_redirect_uris))
    secret = new_secret() if kind == "confidential" else None
    app = App(
        client_id=client_id,
        name=name.strip(),
        kind=kind,
        secret_hash=SECRET_HASHER.hash(secret) if secret else None,
        redirect_uris=uris,
        post_logout_redirect_uris=logout_uris,
        sector=sector_of(uris, sector),
    )
    session.add(app)
    session.flush()
    audit(
        session,
        actor=actor,
        action="app.register",
        details={"app": client_id, "kind": kind, "sector": app.sector, "redirect_uris": len(uris)},
    )
    return Registered(app, secret)


def get_app(session: Session, client_id: str) -> App:
    app = session.get(App, client_id)
    if app is None:
        raise UnknownApp(f"no app {client_id!r}")
    return app


def list_apps(session: Session) -> list[App]:
    return list(session.scalars(select(App).order_by(App.client_id)))  # type: ignore[arg-type]


def rotate_secret(session: Session, client_id: str, *, actor: str) -> str:
    """A new secret (shown once); the old one stops working at once."""
    app = get_app(session, client_id)
    if app.kind != "confidential":
        raise RegistryError(f"app {client_id!r} is public: it has no secret")
    secret = new_secret()
    app.secret_hash = SECRET_HASHER.hash(secret)
    app.secret_rotated_at = app.updated_at = utcnow()
    session.add(app)
    audit(session, actor=actor, action="app.rotate_secret", details={"app": client_id})
    return secret


def set_enabled(session: Session, client_id: str, enabled: bool, *, actor: str) -> App:
    """Disable (or enable again) an app; a disabled app gets no code, token or answer."""
    app = get_app(session, client_id)
    app.enabled, app.updated_at = enabled, utcnow()
    session.add(app)
    revoked = 0 if enabled else revoke_grants(session, client_id=client_id, reason="app disabled")
    audit(
        session,
        actor=actor,
        action="app.enable" if enabled else "app.disable",
        details={"app": client_id, "grants_revoked": revoked},
    )
    return app


def verify_secret(app: App, secret: str) -> bool:
    """Whether `secret` is the app's secret (constant-time inside argon2); false for a public app."""
    if app.kind != "confidential" or not app.secret_hash or not secret:
        return False
    try:
        return bool(SECRET_HASHER.verify(secret, app.secret_hash))
    except (ValueError, TypeError):
        return False


def app_policy(policies_dir: Path, app: App) -> AppPolicy:
    return policy_for(policies_dir, app.client_id)
