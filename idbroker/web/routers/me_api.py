"""The JSON API of the self-service contacts (`/api/me/…`): the same steps as the pages, for apps and H5
front-ends. Signed in by the session cookie; every change carries the `X-CSRF-Token` header. Values are
masked; the answer to "send a code" is the same whoever else holds the number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.overview import Item, Overview, overview
from idbroker.contacts.self_service import choose_primary, remove_contact
from idbroker.contacts.verification.state import MESSAGES, Outcome
from idbroker.db import session_scope
from idbroker.web.csrf import verify_csrf
from idbroker.web.routers.me_access import (
    OUTCOME_STATUS,
    ContactId,
    FlowId,
    OwnerDep,
    answer_code,
    start_verification,
)
from idbroker.web.session import settings_of

router = APIRouter()


class PhoneIn(BaseModel):
    phone: str = Field(max_length=64, description="A mobile number in any common spelling (+86 138…, 138-…)")


class EmailIn(BaseModel):
    email: str = Field(max_length=320)
    method: Literal["code", "link"] = "code"


class CodeIn(BaseModel):
    code: str = Field(max_length=32, description="The 6-digit code from the SMS or email")


class FlowOut(BaseModel):
    flow: str = Field(description="The verification to answer (POST /api/me/verifications/{flow})")
    channel: Literal["sms", "email"]
    method: Literal["code", "link"]
    expires_at: datetime


class VerifyOut(BaseModel):
    outcome: Outcome
    detail: str
    tries_left: int = 0
    contact: int | None = None


class ContactOut(BaseModel):
    id: int
    kind: Literal["phone", "email"]
    value: str = Field(description="Masked (138****5678, z***@example.edu.cn)")
    phone_type: str | None
    primary: bool
    verified: bool
    verified_method: str | None
    verified_at: datetime | None
    confirmed_by_helpdesk: bool
    sources: list[str]
    removed: bool


class ContactsOut(BaseModel):
    contacts: list[ContactOut]
    pending: list[FlowOut]


class Refusal(BaseModel):
    code: str
    detail: str


def _refusal(exc: ContactRefused) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return JSONResponse({"code": exc.code, "detail": exc.reason}, status_code=exc.status, headers=headers)


def _contact_out(item: Item) -> ContactOut:
    return ContactOut(
        id=item.id,
        kind=item.kind,  # type: ignore[arg-type]
        value=item.masked,
        phone_type=item.phone_type,
        primary=item.primary,
        verified=item.verified_at is not None,
        verified_method=item.verified_method,
        verified_at=item.verified_at,
        confirmed_by_helpdesk=item.confirmed,
        sources=item.sources,
        removed=item.removed,
    )


def _contacts_out(summary: Overview) -> ContactsOut:
    return ContactsOut(
        contacts=[_contact_out(item) for item in [*summary.phones, *summary.emails]],
        pending=[
            FlowOut(
                flow=p.flow_id,
                channel="sms" if p.kind == "phone" else "email",
                method=p.method,
                expires_at=p.expires_at,
            )  # type: ignore[arg-type]
            for p in summary.pending
        ],
    )


class NotJson(BaseModel):
    detail: str


REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Refusal | NotJson,  # NotJson: the body is not JSON at all (FastAPI's own answer)
        "description": "Not a valid mobile number or email (malformed, foreign, landline, odd Unicode), "
        "or a body that is not JSON",
    },
    401: {"description": "Not signed in"},
    403: {"description": "No CSRF token (X-CSRF-Token header)"},
    429: {"model": Refusal, "description": "A sending limit (per number, person, address or number block)"},
}


@router.get("/api/me/contacts", tags=["me"], response_model=ContactsOut, summary="My phones and emails (masked)")
def my_contacts(request: Request, owner: OwnerDep) -> ContactsOut:
    with session_scope(request.app.state.engine) as db:
        return _contacts_out(overview(db, settings_of(request), owner.person_id))


@router.post(
    "/api/me/phones",
    tags=["me"],
    status_code=202,
    response_model=FlowOut,
    responses=REFUSALS,
    dependencies=[Depends(verify_csrf)],
    summary="Send a code to a mobile number (the same answer whoever else holds it)",
)
def add_phone(request: Request, tasks: BackgroundTasks, owner: OwnerDep, body: PhoneIn) -> FlowOut | JSONResponse:
    try:
        started = start_verification(request, tasks, owner, "phone", body.phone, "code")
    except ContactRefused as exc:
        return _refusal(exc)
    return FlowOut(flow=started.flow_id, channel="sms", method="code", expires_at=started.expires_at)


@router.post(
    "/api/me/emails",
    tags=["me"],
    status_code=202,
    response_model=FlowOut,
    responses=REFUSALS,
    dependencies=[Depends(verify_csrf)],
    summary="Send a code or a single-use link to an email address",
)
def add_email(request: Request, tasks: BackgroundTasks, owner: OwnerDep, body: EmailIn) -> FlowOut | JSONResponse:
    try:
        started = start_verification(request, tasks, owner, "email", body.email, body.method)
    except ContactRefused as exc:
        return _refusal(exc)
    return FlowOut(flow=started.flow_id, channel="email", method=body.method, expires_at=started.expires_at)  # type: ignore[arg-type]


@router.post(
    "/api/me/verifications/{flow_id}",
    tags=["me"],
    response_model=VerifyOut,
    responses={status: {"model": VerifyOut} for status in (400, 404, 409, 410, 429)},
    dependencies=[Depends(verify_csrf)],
    summary="Answer a code: verified, or why not (wrong, burned, expired, used, superseded, locked)",
)
def verify_code(request: Request, owner: OwnerDep, flow_id: FlowId, body: CodeIn) -> VerifyOut | JSONResponse:
    outcome, tries_left, contact = answer_code(request, owner, flow_id, body.code)
    answer = VerifyOut(outcome=outcome, detail=MESSAGES[outcome], tries_left=tries_left, contact=contact)
    if outcome == Outcome.VERIFIED:
        return answer
    return JSONResponse(answer.model_dump(mode="json"), status_code=OUTCOME_STATUS[outcome])


@router.post(
    "/api/me/contacts/{contact_id}/primary",
    tags=["me"],
    response_model=ContactsOut,
    responses={400: {"model": Refusal}, 404: {"model": Refusal}},
    dependencies=[Depends(verify_csrf)],
    summary="Make a verified phone or email my primary one",
)
def choose_primary_api(request: Request, owner: OwnerDep, contact_id: ContactId) -> ContactsOut | JSONResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            choose_primary(db, settings_of(request), owner.person_id, contact_id)
            return _contacts_out(overview(db, settings_of(request), owner.person_id))
    except ContactRefused as exc:
        return _refusal(exc)


@router.delete(
    "/api/me/contacts/{contact_id}",
    tags=["me"],
    response_model=ContactsOut,
    responses={404: {"model": Refusal}},
    dependencies=[Depends(verify_csrf)],
    summary="Remove a stale phone or email (sources saying it again do not bring it back)",
)
def remove_api(request: Request, owner: OwnerDep, contact_id: ContactId) -> ContactsOut | JSONResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            remove_contact(db, settings_of(request), owner.person_id, contact_id, actor=owner.actor)
            return _contacts_out(overview(db, settings_of(request), owner.person_id))
    except ContactRefused as exc:
        return _refusal(exc)
