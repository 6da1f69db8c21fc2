"""DEMO ONLY: the demo's WeChat Work corp at `/demo/wecom/` — the API the sync calls, and a page to watch it.

Included by `create_app` only when `IDBROKER_DEMO_MODE=true`. `/demo/wecom/cgi-bin/…` answers the documented
contacts API (`idbroker.demo.wecom_corp`, kept in a file by `idbroker.demo.wecom_demo`); `idbroker demo load`
points the broker at it, so `idbroker wecom sync` works without a real corp. `/demo/wecom` lists the corp's
departments and members (mobiles and emails masked) and the latest calls it received.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request, Response

from idbroker.demo.wecom_demo import API_PATH, DEMO_PATH, DemoCorp, corp_for, snapshot
from idbroker.web.templates import render

router = APIRouter(prefix=DEMO_PATH, include_in_schema=False)
_lock = threading.Lock()


def _corp(request: Request) -> DemoCorp:
    with _lock:
        corp: DemoCorp | None = getattr(request.app.state, "demo_wecom_corp", None)
        if corp is None:
            corp = request.app.state.demo_wecom_corp = corp_for(request.app.state.settings)
    return corp


@router.api_route("/cgi-bin/{api:path}", methods=["GET", "POST"])
async def api(request: Request, api: str) -> Response:
    return await _corp(request).respond(request, api)


@router.get("")
def page(request: Request) -> Response:
    return render(request, "demo_wecom.html", api_base=API_PATH + "/", **snapshot(_corp(request)))
