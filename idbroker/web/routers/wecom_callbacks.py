"""WeChat Work callbacks over HTTP: `GET /wecom/callback` (URL verification), `POST /wecom/callback` (events).

Only translation: the checks, the storage and the processing live in `idbroker.wecom.callbacks`. A POST is
answered `200` with an empty body once the event is committed (WeChat Work accepts an empty body; it waits
5 s, then retries); a forged signature or a callback for another corp gets 403, a malformed, truncated or
garbage body 400 — and nothing is stored. If the database cannot commit, 503: WeChat Work will retry.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from idbroker.wecom.callbacks.crypto import CallbackRejected
from idbroker.wecom.callbacks.intake import MAX_BODY_BYTES, CallbackReceiver
from idbroker.wecom.errors import WeComNotConfigured

router = APIRouter(prefix="/wecom", tags=["wecom"])

Signature = Annotated[str, Query(max_length=64, description="sha1 over token, timestamp, nonce and the ciphertext")]
Stamp = Annotated[str, Query(max_length=32)]
Nonce = Annotated[str, Query(max_length=64)]


def _receiver(request: Request) -> CallbackReceiver | None:
    receiver: CallbackReceiver | None = getattr(request.app.state, "wecom_receiver", None)
    if receiver is None:
        try:
            receiver = CallbackReceiver.from_settings(request.app.state.settings, request.app.state.engine)
        except WeComNotConfigured:
            return None
        request.app.state.wecom_receiver = receiver
    return receiver


def _refusal(exc: CallbackRejected) -> PlainTextResponse:
    return PlainTextResponse(str(exc), status_code=exc.status)


NOT_CONFIGURED = PlainTextResponse("WeChat Work callbacks are not configured", status_code=404)


@router.get("/callback", response_class=PlainTextResponse, responses={400: {}, 403: {}, 404: {}})
def verify_url(
    request: Request,
    msg_signature: Signature,
    timestamp: Stamp,
    nonce: Nonce,
    echostr: Annotated[str, Query(max_length=1024)],
) -> Response:
    """URL verification: answer the decrypted echostr alone (no quotes, BOM or newline)."""
    receiver = _receiver(request)
    if receiver is None:
        return NOT_CONFIGURED
    try:
        return PlainTextResponse(receiver.verify_url(msg_signature, timestamp, nonce, echostr))
    except CallbackRejected as exc:
        return _refusal(exc)


QUERY = [
    {"name": name, "in": "query", "required": True, "schema": {"type": "string", "maxLength": 64}}
    for name in ("msg_signature", "timestamp", "nonce")
]


@router.post(
    "/callback",
    response_class=Response,
    responses={400: {}, 403: {}, 404: {}, 413: {}, 503: {}},
    openapi_extra={"parameters": QUERY},
)
async def receive_event(request: Request) -> Response:
    """An event: stored durably, then acknowledged with an empty 200; processed later by the worker.

    The query is read by hand rather than declared: a burst of tens of thousands of callbacks should not pay
    for parameter validation it does not need (the signature check refuses anything malformed)."""
    receiver = _receiver(request)
    if receiver is None:
        return NOT_CONFIGURED
    query = request.query_params
    msg_signature, timestamp, nonce = query.get("msg_signature"), query.get("timestamp"), query.get("nonce")
    if not msg_signature or not timestamp or not nonce:
        return PlainTextResponse("msg_signature, timestamp and nonce are required", status_code=400)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return PlainTextResponse("the callback is too large", status_code=413)
    try:
        accepted = receiver.accept(body, msg_signature[:64], timestamp[:32], nonce[:64])
    except CallbackRejected as exc:
        return _refusal(exc)
    try:
        await receiver.intake.submit(accepted)
    except Exception:  # not committed: not acknowledged, WeChat Work retries
        return PlainTextResponse("the event could not be stored; retry", status_code=503)
    return Response(status_code=200)
