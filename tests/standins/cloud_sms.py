"""A local stand-in for Aliyun SMS `SendSms` (dysmsapi 2017-05-25), following its documented protocol.

What it checks, as the service does: the RPC signature (HMAC-SHA1 over the sorted, RFC 3986-encoded
parameters, key `AccessKeySecret&`), the access key, `Timestamp` within 15 minutes, a `SignatureNonce` used
only once, the version and action, the sign name, the template code and that `TemplateParam` is JSON holding
every variable of the template, and the number (a mainland mobile). Answers are the documented JSON:
`{"Code": "OK", "Message": "OK", "BizId": …, "RequestId": …}` or an error `Code`
(`SignatureDoesNotMatch` and `InvalidAccessKeyId.NotFound` with HTTP 400/404, business errors such as
`isv.MOBILE_NUMBER_ILLEGAL` and `isv.BUSINESS_LIMIT_CONTROL` with HTTP 200). Per-number flow control:
one message a minute. Delivery reports are pushed (`push_reports`) as the SmsReport HTTP batch push: a JSON
array of `{phone_number, send_time, report_time, success, err_code, err_msg, sms_size, biz_id, out_id}`.

This is an independent implementation of the signature (written from the documentation, not importing the
broker's), so a mistake in either shows as `SignatureDoesNotMatch`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ACCESS_KEY_ID = "LTAIstandin0000001"
ACCESS_KEY_SECRET = "standin-access-key-secret"
SIGN_NAME = "示例大学"
TEMPLATES = {
    "SMS_000000001": "您的验证码是${code}，请勿告诉他人。",
    "SMS_000000002": "请在${minutes}分钟内打开链接更新您的联系方式：${link}",
}
_VARIABLE = re.compile(r"\$\{(\w+)\}")
_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9]\d{9})")


def _encode(value: str) -> str:
    # RFC 3986: unreserved characters stay, everything else (UTF-8 bytes) is %XX; space is %20, never +.
    return quote(value.encode("utf-8"), safe="~-._")


def expected_signature(secret: str, method: str, params: dict[str, str]) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(_encode(k) + "=" + _encode(v) for k, v in pairs)
    text = method.upper() + "&" + _encode("/") + "&" + _encode(canonical)
    return base64.b64encode(hmac.new((secret + "&").encode(), text.encode(), hashlib.sha1).digest()).decode()


@dataclass
class CloudMessage:
    phone: str  # 11-digit national number, as Aliyun reports it
    template_code: str
    params: dict[str, str]
    text: str  # 【签名】 + the template with its variables filled in
    biz_id: str
    out_id: str | None


@dataclass
class CloudSmsStandIn:
    access_key_id: str = ACCESS_KEY_ID
    access_key_secret: str = ACCESS_KEY_SECRET
    sign_name: str = SIGN_NAME
    messages: list[CloudMessage] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with HTTP 503 (a transient outage)
    _nonces: set[str] = field(default_factory=set)
    _last_sent: dict[str, datetime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self._nonces.clear()
            self._last_sent.clear()
            self.fail_next = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self._endpoint, methods=["GET", "POST"])])

    async def _endpoint(self, request: Request) -> JSONResponse:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        with self._lock:
            return self._handle(request.method, params)

    def _error(self, code: str, message: str, status: int = 200) -> JSONResponse:
        return JSONResponse({"RequestId": uuid.uuid4().hex.upper(), "Code": code, "Message": message}, status)

    def _handle(self, method: str, params: dict[str, str]) -> JSONResponse:
        if self.fail_next > 0:
            self.fail_next -= 1
            return self._error("ServiceUnavailable", "The request has failed due to a temporary failure.", 503)
        for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "Action", "Version"):
            if not params.get(name):
                return self._error("MissingParameter", f"{name} is mandatory for this action.", 400)
        if params["AccessKeyId"] != self.access_key_id:
            return self._error("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            return self._error("InvalidParameter", "SignatureMethod or SignatureVersion is not supported.", 400)
        if not hmac.compare_digest(params["Signature"], expected_signature(self.access_key_secret, method, params)):
            return self._error("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400)
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return self._error(
                "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.", 400
            )
        if abs(datetime.now(UTC) - stamp) > timedelta(minutes=15):
            return self._error("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400)
        if params["SignatureNonce"] in self._nonces:
            return self._error("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
        self._nonces.add(params["SignatureNonce"])
        if params["Action"] != "SendSms" or params["Version"] != "2017-05-25":
            return self._error(
                "InvalidAction.NotFound", "Specified api is not found, please check your url and method.", 404
            )
        if params.get("SignName") != self.sign_name:
            return self._error("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        template = TEMPLATES.get(params.get("TemplateCode", ""))
        if template is None:
            return self._error("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return self._error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(values, dict) or any(not isinstance(v, str) for v in values.values()):
            return self._error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if any(name not in values for name in _VARIABLE.findall(template)):
            return self._error("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
        number = _MOBILE.fullmatch(params.get("PhoneNumbers", ""))
        if number is None:
            return self._error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        phone = number.group(1)
        now = datetime.now(UTC)
        last = self._last_sent.get(phone)
        if last is not None and now - last < timedelta(minutes=1):
            return self._error("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
        self._last_sent[phone] = now
        biz_id = f"{uuid.uuid4().int % 10**15}^0"
        text = f"【{self.sign_name}】" + _VARIABLE.sub(lambda m: values[m.group(1)], template)
        self.messages.append(CloudMessage(phone, params["TemplateCode"], values, text, biz_id, params.get("OutId")))
        return JSONResponse({"Message": "OK", "RequestId": uuid.uuid4().hex.upper(), "Code": "OK", "BizId": biz_id})

    def push_reports(self, url: str, *, success: bool = True) -> httpx.Response:
        """Push a delivery report for every message received, as the SmsReport HTTP batch push does."""
        now = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        reports = [
            {
                "phone_number": m.phone,
                "send_time": now,
                "report_time": now,
                "success": success,
                "err_code": "DELIVERED" if success else "MK:0001",
                "err_msg": "用户接收成功" if success else "用户接收失败",
                "sms_size": "1",
                "biz_id": m.biz_id,
                "out_id": m.out_id,
            }
            for m in self.messages
        ]
        return httpx.post(url, json=reports, timeout=10)
