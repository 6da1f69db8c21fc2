"""The privacy officer's console (`/privacy`, role `privacy_officer`): HTTP only; the work is in `idbroker.audit`.

Search the audit log, a person's access report (page, JSON, CSV), per-app statistics and rate alerts,
signed checkpoints (create, export). Every read of the log is itself recorded by the audit functions.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from idbroker.audit.alerts import load_alert_policy, rate_alerts
from idbroker.audit.checkpoints import create_checkpoint, export_checkpoint
from idbroker.audit.models import AuditCheckpoint
from idbroker.audit.reports import AccessReport, access_report, report_csv, report_json
from idbroker.audit.search import AuditFilter, AuditSearchError, search_events
from idbroker.audit.stats import app_statistics
from idbroker.db import session_scope
from idbroker.directory.queries import PersonNotFound, people_by_number
from idbroker.staff.require import require_role
from idbroker.web.client import client_ip
from idbroker.web.csrf import verify_csrf
from idbroker.web.errors import PageError
from idbroker.web.session import Login, settings_of
from idbroker.web.templates import render

router = APIRouter(prefix="/privacy", tags=["privacy"])
Officer = Annotated[Login, Depends(require_role("privacy_officer"))]
Text = Annotated[str | None, Query(max_length=200)]
Day = Annotated[date | None, Query(description="A day (UTC), YYYY-MM-DD")]
PersonQuery = Annotated[str, Query(min_length=1, max_length=64, description="A person ID or any number they hold")]
HTML = {"response_class": HTMLResponse}
PAGE_SIZE = 50


def _actor(request: Request, staff: str | None) -> str | None:
    """A staff filter: a uid (工号) becomes that person's actor; `app:…`, `cli:…`, `person:…` stay as typed."""
    if not staff:
        return None
    if ":" in staff or staff == "system":
        return staff
    with session_scope(request.app.state.engine) as db:
        people = people_by_number(db, staff)
    return f"person:{people[0].id}" if len(people) == 1 else f"uid:{staff}"


def attachment(content: str, media_type: str, filename: str) -> Response:
    """A download: never cached (it holds personal data)."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return Response(content, media_type=media_type, headers=headers)


def _start(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


@router.get("", summary="Search the audit log (person, app, staff member, action, purpose, time)", **HTML)
def search_page(
    request: Request,
    login: Officer,
    person: Text = None,
    app: Text = None,
    staff: Text = None,
    action: Text = None,
    purpose: Text = None,
    since: Day = None,
    until: Day = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    values = {"person": person, "app": app, "staff": staff, "action": action, "purpose": purpose}
    values = {key: (value.strip() or None) if value else None for key, value in values.items()}
    end = datetime.combine(until, time.max, tzinfo=UTC) if until else None
    query = AuditFilter(
        person=values["person"],
        app=values["app"],
        actor=_actor(request, values["staff"]),
        action=values["action"],
        purpose=values["purpose"],
        since=_start(since),
        until=end,
    )
    form = values | {"since": since.isoformat() if since else "", "until": until.isoformat() if until else ""}
    try:
        with session_scope(request.app.state.engine) as db:
            page = search_events(
                db, query, actor=login.actor, limit=PAGE_SIZE, before=before, client_ip=client_ip(request)
            )
    except (AuditSearchError, PersonNotFound) as exc:
        return render(request, "privacy_search.html", status_code=400, form=form, page=None, error=str(exc))
    next_url = None
    if page.next_before:
        params = {key: value for key, value in form.items() if value} | {"before": page.next_before}
        next_url = "/privacy?" + urlencode(params)
    return render(request, "privacy_search.html", form=form, page=page, error=None, next_url=next_url)


def _report(request: Request, login: Officer, person: str) -> AccessReport:
    try:
        with session_scope(request.app.state.engine) as db:
            return access_report(db, person, actor=login.actor, client_ip=client_ip(request))
    except PersonNotFound:
        raise PageError(404, "privacy.unknown_person") from None
    except AuditSearchError:
        raise PageError(400, "privacy.ambiguous_person") from None


@router.get("/report", summary="A person's access report: who read what, when, for what purpose", **HTML)
def report_page(request: Request, login: Officer, person: PersonQuery) -> HTMLResponse:
    report = _report(request, login, person)
    return render(request, "privacy_report.html", report=report, person=person)


@router.get(
    "/report.json",
    summary="A person's access report as JSON (PIPL Art. 45 access and copy)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def report_json_file(request: Request, login: Officer, person: PersonQuery) -> Response:
    report = _report(request, login, person)
    return attachment(report_json(report), "application/json", f"access-{report.person_id}.json")


@router.get(
    "/report.csv",
    summary="A person's access report as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def report_csv_file(request: Request, login: Officer, person: PersonQuery) -> Response:
    report = _report(request, login, person)
    # A BOM first, so that spreadsheet programs read the Chinese correctly.
    return attachment("\ufeff" + report_csv(report), "text/csv; charset=utf-8", f"access-{report.person_id}.csv")


@router.get("/apps", summary="Per-app statistics and rate alerts", **HTML)
def apps_page(request: Request, login: Officer, days: Annotated[int, Query(ge=1, le=366)] = 30) -> HTMLResponse:
    settings = settings_of(request)
    with session_scope(request.app.state.engine) as db:
        rows = app_statistics(db, days=days)
        alerts = rate_alerts(db, load_alert_policy(settings))
    return render(request, "privacy_apps.html", rows=rows, alerts=alerts, days=days)


@router.get("/checkpoints", summary="Signed checkpoints of the audit log", **HTML)
def checkpoints_page(request: Request, login: Officer) -> HTMLResponse:
    with session_scope(request.app.state.engine) as db:
        rows = list(db.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(50)))  # type: ignore[union-attr]
    return render(request, "privacy_checkpoints.html", checkpoints=rows)


@router.post(
    "/checkpoints",
    summary="Sign the head of the audit log now",
    dependencies=[Depends(verify_csrf)],
    response_class=RedirectResponse,
    status_code=303,
)
def new_checkpoint(request: Request, login: Officer) -> RedirectResponse:
    with session_scope(request.app.state.engine) as db:
        create_checkpoint(db, settings_of(request), actor=login.actor)
    return RedirectResponse("/privacy/checkpoints", status_code=303)


@router.get(
    "/checkpoints/{checkpoint_id}.json",
    summary="Export a signed checkpoint (verifiable offline)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def export(request: Request, login: Officer, checkpoint_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    with session_scope(request.app.state.engine) as db:
        checkpoint = db.get(AuditCheckpoint, checkpoint_id)
        if checkpoint is None:
            raise PageError(404, "privacy.unknown_checkpoint")
        document = export_checkpoint(checkpoint)
    return attachment(
        json.dumps(document, indent=2) + "\n", "application/json", f"audit-checkpoint-{checkpoint_id}.json"
    )
