"""The person's own privacy page (`/me/privacy`, signed in): who used my data, my consents, download my data.

HTTP only; the work is in `idbroker.selfservice.privacy`. A person only ever sees and changes their own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from idbroker.db import session_scope
from idbroker.selfservice.privacy import data_uses, my_consents, my_data, my_data_json, withdraw_consent
from idbroker.web.client import client_ip
from idbroker.web.csrf import verify_csrf
from idbroker.web.routers.privacy import attachment
from idbroker.web.session import Login, require_login
from idbroker.web.templates import render

router = APIRouter(prefix="/me/privacy", tags=["me-privacy"])
Me = Annotated[Login, Depends(require_login)]
ClientId = Annotated[str, Path(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")]


@router.get("", summary="Who used my data, the apps I consented to, and the download", response_class=HTMLResponse)
def privacy_page(request: Request, me: Me) -> HTMLResponse:
    with session_scope(request.app.state.engine) as db:
        uses = data_uses(db, me.person_id)
        consents = my_consents(db, me.person_id)
    withdrawn = request.query_params.get("withdrawn")
    return render(request, "me_privacy_page.html", uses=uses, consents=consents, withdrawn=withdrawn)


@router.post(
    "/consents/{client_id}/withdraw",
    summary="Withdraw my consent to an app (its later requests are refused)",
    dependencies=[Depends(verify_csrf)],
    response_class=RedirectResponse,
    status_code=303,
)
def withdraw(request: Request, me: Me, client_id: ClientId) -> RedirectResponse:
    with session_scope(request.app.state.engine) as db:
        withdrawn = withdraw_consent(db, me.person_id, client_id, actor=me.actor)
    return RedirectResponse(f"/me/privacy?withdrawn={'1' if withdrawn else '0'}", status_code=303)


@router.get(
    "/download",
    summary="Download everything the broker holds on me (JSON)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def download(request: Request, me: Me) -> Response:
    with session_scope(request.app.state.engine) as db:
        document = my_data(db, me.person_id, actor=me.actor, client_ip=client_ip(request))
    return attachment(my_data_json(document), "application/json", "my-data.json")
