"""The admin API of the app registry (`/api/admin/apps`), for staff holding the `admin` role.

Authentication is the staff member's CAS login session (`require_role("admin")`), not a separate admin
token: every change is then audited under the admin's own identity, and a revoked role stops working at
once. The session cookie is SameSite=Lax, so a cross-site POST never carries it, and the bodies are JSON
(a cross-site form cannot send `application/json` without a CORS preflight, which is never granted). A
sibling host of the campus is *same-site*, though, so its forms would carry the cookie to the body-less
POSTs (rotate-secret, disable): `verify_same_origin` refuses any request a browser marks as cross-origin.
The CLI (`idbroker apps …`) does the same on the server itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from idbroker.policy import PolicyError
from idbroker.release import registry
from idbroker.release.models import App
from idbroker.staff.require import require_role
from idbroker.web.csrf import verify_same_origin
from idbroker.web.routers.oidc import unit
from idbroker.web.session import Login

router = APIRouter(prefix="/api/admin/apps", tags=["apps-admin"], dependencies=[Depends(verify_same_origin)])
Admin = Annotated[Login, Depends(require_role("admin"))]
ClientId = Annotated[str, Path(min_length=3, max_length=60, pattern=r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")]


class Detail(BaseModel):
    detail: str


class AppOut(BaseModel):
    client_id: str
    name: str
    kind: str
    sector: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    enabled: bool
    created_at: datetime
    secret_rotated_at: datetime | None


class NewApp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: str = Field(min_length=3, max_length=60, description="Its policy must exist: policies/apps/<id>.yaml")
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["confidential", "public"] = "confidential"
    redirect_uris: list[Annotated[str, Field(max_length=2048)]] = Field(min_length=1, max_length=20)
    post_logout_redirect_uris: list[Annotated[str, Field(max_length=2048)]] = Field(default=[], max_length=20)
    sector: str | None = Field(default=None, max_length=255, description="Default: the redirect URIs' host")


class Created(BaseModel):
    app: AppOut
    client_secret: str | None = Field(description="Shown this once; stored only as an argon2 hash.")


class Secret(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown this once; the old secret stopped working.")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Detail, "description": "Not signed in"},
    403: {"model": Detail, "description": "Not an admin"},
}


def _out(app: App) -> AppOut:
    return AppOut.model_validate(app, from_attributes=True)


@router.get("", summary="Every registered app", response_model=list[AppOut], responses=ERRORS)
def list_apps(request: Request, admin: Admin) -> list[AppOut]:
    with unit(request) as session:
        return [_out(app) for app in registry.list_apps(session)]


@router.post(
    "",
    summary="Register an app (its release policy file must already exist and be valid)",
    status_code=201,
    response_model=Created,
    responses={
        **ERRORS,
        400: {"model": Detail, "description": "Not JSON, no valid policy, or a bad URI"},
        409: {"model": Detail},
    },
)
def add_app(request: Request, admin: Admin, body: NewApp) -> Created:
    with unit(request) as session:
        if session.get(App, body.client_id) is not None:
            raise HTTPException(409, f"app {body.client_id!r} is already registered")
        try:
            made = registry.register(
                session,
                request.app.state.settings.policies_dir,
                client_id=body.client_id,
                name=body.name,
                kind=body.kind,
                redirect_uris=body.redirect_uris,
                post_logout_redirect_uris=body.post_logout_redirect_uris,
                sector=body.sector,
                actor=admin.actor,
            )
        except (registry.RegistryError, PolicyError) as exc:
            raise HTTPException(400, str(exc)) from None
        return Created(app=_out(made.app), client_secret=made.secret)


@router.post(
    "/{client_id}/rotate-secret",
    summary="A new client secret; the old one stops working at once",
    response_model=Secret,
    responses={**ERRORS, 400: {"model": Detail}, 404: {"model": Detail}},
)
def rotate_secret(request: Request, admin: Admin, client_id: ClientId) -> Secret:
    with unit(request) as session:
        try:
            secret = registry.rotate_secret(session, client_id, actor=admin.actor)
        except registry.UnknownApp as exc:
            raise HTTPException(404, str(exc)) from None
        except registry.RegistryError as exc:
            raise HTTPException(400, str(exc)) from None
    return Secret(client_id=client_id, client_secret=secret)


@router.post(
    "/{client_id}/disable",
    summary="Disable an app: no more codes, tokens or answers; its live tokens are revoked",
    response_model=AppOut,
    responses={**ERRORS, 404: {"model": Detail}},
)
def disable_app(request: Request, admin: Admin, client_id: ClientId) -> AppOut:
    with unit(request) as session:
        try:
            return _out(registry.set_enabled(session, client_id, False, actor=admin.actor))
        except registry.UnknownApp as exc:
            raise HTTPException(404, str(exc)) from None


@router.post(
    "/{client_id}/enable",
    summary="Enable a disabled app again",
    response_model=AppOut,
    responses={**ERRORS, 404: {"model": Detail}},
)
def enable_app(request: Request, admin: Admin, client_id: ClientId) -> AppOut:
    with unit(request) as session:
        try:
            return _out(registry.set_enabled(session, client_id, True, actor=admin.actor))
        except registry.UnknownApp as exc:
            raise HTTPException(404, str(exc)) from None
