"""The tests' stand-in for the WeChat Work contacts API: the demo corp's protocol, plus what only tests need.

The protocol itself — tokens, limits, departments, members, media and batch jobs (`batch/syncuser`,
`batch/replaceparty`, `batch/getresult`), with the documented rules and error codes — is
`idbroker.demo.wecom_corp.WeComCorp` (one implementation, also mounted by the demo; see its docstring).
On top of it, for tests and benchmarks:
- served under `/cgi-bin/` like qyapi.weixin.qq.com (`app`); `latency` delays every answer (so concurrency
  is real); `fail_next(api, errcode, times)` injects faults (−1 busy and the like) before anything else;
  `revoke_tokens()` revokes every token early, as the server may;
- the callbacks WeChat Work sends, encrypted with wechatpy (an independent implementation): `batch_job_result`
  to a job's `callback` when it ends, and `subscribe` to `event_callback` when `follow(userid)` activates a
  member;
- counters: `calls` (api, errcode, time), `count(api, errcode)`, `stats()`, `peak_in_flight`; `/_standin/stats`,
  `/_standin/members` and `POST /_standin/follow` expose the same to a test or benchmark in another process.

Run it alone: `python tests/standins/wecom_api.py --port 8900 [--latency 0.002]`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from idbroker.demo.wecom_corp import BUSY, ApiError, Job, WeComCorp

PREFIX = "/cgi-bin"


@dataclass
class WeComStandIn(WeComCorp):
    corp_id: str = "wwstandin00000001"
    secret: str = "standin-contacts-secret"
    event_callback: dict[str, str] | None = None  # {"url", "token", "encodingaeskey"}: where subscribe goes
    base_url: str = ""  # where it is served (set by whoever serves it)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.app = Starlette(
            routes=[
                Route(PREFIX + "/{api:path}", self._endpoint, methods=["GET", "POST"]),
                Route("/_standin/stats", self._stats, methods=["GET"]),
                Route("/_standin/members", self._members, methods=["GET"]),
                Route("/_standin/follow", self._follow, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.faults: dict[str, list[int]] = {}

    # --- test controls ------------------------------------------------------------------------------------

    def reset_calls(self) -> None:
        with self.lock:
            self.calls = []

    def fail_next(self, api: str, errcode: int, times: int = 1) -> None:
        with self.lock:
            self.faults.setdefault(api, []).extend([errcode] * times)

    def admit(self, api: str, now: float, *, crowded: bool) -> None:
        if crowded:
            super().admit(api, now, crowded=True)
        faults = self.faults.get(api)
        if faults:
            code = faults.pop(0)
            raise ApiError(code, "system busy" if code == BUSY else "injected")
        super().admit(api, now, crowded=False)

    def follow(self, userid: str) -> None:
        super().follow(userid)
        if self.event_callback:
            self.send_event(self.event_callback, _event_xml(self.corp_id, userid, "subscribe"))

    def job_finished(self, job: Job) -> None:
        if job.callback:
            self.send_event(job.callback, _batch_xml(self.corp_id, job.jobid, job.type))

    def count(self, api: str | None = None, errcode: int | None = None) -> int:
        with self.lock:
            return sum(
                1 for c in self.calls if (api is None or c.api == api) and (errcode is None or c.errcode == errcode)
            )

    def stats(self) -> dict[str, Any]:
        with self.lock:
            by_api = Counter(c.api for c in self.calls)
            by_code = Counter(str(c.errcode) for c in self.calls)
            return {
                "calls": len(self.calls),
                "by_api": dict(by_api),
                "by_errcode": dict(by_code),
                "members": len(self.members),
                "departments": len(self.departments),
                "peak_in_flight": self.peak_in_flight,
            }

    def member(self, userid: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.members.get(userid.lower())
            return dict(found) if found else None

    def send_event(self, target: dict[str, str], xml: str) -> int:
        """POST an event the way WeChat Work does: encrypted and signed by wechatpy (an independent implementation)."""
        from wechatpy.enterprise.crypto import WeChatCrypto

        crypto = WeChatCrypto(target["token"], target["encodingaeskey"], self.corp_id)
        nonce, timestamp = secrets.token_hex(5), str(int(time.time()))
        envelope = crypto.encrypt_message(xml, nonce, timestamp)
        encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", envelope).group(1)  # type: ignore[union-attr]
        signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            "<AgentID><![CDATA[]]></AgentID></xml>"
        )
        try:
            response = httpx.post(
                target["url"],
                params={"msg_signature": signature, "timestamp": timestamp, "nonce": nonce},
                content=body.encode(),
                timeout=10,
            )
        except httpx.HTTPError:
            return 0
        return response.status_code

    # --- the HTTP side ------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        return await self.respond(request, request.path_params["api"])

    async def _stats(self, _request: Request) -> JSONResponse:
        return JSONResponse(self.stats())

    async def _members(self, _request: Request) -> JSONResponse:
        with self.lock:
            return JSONResponse([dict(m) for m in self.members.values()])

    async def _follow(self, request: Request) -> JSONResponse:
        userids = (await request.json()).get("userids", [])
        await asyncio.to_thread(lambda: [self.follow(u) for u in userids])
        return JSONResponse({"followed": len(userids)})


def _event_xml(corp_id: str, userid: str, event: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[{userid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><AgentID>1</AgentID></xml>"
    )


def _batch_xml(corp_id: str, jobid: str, job_type: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[batch_job_result]]></Event><BatchJob><JobId><![CDATA[{jobid}]]></JobId>"
        f"<JobType><![CDATA[{job_type}]]></JobType><ErrCode>0</ErrCode><ErrMsg><![CDATA[ok]]></ErrMsg></BatchJob></xml>"
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="the WeChat Work API stand-in")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--batch-delay", type=float, default=0.3)
    parser.add_argument("--corp-id", default=WeComStandIn.corp_id)
    parser.add_argument("--secret", default=WeComStandIn.secret)
    args = parser.parse_args()
    standin = WeComStandIn(corp_id=args.corp_id, secret=args.secret, latency=args.latency, batch_delay=args.batch_delay)
    uvicorn.run(standin.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
