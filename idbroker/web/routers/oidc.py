"""The OpenID Connect provider over HTTP: discovery, JWKS, authorize (with the consent page), token,
userinfo, introspection, revocation, RP-initiated logout, and the person's list of consents.

Only HTTP here: each route reads the request, calls `idbroker.oidc` in one transaction and writes the
answer. A protocol error (`OAuthError`) still commits what was done before it on purpose (a replayed
code's revocation); any other failure rolls everything back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.security import HTTPBasic, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idbroker.clock import utcnow
from idbroker.db import is_sqlite
from idbroker.oidc.discovery import metadata
from idbroker.oidc.jwks import jwks_document
from idbroker.oidc.logout import LogoutRefused, confirmation_fields, parse_logout
from idbroker.oidc.prompt import Need, login_need
from idbroker.oidc.provider import Provider
from idbroker.oidc.rfc6749.authorization_code import (
    REAUTH_MARKER,
    AuthorizationRequest,
    RedirectError,
    UnsafeRedirect,
    issue_code,
    parse_request,
)
from idbroker.oidc.rfc6749.errors import InvalidClient, OAuthError
from idbroker.oidc.rfc6749.token_endpoint import token_request
from idbroker.oidc.rfc7009 import revoke
from idbroker.oidc.rfc7662 import introspect
from idbroker.oidc.userinfo import bearer_token, userinfo
from idbroker.policy import PolicyError
from idbroker.release import consent, people
from idbroker.release.claims import claims_for_scopes
from idbroker.release.policies import AppPolicy, policy_for
from idbroker.web.csrf import token_is_valid, verify_csrf
from idbroker.web.grouped import GroupWriter
from idbroker.web.session import Login, current_login, end_login, require_login
from idbroker.web.templates import render

router = APIRouter(tags=["oidc"])


class DocumentedBasic(HTTPBasic):
    """Names client_secret_basic in the OpenAPI document; the header itself is read by the grant code
    (RFC 6749 §2.3.1 form-encodes id and secret, which FastAPI's own parsing does not undo)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class DocumentedBearer(HTTPBearer):
    """Names the bearer token in the OpenAPI document; `idbroker.oidc.userinfo.bearer_token` reads it."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


basic_auth = DocumentedBasic(description="client_secret_basic (RFC 6749 §2.3.1)")
bearer_auth = DocumentedBearer(description="An access token (RFC 6750)")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_provider_lock = threading.Lock()

Text = str | None


# --- shared with the apps API ---------------------------------------------------------------------------


def provider_of(request: Request) -> Provider:
    state = request.app.state
    with _provider_lock:
        if getattr(state, "idb_oidc_provider", None) is None:
            state.idb_oidc_provider = Provider.create(state.engine, state.settings)
        return state.idb_oidc_provider


async def provider_ready(request: Request) -> Provider:
    """`provider_of` for a grouped work (`idbroker.web.grouped`): made, the first time, in a thread of its own
    before the work is queued, because its signing key is made in a transaction of its own, which inside a
    group's transaction would wait for that very transaction (on SQLite) — and a group reads ahead before any
    work runs."""
    provider = getattr(request.app.state, "idb_oidc_provider", None)
    return provider if provider is not None else await asyncio.to_thread(provider_of, request)


_writer_locks: dict[int, threading.Lock] = {}


@contextmanager
def _one_writer(engine: Engine) -> Iterator[None]:
    """On SQLite, the threads of this process take turns in Python: waiting on SQLite's busy handler
    (which sleeps and polls) instead costs throughput and puts whole sleeps into the latency tail."""
    if not is_sqlite(engine):
        yield
        return
    with _provider_lock:
        lock = _writer_locks.setdefault(id(engine), threading.Lock())
    with lock:
        yield


@contextmanager
def unit(request: Request) -> Iterator[Session]:
    """One transaction; kept when the protocol answers with an error, rolled back on any other failure."""
    engine = request.app.state.engine
    with _one_writer(engine), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except OAuthError:
            session.commit()
            raise
        except BaseException:
            session.rollback()
            raise


def grouped(request: Request) -> GroupWriter:
    """The process's grouped-transaction writer for the hot release routes (`idbroker.web.grouped`)."""
    state = request.app.state
    writer = getattr(state, "idb_grouped_writer", None)
    if writer is None:
        with _provider_lock:
            writer = getattr(state, "idb_grouped_writer", None)
            if writer is None:
                writer = GroupWriter(state.engine, _one_writer, read_ahead=people.read_ahead)
                state.idb_grouped_writer = writer
    return writer


def given(**fields: str | None) -> dict[str, str]:
    """The form fields that were sent (and not empty)."""
    return {name: value for name, value in fields.items() if value}


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient) and exc.basic:
        headers["WWW-Authenticate"] = 'Basic realm="idbroker"'
    elif exc.error in ("invalid_token", "invalid_request") and exc.status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="idbroker", error="{exc.error}"'
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


