"""Self-service pages (PC and H5): my identities, my phones and emails, entering a code, email links and
update links. Every form posts its CSRF token; routes only translate HTTP to calls of `idbroker.contacts`.
The JSON API of the same (`me_api`) and the gateways' delivery reports (`contact_reports`) are included here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.mask import mask_email
from idbroker.contacts.outbox import outbox
from idbroker.contacts.overview import overview
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.self_service import choose_primary, remove_contact
from idbroker.contacts.update_link import check_update_link, use_update_link
from idbroker.contacts.verification import flow, strategy_link
from idbroker.contacts.verification.state import Outcome
from idbroker.db import session_scope
from idbroker.directory.queries import records_of, resolve_person
from idbroker.web.csrf import verify_csrf
from idbroker.web.routers import contact_reports, me_api
from idbroker.web.routers.me_access import (
    DONE,
    OUTCOME_STATUS,
    UPDATE_COOKIE,
    ContactId,
    FlowId,
    Owner,
    OwnerDep,
    Token,
    answer_code,
    refusal_text,
    signed_in,
    start_verification,
)
from idbroker.web.session import set_private_cookie, settings_of
from idbroker.web.templates import render

router = APIRouter()


@router.get("/me", include_in_schema=False)
def identities_page(request: Request, owner: Annotated[Owner, Depends(signed_in)]) -> Response:
    with session_scope(request.app.state.engine) as db:
        person = resolve_person(db, owner.person_id)
        records = records_of(db, person.id)
        summary = overview(db, settings_of(request), person.id)
    return render(request, "me_identities.html", records=records, overview=summary)


def _contacts_page(
    request: Request, owner: Owner, *, error: tuple[str, dict[str, Any]] | None = None, status: int = 200
) -> Response:
    settings = settings_of(request)
    with session_scope(request.app.state.engine) as db:
        summary = overview(db, settings, owner.person_id)
    done = request.query_params.get("done")
    return render(
        request,
        "me_contacts.html",
        status_code=status,
        overview=summary,
        owner=owner,
        done=done if done in DONE else None,
        error=error,
        policy=contacts_policy(settings),
    )


@router.get("/me/contacts", include_in_schema=False)
def contacts_page(request: Request, owner: OwnerDep) -> Response:
    return _contacts_page(request, owner)


@router.post("/me/phones", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def add_phone_form(
    request: Request, tasks: BackgroundTasks, owner: OwnerDep, phone: Annotated[str, Form(max_length=64)] = ""
) -> Response:
    try:
        started = start_verification(request, tasks, owner, "phone", phone, "code")
    except ContactRefused as exc:
        return _contacts_page(request, owner, error=refusal_text(exc), status=exc.status)
    return RedirectResponse(f"/me/verify/{started.flow_id}", status_code=303)


@router.post("/me/emails", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def add_email_form(
    request: Request,
    tasks: BackgroundTasks,
    owner: OwnerDep,
    email: Annotated[str, Form(max_length=320)] = "",
    method: Annotated[Literal["code", "link"], Form()] = "code",
) -> Response:
    try:
        started = start_verification(request, tasks, owner, "email", email, method)
    except ContactRefused as exc:
        return _contacts_page(request, owner, error=refusal_text(exc), status=exc.status)
    if method == "link":
        return RedirectResponse("/me/contacts?done=link_sent", status_code=303)
    return RedirectResponse(f"/me/verify/{started.flow_id}", status_code=303)


def _verify_page(
    request: Request, owner: Owner, flow_id: str, *, error: tuple[str, dict[str, Any]] | None = None, status: int = 200
) -> Response:
    settings = settings_of(request)
    with session_scope(request.app.state.engine) as db:
        pending = next((p for p in overview(db, settings, owner.person_id).pending if p.flow_id == flow_id), None)
    minutes = contacts_policy(settings).verification.code_minutes
    return render(
        request, "me_verify.html", status_code=status, flow_id=flow_id, pending=pending, minutes=minutes, error=error
    )


@router.get("/me/verify/{flow_id}", include_in_schema=False)
def verify_page(request: Request, owner: OwnerDep, flow_id: FlowId) -> Response:
    return _verify_page(request, owner, flow_id)


@router.post("/me/verify/{flow_id}", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def verify_form(
    request: Request, owner: OwnerDep, flow_id: FlowId, code: Annotated[str, Form(max_length=32)] = ""
) -> Response:
    outcome, tries_left, _contact = answer_code(request, owner, flow_id, code)
    if outcome == Outcome.VERIFIED:
        return RedirectResponse("/me/contacts?done=verified", status_code=303)
    error = (f"me.outcome.{outcome.value}", {"tries": tries_left})
    return _verify_page(request, owner, flow_id, error=error, status=OUTCOME_STATUS[outcome])


@router.post("/me/contacts/{contact_id}/primary", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def choose_primary_form(request: Request, owner: OwnerDep, contact_id: ContactId) -> Response:
    try:
        with session_scope(request.app.state.engine) as db:
            choose_primary(db, settings_of(request), owner.person_id, contact_id)
    except ContactRefused as exc:
        return _contacts_page(request, owner, error=refusal_text(exc), status=exc.status)
    return RedirectResponse("/me/contacts?done=primary", status_code=303)


@router.post("/me/contacts/{contact_id}/remove", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def remove_form(request: Request, owner: OwnerDep, contact_id: ContactId) -> Response:
    try:
        with session_scope(request.app.state.engine) as db:
            remove_contact(db, settings_of(request), owner.person_id, contact_id, actor=owner.actor)
    except ContactRefused as exc:
        return _contacts_page(request, owner, error=refusal_text(exc), status=exc.status)
    return RedirectResponse("/me/contacts?done=removed", status_code=303)


@router.get("/me/email/confirm/{token}", include_in_schema=False)
def email_link_page(request: Request, token: Token) -> Response:
    settings = settings_of(request)
    with session_scope(request.app.state.engine) as db:
        found = strategy_link.find(db, settings, token)
        refusal = strategy_link.check(found)
        target = flow.target_of(settings, found) if found is not None and refusal is None else None
    if refusal is not None or target is None:
        outcome = refusal or Outcome.NOT_FOUND
        return render(request, "me_link.html", status_code=OUTCOME_STATUS[outcome], state="refused", outcome=outcome)
    return render(request, "me_link.html", state="confirm", token=token, target=mask_email(target))


@router.post("/me/email/confirm/{token}", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def email_link_form(request: Request, token: Token) -> Response:
    with session_scope(request.app.state.engine) as db:
        result = strategy_link.submit_link(db, settings_of(request), token)
    if result.outcome == Outcome.VERIFIED:
        return render(request, "me_link.html", state="done")
    outcome = result.outcome
    return render(request, "me_link.html", status_code=OUTCOME_STATUS[outcome], state="refused", outcome=outcome)


@router.get("/me/update/{token}", include_in_schema=False)
def update_link_page(request: Request, token: Token) -> Response:
    try:
        with session_scope(request.app.state.engine) as db:
            check_update_link(db, token, settings_of(request))
    except ContactRefused as exc:
        return render(request, "me_update.html", status_code=exc.status, token=None, refusal=f"me.link.{exc.code}")
    return render(request, "me_update.html", token=token, refusal=None)


@router.post("/me/update/{token}", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def update_link_form(request: Request, token: Token) -> Response:
    settings = settings_of(request)
    try:
        with session_scope(request.app.state.engine) as db:
            _person, value = use_update_link(db, token, settings)
    except ContactRefused as exc:
        return render(request, "me_update.html", status_code=exc.status, token=None, refusal=f"me.link.{exc.code}")
    response = RedirectResponse("/me/contacts", status_code=303)
    set_private_cookie(response, settings, UPDATE_COOKIE, value)
    return response


router.include_router(me_api.router)
router.include_router(contact_reports.router)


# DEMO ONLY (included by the app factory in demo mode alone): what the broker "sent", codes and links readable.
demo_router = APIRouter()


@demo_router.get("/demo/outbox", include_in_schema=False)
def demo_outbox_page(request: Request) -> Response:
    settings = settings_of(request)
    with session_scope(request.app.state.engine) as db:
        messages = outbox(db, settings, limit=50)
    return render(request, "me_demo_outbox.html", messages=messages)
