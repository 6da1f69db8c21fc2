"""Who may use the contact pages and API, and the two steps they share: start a verification, answer it.

The contact pages and `/api/me/…` serve the signed-in person (a CAS login) or, for a short while, the person a
single-use update link was sent to (the `idb_update` cookie, set when the link is used); `/me` itself needs a
CAS login. Codes go out right after the request (the worker retries) when `contacts_inline_delivery` is on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Path, Request

from idbroker.config import Settings
from idbroker.contacts.delivery import attempt_now
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.targets import parse_email, parse_phone
from idbroker.contacts.update_link import update_session_person
from idbroker.contacts.verification import flow, strategy_link
from idbroker.contacts.verification.state import Outcome
from idbroker.contacts.verification.strategy_code import send_code, submit_code
from idbroker.db import session_scope
from idbroker.web.client import client_ip
from idbroker.web.session import LoginRequired, current_login, request_path, settings_of

UPDATE_COOKIE = "idb_update"
OUTCOME_STATUS = {
    Outcome.VERIFIED: 200,
    Outcome.WRONG: 400,
    Outcome.MALFORMED: 400,
    Outcome.BURNED: 410,
    Outcome.EXPIRED: 410,
    Outcome.USED: 409,
    Outcome.SUPERSEDED: 409,
    Outcome.NOT_FOUND: 404,
    Outcome.LOCKED: 429,
}
DONE = ("verified", "primary", "removed", "link_sent")


@dataclass(frozen=True)
class Owner:
    """Whose contacts these are: the signed-in person, or the person an update link was sent to."""

    person_id: str
    actor: str
    via_link: bool = False


def contact_owner(request: Request) -> Owner:
    login = current_login(request)
    if login is not None:
        return Owner(login.person_id, login.actor)
    value = request.cookies.get(UPDATE_COOKIE)
    if value:
        with session_scope(request.app.state.engine) as db:
            person = update_session_person(db, value, settings_of(request))
        if person is not None:
            return Owner(person, f"person:{person}", via_link=True)
    raise LoginRequired(request_path(request))


def signed_in(request: Request) -> Owner:
    login = current_login(request)
    if login is None:
        raise LoginRequired(request_path(request))
    return Owner(login.person_id, login.actor)


OwnerDep = Annotated[Owner, Depends(contact_owner)]
ContactId = Annotated[int, Path(ge=1, le=2**62)]
FlowId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
Token = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


def send_soon(request: Request, tasks: BackgroundTasks, delivery_id: int) -> None:
    settings: Settings = settings_of(request)
    if settings.contacts_inline_delivery:
        tasks.add_task(attempt_now, request.app.state.engine, delivery_id, settings)


def refusal_text(exc: ContactRefused) -> tuple[str, dict[str, Any]]:
    minutes = math.ceil((exc.retry_after or 60) / 60)
    return f"me.error.{exc.code}", {"minutes": minutes}


def start_verification(
    request: Request, tasks: BackgroundTasks, owner: Owner, kind: str, raw: str, method: str
) -> flow.Started:
    settings = settings_of(request)
    target = parse_phone(raw, contacts_policy(settings)) if kind == "phone" else parse_email(raw)
    with session_scope(request.app.state.engine) as db:
        if method == "link":
            started = strategy_link.send_link(
                db, settings, person_id=owner.person_id, target=target, ip=client_ip(request)
            )
        else:
            started = send_code(db, settings, person_id=owner.person_id, target=target, ip=client_ip(request))
    send_soon(request, tasks, started.delivery_id)
    return started


def answer_code(request: Request, owner: Owner, flow_id: str, code: str) -> tuple[Outcome, int, int | None]:
    with session_scope(request.app.state.engine) as db:
        result = submit_code(db, settings_of(request), person_id=owner.person_id, flow_id=flow_id, code=code)
    return result.outcome, result.tries_left, result.contact_id
