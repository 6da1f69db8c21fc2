"""The authorization-code grant (RFC 6749 §4.1, OpenID Connect Core §3.1) with PKCE (RFC 7636).

Authorization request (§4.1.1): an unknown client or a redirect URI that does not match a registered one
exactly is never redirected to (§4.1.2.1: the person sees an error page); any other error goes back to
the app as `error` and `state`. Unknown parameters are ignored; a repeated one is an error (§3.1).
Public apps must send an S256 code challenge.

Token request (§4.1.3): the code is single-use. A code presented twice revokes everything it issued
(§4.1.2 and §10.5): its grant, with every token. The redirect URI must be the one of the request and the
code verifier must match the challenge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.oidc import rfc7636
from idbroker.oidc.id_token import make_id_token
from idbroker.oidc.models import Grant
from idbroker.oidc.provider import Provider
from idbroker.oidc.rfc6749.errors import OAuthError, invalid_grant, invalid_request
from idbroker.oidc.rfc6749.tokens import find_code, new_code, new_grant, new_token, revoke_grant
from idbroker.release.claims import SCOPES_SUPPORTED, claims_for_scopes
from idbroker.release.models import App
from idbroker.release.policies import policy_for

SINGLE_VALUED = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "prompt", "max_age",
    "code_challenge", "code_challenge_method", "login_hint", "ui_locales", "id_token_hint", "response_mode",
)  # fmt: skip
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
REAUTH_MARKER = "idb_reauth_after"  # ours: "the person signed in again after this time" (prompt=login, max_age)


class UnsafeRedirect(Exception):
    """The request cannot be answered at its redirect URI (unknown client, unregistered URI)."""


class RedirectError(OAuthError):
    """An error returned to the app at its (verified) redirect URI."""

    def __init__(self, request: AuthorizationRequest, error: str, description: str) -> None:
        super().__init__(error, description)
        self.request = request

    def location(self, issuer: str) -> str:
        return response_location(
            self.request.redirect_uri,
            {"error": self.error, "error_description": self.description, "state": self.request.state, "iss": issuer},
        )


@dataclass(frozen=True)
class AuthorizationRequest:
    app: App
    redirect_uri: str
    params: dict[str, str]  # the recognised parameters, as given

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    @property
    def nonce(self) -> str | None:
        return self.params.get("nonce")

    @property
    def prompt(self) -> frozenset[str]:
        return frozenset(self.params.get("prompt", "").split())

    @property
    def max_age(self) -> int | None:
        value = self.params.get("max_age")
        return int(value) if value is not None else None

    @property
    def reauth_after(self) -> int | None:
        value = self.params.get(REAUTH_MARKER)
        return int(value) if value and value.isdigit() else None

    @property
    def scope(self) -> str:
        requested = self.params.get("scope", "").split()
        return " ".join(s for s in dict.fromkeys(requested) if s in SCOPES_SUPPORTED)


def response_location(redirect_uri: str, values: Mapping[str, str | None]) -> str:
    """The redirect URI with `values` added to its query (its own query kept, §3.1.2)."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in values.items() if value is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def parse_request(session: Session, pairs: Sequence[tuple[str, str]]) -> AuthorizationRequest:
    """Validate an authorization request; `UnsafeRedirect` or `RedirectError` when it cannot be served."""
    seen: dict[str, str] = {}
    repeated = set()
    for key, value in pairs:
        if key in SINGLE_VALUED or key == REAUTH_MARKER:
            if key in seen:
                repeated.add(key)
            seen[key] = value
    client_id, redirect_uri = seen.get("client_id"), seen.get("redirect_uri")
    if not client_id or "client_id" in repeated:
        raise UnsafeRedirect("the request names no client (client_id)")
    app = session.get(App, client_id)
    if app is None:
        raise UnsafeRedirect(f"unknown client {client_id!r}")
    if not redirect_uri or "redirect_uri" in repeated:
        raise UnsafeRedirect("the request has no redirect_uri")
    if redirect_uri not in app.redirect_uris:
        raise UnsafeRedirect("the redirect_uri is not registered for this client (exact match required)")
    request = AuthorizationRequest(app=app, redirect_uri=redirect_uri, params=seen)
    if repeated:
        raise RedirectError(request, "invalid_request", f"parameter repeated: {', '.join(sorted(repeated))}")
    if not app.enabled:
        raise RedirectError(request, "unauthorized_client", "this app is disabled")
    response_type = seen.get("response_type")
    if not response_type:
        raise RedirectError(request, "invalid_request", "response_type is required")
    if response_type != "code":
        raise RedirectError(request, "unsupported_response_type", "only the code flow is supported")
    if seen.get("response_mode", "query") != "query":
        raise RedirectError(request, "invalid_request", "only response_mode=query is supported")
    if "openid" not in seen.get("scope", "").split():
        raise RedirectError(request, "invalid_scope", "scope must include openid")
    prompt = request.prompt
    if not prompt <= PROMPTS or ("none" in prompt and len(prompt) > 1):
        raise RedirectError(request, "invalid_request", "prompt: none alone, or any of login, consent")
    max_age = seen.get("max_age")
    if max_age is not None and (not max_age.isdigit() or len(max_age) > 9):
        raise RedirectError(request, "invalid_request", "max_age must be a number of seconds")
    problem = rfc7636.check_challenge(seen.get("code_challenge"), seen.get("code_challenge_method"))
    if problem:
        raise RedirectError(request, "invalid_request", problem)
    if app.kind == "public" and not seen.get("code_challenge"):
        raise RedirectError(request, "invalid_request", "a public client must use PKCE (code_challenge, S256)")
    return request


