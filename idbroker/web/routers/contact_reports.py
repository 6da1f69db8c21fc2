"""Delivery reports from the SMS gateways: Kannel's `dlr-url` (signed per message) and Aliyun's SmsReport
HTTP batch push (at a secret URL). Each report moves one delivery to sent, delivered or failed.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from idbroker.contacts.delivery import KANNEL_REPORTS, record_report, report_signature_valid
from idbroker.contacts.models import MessageDelivery
from idbroker.db import session_scope
from idbroker.web.session import settings_of

router = APIRouter()


@router.get(
    "/contacts/reports/kannel/{delivery_id}/{signature}",
    tags=["callbacks"],
    response_class=PlainTextResponse,
    summary="Kannel's dlr-url: a delivery report for one message (the URL is signed per message)",
    responses={403: {"description": "Not a URL the broker gave out"}},
)
def kannel_report(
    request: Request,
    delivery_id: Annotated[int, Path(ge=1, le=2**62)],
    signature: Annotated[str, Path(max_length=64)],
    type: Annotated[int, Query(ge=0, le=255, description="Kannel's report type: 1, 2, 4, 8 or 16")] = 0,
) -> PlainTextResponse:
    settings = settings_of(request)
    if not report_signature_valid(settings, delivery_id, signature):
        return PlainTextResponse("forbidden", status_code=403)
    outcome = KANNEL_REPORTS.get(type)
    with session_scope(request.app.state.engine) as db:
        known = record_report(db, settings, delivery_id, outcome, f"kannel:{type}")
    return PlainTextResponse("ok" if known else "unknown", status_code=200 if known else 404)


class CloudReport(BaseModel):
    biz_id: str | None = Field(default=None, max_length=128)
    out_id: str | None = Field(default=None, max_length=32)
    success: bool = False
    err_code: str | None = Field(default=None, max_length=64)


@router.post(
    "/contacts/reports/cloud/{token}",
    tags=["callbacks"],
    summary="Aliyun SmsReport (HTTP batch push): delivery reports for messages sent through the cloud API",
    responses={403: {"description": "Not the configured report URL"}},
)
def cloud_report(
    request: Request, token: Annotated[str, Path(max_length=128)], reports: list[CloudReport]
) -> JSONResponse:
    settings = settings_of(request)
    expected = settings.cloud_sms_report_token.get_secret_value() if settings.cloud_sms_report_token else None
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):  # bytes: non-ASCII is a 403
        return JSONResponse({"code": 1, "msg": "forbidden"}, status_code=403)
    with session_scope(request.app.state.engine) as db:
        for report in reports[:1000]:
            if not (report.out_id and report.out_id.isdigit()):
                continue
            delivery = db.get(MessageDelivery, int(report.out_id))
            if delivery is None or delivery.provider != "cloud" or delivery.provider_ref != report.biz_id:
                continue
            code = (report.err_code or "").replace(":", "-")[:20]
            record_report(db, settings, delivery.id, "delivered" if report.success else "failed", f"cloud:{code}")  # type: ignore[arg-type]
    return JSONResponse({"code": 0, "msg": "成功"})
