"""Aliyun SMS (`dysmsapi`, version 2017-05-25) `SendSms`, signed with the RPC signature (version 1.0).

The request carries the common parameters (`Action=SendSms`, `Version`, `Format=JSON`, `AccessKeyId`,
`SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`, `SignatureNonce` unique per request, `Timestamp` in UTC
`yyyy-MM-ddTHH:mm:ssZ`) and the action's (`PhoneNumbers`, `SignName`, `TemplateCode`, `TemplateParam` as
JSON, `OutId` — here the delivery id, echoed in delivery reports). Signing:

    canonical  = "&".join(enc(k) + "=" + enc(v) for k, v in sorted(params))      # enc: RFC 3986, UTF-8
    to_sign    = METHOD + "&" + enc("/") + "&" + enc(canonical)
    Signature  = base64(HMAC-SHA1(AccessKeySecret + "&", to_sign))

The answer is JSON: `{"Code": "OK", "Message": "OK", "BizId": "…", "RequestId": "…"}` on success, another
`Code` otherwise (`isv.MOBILE_NUMBER_ILLEGAL`, `isv.BUSINESS_LIMIT_CONTROL`, `SignatureDoesNotMatch`, …).
Delivery reports arrive by the "HTTP batch push" (SmsReport): a JSON array of
`{phone_number, send_time, report_time, success, err_code, err_msg, sms_size, biz_id, out_id}`, answered
with `{"code": 0, "msg": "成功"}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from idbroker.config import Settings
from idbroker.contacts.senders.gateway import Handover, Outgoing, Permanent, Transient, http_client

API_VERSION = "2017-05-25"
# Codes that say "not now" rather than "never": throttling and the provider's own flow control.
TRANSIENT_CODES = ("isv.BUSINESS_LIMIT_CONTROL", "Throttling", "ServiceUnavailable", "InternalError")


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8, as Aliyun's signature requires (`~` kept, space as %20)."""
    return quote(value, safe="-_.~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def sign(secret: str, method: str, params: dict[str, str]) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class AliyunSms:
    endpoint: str
    access_key_id: str
    access_key_secret: str
    sign_name: str
    timeout: float = 10.0
    name: str = "cloud"

    @classmethod
    def from_settings(cls, settings: Settings) -> AliyunSms:
        secret = settings.cloud_sms_access_key_secret
        return cls(
            endpoint=settings.cloud_sms_endpoint,
            access_key_id=settings.cloud_sms_access_key_id or "",
            access_key_secret=secret.get_secret_value() if secret else "",
            sign_name=settings.cloud_sms_sign_name,
            timeout=settings.sms_timeout_seconds,
        )

    def request_params(self, outgoing: Outgoing, *, now: datetime | None = None, nonce: str | None = None) -> dict:  # type: ignore[type-arg]
        message = outgoing.message
        if not message.cloud_template:
            raise Permanent(f"message template {message.template!r} has no cloud template code")
        params = {
            "Action": "SendSms",
            "Version": API_VERSION,
            "Format": "JSON",
            "AccessKeyId": self.access_key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": nonce or uuid.uuid4().hex,
            "Timestamp": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RegionId": "cn-hangzhou",
            "PhoneNumbers": outgoing.to.removeprefix("+86") if outgoing.to.startswith("+86") else outgoing.to[1:],
            "SignName": self.sign_name,
            "TemplateCode": message.cloud_template,
            "TemplateParam": json.dumps(message.cloud_params or {}, ensure_ascii=False, separators=(",", ":")),
            "OutId": str(outgoing.delivery_id),
        }
        params["Signature"] = sign(self.access_key_secret, "POST", params)
        return params

    def send(self, outgoing: Outgoing, client: httpx.Client | None = None) -> Handover:
        if not self.access_key_id or not self.access_key_secret:
            raise Permanent("cloud SMS credentials are not configured")
        params = self.request_params(outgoing)
        try:
            response = (client or http_client()).post(self.endpoint, data=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise Transient(f"cloud SMS unreachable ({type(exc).__name__})") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        code = str(answer.get("Code", ""))
        if response.status_code == 200 and code == "OK":
            return Handover(reference=str(answer.get("BizId") or "") or None)
        what = f"cloud SMS answered {response.status_code} {code or 'without a code'}"
        if response.status_code >= 500 or code.startswith(TRANSIENT_CODES):
            raise Transient(what)
        raise Permanent(what)