def issue_code(
    session: Session,
    provider: Provider,
    request: AuthorizationRequest,
    *,
    person_id: str,
    auth_time: datetime,
    session_id: str | None,
    issuer: str,
) -> str:
    """A new grant with its code; returns where to send the person (the app's redirect URI)."""
    grant = new_grant(
        session,
        client_id=request.app.client_id,
        person_id=person_id,
        scope=request.scope,
        auth_time=auth_time,
        session_id=session_id,
    )
    code = new_code(
        session,
        grant,
        redirect_uri=request.redirect_uri,
        nonce=request.nonce,
        code_challenge=request.params.get("code_challenge"),
        code_challenge_method=request.params.get("code_challenge_method", "S256")
        if request.params.get("code_challenge")
        else None,
        lifetime_seconds=provider.settings.oidc_code_seconds,
    )
    return response_location(request.redirect_uri, {"code": code, "state": request.state, "iss": issuer})


def exchange_code(
    session: Session, provider: Provider, app: App, form: Mapping[str, str], *, issuer: str
) -> dict[str, Any]:
    """§4.1.3–4.1.4: the tokens for a code, once."""
    value = form.get("code")
    if not value:
        raise invalid_request("code is required")
    code = find_code(session, value)
    if code is None or code.client_id != app.client_id:
        raise invalid_grant("unknown code")
    if code.used_at is not None:
        revoke_grant(session, code.grant_id, reason="code replayed")
        raise invalid_grant("this code was already used: the tokens it issued are revoked")
    now = utcnow()
    code.used_at = now
    session.add(code)
    if code.expires_at <= now:
        raise invalid_grant("the code has expired")
    if form.get("redirect_uri") != code.redirect_uri:
        raise invalid_grant("redirect_uri differs from the authorization request's")
    if code.code_challenge is not None:
        if not rfc7636.verify(form.get("code_verifier"), code.code_challenge):
            raise invalid_grant("code_verifier does not match the code challenge")
    elif form.get("code_verifier") is not None:
        raise invalid_grant("code_verifier given but the authorization request had no code_challenge")
    grant = session.get(Grant, code.grant_id)
    if grant is None or grant.revoked_at is not None:
        raise invalid_grant("the sign-in this code came from was revoked")
    return issue_tokens(session, provider, app, grant, issuer=issuer, nonce=code.nonce, with_id_token=True)


def issue_tokens(
    session: Session,
    provider: Provider,
    app: App,
    grant: Grant,
    *,
    issuer: str,
    nonce: str | None = None,
    with_id_token: bool,
    scope: str | None = None,
) -> dict[str, Any]:
    settings = provider.settings
    scope = grant.scope if scope is None else scope
    release = None
    if with_id_token:  # released first: a refusal leaves no token behind
        policy = policy_for(settings.policies_dir, app.client_id)
        release = provider.gate.release(
            session, app, policy, grant.person_id, wanted=claims_for_scopes(scope.split()), via="id_token"
        )
    access = new_token(
        session,
        kind="access",
        client_id=app.client_id,
        grant_id=grant.id,
        scope=scope,
        lifetime_seconds=settings.oidc_access_token_seconds,
    )
    refresh = new_token(
        session,
        kind="refresh",
        client_id=app.client_id,
        grant_id=grant.id,
        scope=grant.scope,
        lifetime_seconds=settings.oidc_refresh_token_seconds,
    )
    body: dict[str, Any] = {
        "access_token": access.value,
        "token_type": "Bearer",
        "expires_in": settings.oidc_access_token_seconds,
        "refresh_token": refresh.value,
        "scope": scope,
    }
    if release is not None:
        body["id_token"] = make_id_token(
            provider.keys.keys(session),
            issuer=issuer,
            client_id=app.client_id,
            claims=release.claims,
            auth_time=grant.auth_time,
            now=utcnow(),
            lifetime_seconds=settings.oidc_id_token_seconds,
            nonce=nonce,
            access_token=access.value,
        )
    return body