# --- response schemas -------------------------------------------------------------------------------------


class OAuthErrorBody(BaseModel):
    error: str = Field(description="RFC 6749 §5.2 error code, e.g. invalid_grant, invalid_client.")
    error_description: str | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = Field(description="Always `Bearer`.")
    expires_in: int
    scope: str
    refresh_token: str | None = Field(default=None, description="Single use: each refresh returns a new one.")
    id_token: str | None = Field(default=None, description="For the authorization-code grant.")


class Claims(BaseModel):
    model_config = ConfigDict(extra="allow")
    sub: str = Field(description="The app's pairwise pseudonym of the person.")


class Introspection(BaseModel):
    model_config = ConfigDict(extra="allow")
    active: bool


class JwkSet(BaseModel):
    keys: list[dict[str, Any]]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorBody, "description": "A malformed or refused request"},
    401: {"model": OAuthErrorBody, "description": "Client authentication failed, or no valid token"},
}
HTML = {"content": {"text/html": {}}}


# --- discovery and keys ----------------------------------------------------------------------------------


@router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata (Discovery 1.0 §3)")
def discovery(request: Request) -> dict[str, Any]:
    return metadata(provider_of(request).issuer)


@router.get("/oidc/jwks", summary="The provider's public signing keys (RFC 7517)", response_model=JwkSet)
def jwks(request: Request) -> JSONResponse:
    provider_of(request)  # makes the first key on first use
    with unit(request) as session:
        document = jwks_document(session)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})


# --- authorize -------------------------------------------------------------------------------------------


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


