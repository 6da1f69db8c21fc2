"""DEMO ONLY: a development stand-in for the campus CAS, to pick a generated person and sign in as them.

`create_app` includes this router only when `IDBROKER_DEMO_MODE=true` and no `IDBROKER_CAS_SERVER_URL`
is set; otherwise `/demo/cas/login` does not exist (404). Picking a person continues exactly like a CAS
callback that validated their uid (audited as a `login` via `demo`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlmodel import Session, col, select

from idbroker.clock import utcnow
from idbroker.db import session_scope
from idbroker.directory.models import SourceRecord
from idbroker.web.cas import safe_next
from idbroker.web.csrf import verify_csrf
from idbroker.web.routers.login import complete_login
from idbroker.web.templates import render

router = APIRouter(prefix="/demo/cas", include_in_schema=False)

FEATURED = "1120101234"  # the university's own example person, 张帅, always in the generated campus
SHOWN = 8


def demo_people(db: Session) -> list[SourceRecord]:
    """A few numbers to sign in with: 张帅 first, then students and staff of the generated campus."""
    query = (
        select(SourceRecord)
        .where(col(SourceRecord.source).in_(("student", "hr")), col(SourceRecord.person_id).is_not(None))
        .where(SourceRecord.present)
        .order_by(col(SourceRecord.key) != FEATURED, SourceRecord.source, SourceRecord.key)
        .limit(SHOWN)
    )
    return list(db.exec(query).all())


@router.get("/login")
def pick(request: Request, next: str | None = None) -> Response:
    with session_scope(request.app.state.engine) as db:
        people = demo_people(db)
    return render(request, "login_demo.html", people=people, next=safe_next(next))


@router.post("/login", dependencies=[Depends(verify_csrf)])
def picked(request: Request, uid: Annotated[str, Form(max_length=64)], next: Annotated[str, Form()] = "/") -> Response:
    return complete_login(request, uid=uid, via="demo", auth_time=utcnow(), next_path=next)
