"""The helpdesk console (`/helpdesk`, role `helpdesk`): HTTP only; the work is in `idbroker.helpdesk`.

Searching is a POST (a phone number typed in must never land in a URL, a proxy log or the browser
history). Opening a full record is a POST with the reason, and the record is the response: there is no
URL that shows it without a reason. Every form carries the CSRF token; every route checks the role.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse

from idbroker.contacts.errors import ContactRefused
from idbroker.db import session_scope
from idbroker.directory.queries import PersonNotFound, resolve_person
from idbroker.helpdesk.corrections import correct, send_link
from idbroker.helpdesk.errors import HelpdeskRefused
from idbroker.helpdesk.queue_health import queue_health
from idbroker.helpdesk.record import open_record
from idbroker.helpdesk.review_queue import approve, decide_case, open_case, queue, reject
from idbroker.helpdesk.search import find_people
from idbroker.helpdesk.unmerge import undo_merge
from idbroker.staff.require import require_role
from idbroker.web.client import client_ip
from idbroker.web.csrf import verify_csrf
from idbroker.web.errors import PageError
from idbroker.web.session import Login, settings_of
from idbroker.web.templates import render

router = APIRouter(prefix="/helpdesk", tags=["helpdesk"])
Helpdesk = Annotated[Login, Depends(require_role("helpdesk"))]
PersonId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[a-z0-9]+$")]
RowId = Annotated[int, Path(ge=1, le=2**62)]  # a database row id: larger numbers are a 422, not a 500
Reason = Annotated[str, Form(max_length=500)]
HTML = {"response_class": HTMLResponse}
POST = {"dependencies": [Depends(verify_csrf)], "response_class": HTMLResponse}


def refused(exc: HelpdeskRefused | ContactRefused | PersonNotFound) -> PageError:
    if isinstance(exc, PersonNotFound):
        return PageError(404, "helpdesk.refused.person_unknown")
    prefix = "helpdesk.refused." if isinstance(exc, HelpdeskRefused) else "helpdesk.contact_refused."
    return PageError(exc.status, prefix + exc.code)


def done(request: Request, message: str, back: str) -> HTMLResponse:
    return render(request, "helpdesk_done.html", message=message, back=back)


@router.get("", summary="The helpdesk console: find a person", **HTML)
def search_page(request: Request, login: Helpdesk) -> HTMLResponse:
    return render(request, "helpdesk_search.html", query="", result=None, error=None)


@router.post("/search", summary="Find a person by any number, phone, email or name (masked results)", **POST)
def search(request: Request, login: Helpdesk, q: Annotated[str, Form(max_length=200)] = "") -> HTMLResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            result = find_people(db, q, actor=login.actor, client_ip=client_ip(request))
    except HelpdeskRefused as exc:
        return render(request, "helpdesk_search.html", status_code=exc.status, query=q, result=None, error=exc.code)
    return render(request, "helpdesk_search.html", query=q, result=result, error=None)


@router.get("/people/{person_id}", summary="Ask for the reason before a full record opens", **HTML)
def ask_reason(request: Request, login: Helpdesk, person_id: PersonId) -> HTMLResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            person = resolve_person(db, person_id)
    except PersonNotFound as exc:
        raise refused(exc) from None
    return render(request, "helpdesk_open.html", person_id=person.id, error=None)


@router.post("/people/{person_id}/open", summary="Open the full record, with a reason (audited)", **POST)
def open_full_record(request: Request, login: Helpdesk, person_id: PersonId, reason: Reason = "") -> HTMLResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            record = open_record(
                db, settings_of(request), person_id, actor=login.actor, reason=reason, client_ip=client_ip(request)
            )
            return render(request, "helpdesk_record.html", record=record, reason=reason)
    except HelpdeskRefused as exc:
        return render(request, "helpdesk_open.html", status_code=exc.status, person_id=person_id, error=exc.code)
    except PersonNotFound as exc:
        raise refused(exc) from None


@router.post("/people/{person_id}/contacts", summary="Correct a phone or email on the person's behalf", **POST)
def correct_contact(
    request: Request,
    login: Helpdesk,
    person_id: PersonId,
    kind: Annotated[str, Form(pattern="^(phone|email)$")],
    value: Annotated[str, Form(max_length=254)],
    reason: Reason = "",
) -> HTMLResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            correct(db, settings_of(request), person_id, kind, value, actor=login.actor, reason=reason)
    except (HelpdeskRefused, ContactRefused, PersonNotFound) as exc:
        raise refused(exc) from None
    return done(request, f"helpdesk.done.corrected_{kind}", f"/helpdesk/people/{person_id}")


@router.post("/people/{person_id}/update-link", summary="Send the person the single-use update link", **POST)
def update_link(
    request: Request, login: Helpdesk, person_id: PersonId, channel: Annotated[str, Form(pattern="^(sms|email)$")]
) -> HTMLResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            send_link(db, settings_of(request), person_id, channel, actor=login.actor)
    except (ContactRefused, PersonNotFound) as exc:
        raise refused(exc) from None
    return done(request, f"helpdesk.done.link_{channel}", f"/helpdesk/people/{person_id}")


@router.post("/merges/{operation_id}/undo", summary="Un-merge: undo a merge from a person's history", **POST)
def unmerge(request: Request, login: Helpdesk, operation_id: RowId, reason: Reason = "") -> HTMLResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            operation = undo_merge(db, operation_id, actor=login.actor, reason=reason)
    except HelpdeskRefused as exc:
        raise refused(exc) from None
    return done(request, "helpdesk.done.unmerged", f"/helpdesk/people/{operation.absorbed_id}")


@router.get("/review", summary="The review queue and its health", **HTML)
def review_queue(request: Request, login: Helpdesk) -> HTMLResponse:
    with session_scope(request.app.state.engine) as db:
        items = queue(db)
        health = queue_health(db)
        return render(request, "helpdesk_review.html", items=items, health=health, actor=login.actor)


@router.get("/review/{candidate_id}", summary="One case side by side with its evidence (audited)", **HTML)
def review_case(request: Request, login: Helpdesk, candidate_id: RowId) -> HTMLResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            case = open_case(db, settings_of(request), candidate_id, actor=login.actor, client_ip=client_ip(request))
            return render(request, "helpdesk_case.html", case=case, actor=login.actor)
    except HelpdeskRefused as exc:
        raise refused(exc) from None


@router.post("/review/{candidate_id}/decide", summary="Merge, keep apart or defer a case", **POST)
def decide(
    request: Request,
    login: Helpdesk,
    candidate_id: RowId,
    decision: Annotated[str, Form(pattern="^(merge|keep_apart|defer)$")],
    reason: Reason = "",
) -> HTMLResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            outcome = decide_case(db, settings_of(request), candidate_id, decision, actor=login.actor, reason=reason)
    except HelpdeskRefused as exc:
        raise refused(exc) from None
    return done(request, f"helpdesk.done.{outcome.state}", "/helpdesk/review")


@router.post("/approvals/{approval_id}/{verdict}", summary="Approve or reject a merge (the second person)", **POST)
def second_person(
    request: Request,
    login: Helpdesk,
    approval_id: RowId,
    verdict: Annotated[str, Path(pattern="^(approve|reject)$")],
    reason: Reason = "",
) -> HTMLResponse:
    try:
        with session_scope(request.app.state.engine) as db:
            if verdict == "approve":
                outcome = approve(db, settings_of(request), approval_id, actor=login.actor, reason=reason)
            else:
                outcome = reject(db, approval_id, actor=login.actor, reason=reason)
    except HelpdeskRefused as exc:
        raise refused(exc) from None
    return done(request, f"helpdesk.done.{outcome.state}", "/helpdesk/review")