def _without(pairs: Sequence[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """The request with one prompt value removed (after it has been honoured) and our marker dropped."""
    kept: list[tuple[str, str]] = []
    for key, item in pairs:
        if key == REAUTH_MARKER:
            continue
        if key == name:
            item = " ".join(part for part in item.split() if part != value)
            if not item:
                continue
        kept.append((key, item))
    return kept


def _claims_shown(policy: AppPolicy, scope: str) -> list[str]:
    wanted = claims_for_scopes(scope.split()) | {"pseudonym"}
    return [claim for claim in policy.claims if claim in wanted]


def _authorize(request: Request, pairs: list[tuple[str, str]]) -> Response:
    provider = provider_of(request)
    issuer = provider.issuer
    login = current_login(request)  # before the transaction: it reads the session in its own
    with unit(request) as session:
        try:
            auth = parse_request(session, pairs)
        except UnsafeRedirect as exc:
            return render(request, "consent_error.html", status_code=400, message=str(exc))
        except RedirectError as exc:
            return _redirect(exc.location(issuer))
        need = login_need(
            prompt=auth.prompt,
            max_age=auth.max_age,
            auth_time=login.auth_time if login else None,
            reauth_after=auth.reauth_after,
            now=utcnow(),
        )
        if need is Need.LOGIN_REQUIRED:
            return _redirect(RedirectError(auth, "login_required", "the person is not signed in").location(issuer))
        if need is Need.LOGIN:
            again = login is not None
            pairs = _without(pairs, "prompt", "login")
            if again:
                pairs.append((REAUTH_MARKER, str(int(utcnow().timestamp()))))
            back = "/oidc/authorize?" + urlencode(pairs)
            return RedirectResponse(
                f"/login?next={quote(back, safe='')}" + ("&renew=true" if again else ""), status_code=303
            )
        assert login is not None
        try:
            policy = policy_for(provider.settings.policies_dir, auth.app.client_id)
        except PolicyError:
            return _redirect(
                RedirectError(auth, "server_error", "the app's release policy is invalid").location(issuer)
            )
        asked = "consent" in auth.prompt
        if asked or not consent.has_consent(session, login.person_id, policy):
            if "none" in auth.prompt:
                return _redirect(RedirectError(auth, "consent_required", "separate consent is needed").location(issuer))
            return _consent_page(request, auth, policy, _without(pairs, "prompt", "consent"))
        location = issue_code(
            session,
            provider,
            auth,
            person_id=login.person_id,
            auth_time=login.auth_time,
            session_id=login.session_id,
            issuer=issuer,
        )
    return _redirect(location)


def _consent_page(
    request: Request, auth: AuthorizationRequest, policy: AppPolicy, pairs: list[tuple[str, str]]
) -> Response:
    return render(
        request,
        "consent.html",
        app=auth.app,
        policy=policy,
        claims=_claims_shown(policy, auth.scope),
        request_query=urlencode(pairs),
    )


AUTHORIZE_RESPONSES: dict[int | str, dict[str, Any]] = {
    302: {"description": "To the app's redirect URI with `code` (or `error`) and `state`, `iss`"},
    303: {"description": "To the sign-in (`/login?next=…`)"},
    200: {"description": "The consent page", **HTML},
    400: {"description": "Unknown client or unregistered redirect URI: an error page, never a redirect", **HTML},
}


@router.get(
    "/oidc/authorize",
    summary="Authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): the code flow with PKCE",
    response_class=HTMLResponse,
    responses=AUTHORIZE_RESPONSES,
)
def authorize(
    request: Request,
    response_type: Annotated[Text, Query(description="`code`")] = None,
    client_id: Text = None,
    redirect_uri: Annotated[Text, Query(description="Exactly as registered")] = None,
    scope: Annotated[Text, Query(description="`openid` and any of profile, email, phone, campus")] = None,
    state: Text = None,
    nonce: Text = None,
    prompt: Annotated[Text, Query(description="none, login or consent")] = None,
    max_age: Text = None,
    code_challenge: Text = None,
    code_challenge_method: Annotated[Text, Query(description="S256")] = None,
    login_hint: Text = None,
    ui_locales: Text = None,
    id_token_hint: Text = None,
) -> Response:
    return _authorize(request, list(request.query_params.multi_items()))


@router.post(
    "/oidc/authorize",
    summary="Authorization endpoint, form-encoded (OIDC Core §3.1.2.1)",
    response_class=HTMLResponse,
    responses=AUTHORIZE_RESPONSES,
)
async def authorize_post(
    request: Request,
    response_type: Annotated[Text, Form()] = None,
    client_id: Annotated[Text, Form()] = None,
    redirect_uri: Annotated[Text, Form()] = None,
    scope: Annotated[Text, Form()] = None,
    state: Annotated[Text, Form()] = None,
    nonce: Annotated[Text, Form()] = None,
    prompt: Annotated[Text, Form()] = None,
    max_age: Annotated[Text, Form()] = None,
    code_challenge: Annotated[Text, Form()] = None,
    code_challenge_method: Annotated[Text, Form()] = None,
) -> Response:
    form = await request.form()
    pairs = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    return await run_in_threadpool(_authorize, request, pairs)


@router.post(
    "/oidc/consent",
    summary="The person's answer on the consent page",
    dependencies=[Depends(verify_csrf)],
    status_code=303,
    responses={
        303: {"description": "Back to the authorization (allowed) or to the app with access_denied"},
        400: {"description": "The authorization request is no longer valid", **HTML},
        401: {"description": "Not signed in"},
        403: {"description": "Missing or wrong CSRF token"},
    },
)
def consent_answer(
    request: Request,
    login: Annotated[Login, Depends(require_login)],
    request_query: Annotated[str, Form(max_length=8000)],
    decision: Annotated[str, Form(pattern="^(allow|deny)$")],
) -> Response:
    pairs = parse_qsl(request_query, keep_blank_values=True)
    provider = provider_of(request)
    with unit(request) as session:
        try:
            auth = parse_request(session, pairs)
        except UnsafeRedirect as exc:
            return render(request, "consent_error.html", status_code=400, message=str(exc))
        except RedirectError as exc:
            return RedirectResponse(exc.location(provider.issuer), status_code=303)
        if decision == "deny":
            denied = RedirectError(auth, "access_denied", "the person declined")
            return RedirectResponse(denied.location(provider.issuer), status_code=303)
        policy = policy_for(provider.settings.policies_dir, auth.app.client_id)
        if policy.separate_consent:
            consent.grant(session, login.person_id, policy, actor=login.actor)
    return RedirectResponse("/oidc/authorize?" + request_query, status_code=303)


# --- token, userinfo, introspection, revocation ---------------------------------------------------------


@router.post(
    "/oidc/token",
    summary="Token endpoint (RFC 6749 §3.2): authorization_code, refresh_token, client_credentials",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    dependencies=[Depends(basic_auth)],
)
def token(
    request: Request,
    grant_type: Annotated[Text, Form()] = None,
    code: Annotated[Text, Form()] = None,
    redirect_uri: Annotated[Text, Form()] = None,
    code_verifier: Annotated[Text, Form()] = None,
    refresh_token: Annotated[Text, Form()] = None,
    scope: Annotated[Text, Form()] = None,
    client_id: Annotated[Text, Form()] = None,
    client_secret: Annotated[Text, Form()] = None,
) -> Response:
    form = given(
        grant_type=grant_type,
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        refresh_token=refresh_token,
        scope=scope,
        client_id=client_id,
        client_secret=client_secret,
    )
    provider = provider_of(request)
    try:
        with unit(request) as session:
            body = token_request(session, provider, request.headers.get("authorization"), form, issuer=provider.issuer)
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(body, headers=NO_STORE)


async def _userinfo(request: Request, form: dict[str, str] | None) -> Response:
    try:
        value = bearer_token(request.headers.get("authorization"), form)
        provider = await provider_ready(request)
        claims = await grouped(request).run(lambda session: userinfo(session, provider, value), people.Ahead(value))
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(claims, headers=NO_STORE)


@router.get(
    "/oidc/userinfo",
    summary="UserInfo (OIDC Core §5.3): the claims the app's policy allows",
    response_model=Claims,
    responses=ERRORS,
    dependencies=[Depends(bearer_auth)],
)
async def userinfo_get(request: Request) -> Response:
    return await _userinfo(request, None)


@router.post(
    "/oidc/userinfo",
    summary="UserInfo by POST, the token in the header or the form body (RFC 6750 §2.2)",
    response_model=Claims,
    responses=ERRORS,
    dependencies=[Depends(bearer_auth)],
)
async def userinfo_post(request: Request, access_token: Annotated[Text, Form()] = None) -> Response:
    return await _userinfo(request, given(access_token=access_token))


@router.post(
    "/oidc/introspect",
    summary="Token introspection (RFC 7662), for the app's own tokens",
    response_model=Introspection,
    responses=ERRORS,
    dependencies=[Depends(basic_auth)],
)
def introspection(
    request: Request,
    token: Annotated[Text, Form()] = None,
    token_type_hint: Annotated[Text, Form()] = None,
    client_id: Annotated[Text, Form()] = None,
    client_secret: Annotated[Text, Form()] = None,
) -> Response:
    form = given(token=token, client_id=client_id, client_secret=client_secret)
    provider = provider_of(request)
    try:
        with unit(request) as session:
            body = introspect(session, provider, request.headers.get("authorization"), form, issuer=provider.issuer)
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(body, headers=NO_STORE)


@router.post(
    "/oidc/revoke",
    summary="Token revocation (RFC 7009): 200 whether or not the token was known",
    responses={200: {"description": "Revoked (or unknown)", "content": {"application/json": {}}}, **ERRORS},
    dependencies=[Depends(basic_auth)],
)
def revocation(
    request: Request,
    token: Annotated[Text, Form()] = None,
    token_type_hint: Annotated[Text, Form()] = None,
    client_id: Annotated[Text, Form()] = None,
    client_secret: Annotated[Text, Form()] = None,
) -> Response:
    form = given(token=token, client_id=client_id, client_secret=client_secret)
    try:
        with unit(request) as session:
            revoke(session, request.headers.get("authorization"), form)
    except OAuthError as exc:
        return oauth_error_response(exc)
    return Response(status_code=200, headers=NO_STORE)


# --- RP-initiated logout ---------------------------------------------------------------------------------


def _logout(request: Request, params: dict[str, str], confirmed: bool) -> Response:
    provider = provider_of(request)
    login = current_login(request)
    with unit(request) as session:
        try:
            wanted = parse_logout(session, provider.keys.keys(session), params, issuer=provider.issuer)
        except LogoutRefused as exc:
            return render(request, "consent_logout.html", status_code=400, step="refused", message=str(exc))
        if login is not None and not (confirmed or wanted.same_person(login.person_id)):
            return render(
                request, "consent_logout.html", step="confirm", app=wanted.app, fields=confirmation_fields(params)
            )
        response: Response = (
            RedirectResponse(wanted.redirect_to, status_code=303)
            if wanted.redirect_to
            else render(request, "consent_logout.html", step="done", app=wanted.app)
        )
        if login is not None:
            end_login(request, response, session)
    return response


LOGOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    303: {"description": "Signed out: to the app's registered post_logout_redirect_uri, with `state`"},
    200: {"description": "Signed out, or asked to confirm", **HTML},
    400: {"description": "An invalid id_token_hint or unregistered post_logout_redirect_uri", **HTML},
}


@router.get(
    "/oidc/logout",
    summary="RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)",
    response_class=HTMLResponse,
    responses=LOGOUT_RESPONSES,
)
def logout(
    request: Request,
    id_token_hint: Text = None,
    client_id: Text = None,
    post_logout_redirect_uri: Text = None,
    state: Text = None,
) -> Response:
    return _logout(request, dict(request.query_params), confirmed=False)


@router.post(
    "/oidc/logout",
    summary="RP-initiated logout, form-encoded; `confirm` with the page's csrf_token signs out at once",
    response_class=HTMLResponse,
    responses=LOGOUT_RESPONSES,
)
def logout_post(
    request: Request,
    id_token_hint: Annotated[Text, Form()] = None,
    client_id: Annotated[Text, Form()] = None,
    post_logout_redirect_uri: Annotated[Text, Form()] = None,
    state: Annotated[Text, Form()] = None,
    confirm: Annotated[Text, Form()] = None,
    csrf_token: Annotated[Text, Form()] = None,
) -> Response:
    params = given(
        id_token_hint=id_token_hint, client_id=client_id, post_logout_redirect_uri=post_logout_redirect_uri, state=state
    )
    confirmed = confirm == "yes" and token_is_valid(request, csrf_token)
    return _logout(request, params, confirmed=confirmed)


# --- the person's consents --------------------------------------------------------------------------------


@router.get("/oidc/consents", summary="The apps the signed-in person gave separate consent to", include_in_schema=False)
def my_consents(request: Request, login: Annotated[Login, Depends(require_login)]) -> Response:
    with unit(request) as session:
        rows = consent.consents_of(session, login.person_id)
    return render(request, "consent_list.html", consents=[(row, app) for row, app in rows if app is not None])


@router.post(
    "/oidc/consents/{client_id}/withdraw",
    summary="Withdraw a separate consent (PIPL Art. 15): the app's sign-ins for this person end at once",
    dependencies=[Depends(verify_csrf)],
    status_code=303,
    include_in_schema=False,
)
def withdraw_consent(request: Request, client_id: str, login: Annotated[Login, Depends(require_login)]) -> Response:
    with unit(request) as session:
        consent.withdraw(session, login.person_id, client_id, actor=login.actor)
    return RedirectResponse("/oidc/consents", status_code=303)
