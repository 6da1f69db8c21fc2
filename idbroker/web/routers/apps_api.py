"""The REST API for apps (`/api/apps/v1`), called with a client-credentials token (RFC 6749 §4.4).

Resolve one pseudonym or up to 1,000, look a person up by a number the app already holds (when its policy
allows), and follow the app's change feed. Every answer about a person passes the release gate.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from idbroker.oidc.rfc6749.errors import OAuthError
from idbroker.oidc.rfc6749.tokens import BearerApp
from idbroker.oidc.userinfo import bearer_token
from idbroker.release import feed, people
from idbroker.release.app_access import NotAnApp, app_of_token
from idbroker.release.gate import Release, ReleaseRefused
from idbroker.release.policies import AppPolicy, policy_for
from idbroker.web.routers.oidc import bearer_auth, grouped, provider_of, provider_ready, unit

router = APIRouter(prefix="/api/apps/v1", tags=["apps"], dependencies=[Depends(bearer_auth)])

Pseudonym = Annotated[str, Path(min_length=1, max_length=64, description="The app's pseudonym of the person.")]


class Detail(BaseModel):
    detail: str


class PersonClaims(BaseModel):
    model_config = ConfigDict(extra="allow")
    sub: str = Field(description="The app's canonical pseudonym of the person (an absorbed one resolves to it).")


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pseudonyms: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=people.MAX_BATCH, description="Up to 1,000 pseudonyms of this app."
    )


class Resolved(BaseModel):
    people: dict[str, PersonClaims] = Field(description="Asked pseudonym → what the policy allows.")
    unknown: list[str] = Field(description="Pseudonyms this app was never given.")
    withheld: list[str] = Field(description="Known, but nothing may be released now (no separate consent).")


class Change(BaseModel):
    model_config = ConfigDict(extra="allow")
    cursor: int
    kind: str = Field(
        description="updated, merged, unmerged, left, or consent_withdrawn (the person withdrew their consent to "
        "this app: forget what you hold on them; nothing more is released until they consent again)"
    )
    at: str
    sub: str = Field(description="The person's canonical pseudonym now (for consent_withdrawn: the only field).")


class Changes(BaseModel):
    changes: list[Change]
    next: int = Field(description="Pass as `after` to read on.")


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Detail, "description": "No valid client-credentials token"},
}


def _app(session: Session, request: Request) -> tuple[BearerApp, AppPolicy]:
    try:
        app = app_of_token(session, bearer_token(request.headers.get("authorization")))
    except (NotAnApp, OAuthError) as exc:
        message = exc.description if isinstance(exc, OAuthError) else str(exc)
        raise HTTPException(401, message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    return app, policy_for(request.app.state.settings.policies_dir, app.client_id)


@router.get(
    "/people/{pseudonym}",
    summary="What the app's policy allows about one person",
    response_model=PersonClaims,
    responses={**AUTH_ERRORS, 403: {"model": Detail}, 404: {"model": Detail}},
)
async def person(request: Request, pseudonym: Pseudonym) -> Response:
    gate = (await provider_ready(request)).gate  # before the work is queued (see `provider_ready`)

    def work(session: Session) -> people.Resolved:
        app, policy = _app(session, request)
        return people.resolve(session, gate, app, policy, [pseudonym])

    try:  # what the work will read, read ahead for the whole group (idbroker.release.people.read_ahead)
        ahead = people.Ahead(bearer_token(request.headers.get("authorization")), pseudonym)
    except OAuthError:
        ahead = None  # the work refuses it
    result = await grouped(request).run(work, ahead)  # one release: a grouped transaction (idbroker.web.grouped)
    if result.withheld:
        raise HTTPException(403, "nothing may be released about this person to this app (no separate consent)")
    if pseudonym not in result.found:
        raise HTTPException(404, "this app was never given this pseudonym")
    return JSONResponse(result.found[pseudonym])  # already in the documented shape: not validated again


@router.post(
    "/people/resolve",
    summary="Resolve up to 1,000 pseudonyms at once",
    response_model=Resolved,
    responses={**AUTH_ERRORS, 400: {"model": Detail, "description": "The body is not JSON"}},
)
async def resolve(request: Request, body: ResolveRequest) -> dict[str, Any]:
    gate = (await provider_ready(request)).gate

    def work(session: Session) -> people.Resolved:
        app, policy = _app(session, request)
        return people.resolve(session, gate, app, policy, body.pseudonyms)

    result = await grouped(request).run(work)
    return {"people": result.found, "unknown": result.unknown, "withheld": result.withheld}


@router.get(
    "/people/by-number/{number}",
    summary="The person holding a number the app already holds (学号, 工号), when its policy allows",
    response_model=PersonClaims,
    responses={**AUTH_ERRORS, 403: {"model": Detail}, 404: {"model": Detail}, 409: {"model": Detail}},
)
async def by_number(
    request: Request, number: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
) -> dict[str, Any]:
    gate = (await provider_ready(request)).gate

    def work(session: Session) -> Release | None:
        app, policy = _app(session, request)
        try:
            return people.lookup_by_number(session, gate, app, policy, number)
        except people.LookupNotAllowed as exc:
            raise HTTPException(403, str(exc)) from None
        except people.AmbiguousNumber as exc:
            raise HTTPException(409, str(exc)) from None
        except ReleaseRefused as exc:
            raise HTTPException(403, f"nothing may be released about this person to this app ({exc.reason})") from None

    release = await grouped(request).run(work)
    if release is None:
        raise HTTPException(404, "nobody holds this number")
    return release.claims


@router.get(
    "/changes",
    summary="The app's change feed: people it knows updated, merged, un-merged, gone or withdrawn, in its pseudonyms",
    response_model=Changes,
    responses={**AUTH_ERRORS},
)
def changes(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62, description="The `next` of the previous page (0 to start).")] = 0,
    limit: Annotated[int, Query(ge=1, le=feed.MAX_PAGE, description="Events looked at in this page.")] = 100,
) -> dict[str, Any]:
    gate = provider_of(request).gate
    with unit(request) as session:
        app, policy = _app(session, request)
        items, next_cursor = feed.changes(session, gate, app, policy, after=after, limit=limit)
    return {
        "changes": [{"cursor": c.cursor, "kind": c.kind, "at": c.at, **c.claims} for c in items],
        "next": next_cursor,
    }
