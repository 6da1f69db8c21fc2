"""The WeChat Work contacts API over HTTP: tokens, limits and retries handled once, here.

- Every call carries the shared access token (`token_cache`); 40014/42001/41001 fetch a new one once and
  retry the call once.
- 45009 (frequency limit): the API is blocked for every thread of this process until the limit window
  (`IDBROKER_WECOM_RATE_WINDOW_SECONDS`, WeChat Work's minute) has passed, then the call is retried.
- 45033 (too many concurrent calls): calls in flight are capped (`IDBROKER_WECOM_CONCURRENCY`, under the
  corp's cap); should the corp still refuse, back off briefly and retry.
- −1 (busy) and transport failures: retried up to three times with back-off.
Anything else is a `WeComError` for the caller to reconcile (60102, 60104, 60111…) or report.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from sqlalchemy import Engine

from idbroker.config import Settings
from idbroker.directory.protect import Protector
from idbroker.wecom import errors
from idbroker.wecom.errors import WeComError, WeComNotConfigured
from idbroker.wecom.token_cache import TokenCache

log = logging.getLogger("idbroker.wecom")

BUSY_RETRIES = 3
CONCURRENCY_RETRIES = 10
RATE_LIMIT_WAITS = 30
LIST_ID_LIMIT = 10_000
INVITE_CHUNK = 1000


class WeComClient:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not settings.wecom_corp_id or settings.wecom_contacts_secret is None:
            raise WeComNotConfigured(
                "WeChat Work is not configured: set IDBROKER_WECOM_CORP_ID and IDBROKER_WECOM_CONTACTS_SECRET"
            )
        self.corp_id = settings.wecom_corp_id
        self._secret = settings.wecom_contacts_secret.get_secret_value()
        self.window = settings.wecom_rate_window_seconds
        self.sleep = sleep
        base = settings.wecom_api_base.rstrip("/") + "/"
        self.http = httpx.Client(
            base_url=base,
            timeout=settings.wecom_timeout_seconds,
            transport=transport,
            limits=httpx.Limits(
                max_connections=settings.wecom_concurrency, max_keepalive_connections=settings.wecom_concurrency
            ),
        )
        self._slots = threading.BoundedSemaphore(settings.wecom_concurrency)
        self._blocked: dict[str, float] = {}
        self._blocked_lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.tokens = TokenCache(engine, Protector.from_settings(settings), self.corp_id, self._secret, self._gettoken)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- the call loop ---------------------------------------------------------------------------------

    def _send(self, method: str, api: str, **kwargs: Any) -> dict[str, Any]:
        """One HTTP exchange; transport failures, non-200 answers and −1 are retried here."""
        for attempt in range(BUSY_RETRIES + 1):
            self._wait_if_blocked(api)
            with self._slots:
                self.calls[api] += 1
                try:
                    response = self.http.request(method, api, **kwargs)
                    data = response.json() if response.status_code == 200 else None
                except (httpx.TransportError, ValueError) as exc:
                    data, failure = None, type(exc).__name__
                else:
                    failure = f"HTTP {response.status_code}" if data is None else ""
            if data is not None and data.get("errcode", 0) != errors.BUSY:
                return data
            if attempt == BUSY_RETRIES:
                if data is not None:
                    return data
                raise WeComError(api, errors.BUSY, failure or "unreachable")
            self.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def _wait_if_blocked(self, api: str) -> None:
        with self._blocked_lock:
            until = self._blocked.get(api, 0.0)
        delay = until - time.monotonic()
        if delay > 0:
            self.sleep(delay)

    def _block(self, api: str) -> None:
        with self._blocked_lock:
            until = time.monotonic() + self.window
            if self._blocked.get(api, 0.0) < until - 1e-3:
                self._blocked[api] = until
                log.warning("WeChat Work %s: frequency limit (45009), pausing %.0f s", api, self.window)

    def call(self, method: str, api: str, *, params: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Call `api` with the access token; returns the answer of errcode 0, raises `WeComError` otherwise."""
        token = self.tokens.get()
        refetched = False
        rate_waits = concurrency_waits = 0
        while True:
            data = self._send(method, api, params={**(params or {}), "access_token": token}, **kwargs)
            code = int(data.get("errcode", 0))
            if code == 0:
                return data
            if code in errors.TOKEN_ERRORS and not refetched:
                token, refetched = self.tokens.replace(token), True
                continue
            if code == errors.FREQUENCY_LIMIT and rate_waits < RATE_LIMIT_WAITS:
                rate_waits += 1
                self._block(api)
                continue
            if code == errors.TOO_MANY_CONCURRENT and concurrency_waits < CONCURRENCY_RETRIES:
                concurrency_waits += 1
                self.sleep(min(2.0, 0.05 * 2**concurrency_waits) * (0.5 + random.random()))
                continue
            raise WeComError(api, code, str(data.get("errmsg", "")))

    def _gettoken(self) -> tuple[str, int]:
        params = {"corpid": self.corp_id, "corpsecret": self._secret}
        for _ in range(RATE_LIMIT_WAITS):
            data = self._send("GET", "gettoken", params=params)
            code = int(data.get("errcode", 0))
            if code == 0:
                return str(data["access_token"]), int(data.get("expires_in", 7200))
            if code != errors.FREQUENCY_LIMIT:
                raise WeComError("gettoken", code, str(data.get("errmsg", "")))
            self._block("gettoken")
        raise WeComError("gettoken", errors.FREQUENCY_LIMIT, "still limited")

    # --- departments (path/90205, 90206, 95350) ---------------------------------------------------------

    def department_ids(self) -> dict[int, int]:
        """Every department id in the corp → its parent (`department/simplelist`)."""
        data = self.call("GET", "department/simplelist")
        return {int(d["id"]): int(d.get("parentid", 0)) for d in data.get("department_id", [])}

    def create_department(self, department_id: int, name: str, parent: int, order: int) -> None:
        self.call(
            "POST", "department/create", json={"id": department_id, "name": name, "parentid": parent, "order": order}
        )

    def update_department(self, department_id: int, name: str, parent: int, order: int) -> None:
        self.call(
            "POST", "department/update", json={"id": department_id, "name": name, "parentid": parent, "order": order}
        )

    # --- members (path/90195, 90196, 90197, 96067) -----------------------------------------------------

    def create_user(self, fields: dict[str, Any]) -> None:
        self.call("POST", "user/create", json=fields)

    def update_user(self, fields: dict[str, Any]) -> None:
        self.call("POST", "user/update", json=fields)

    def get_user(self, userid: str) -> dict[str, Any]:
        return self.call("GET", "user/get", params={"userid": userid})

    def list_ids(self, limit: int = LIST_ID_LIMIT) -> Iterator[dict[str, Any]]:
        """Every (userid, department) pair of the corp, page by page (`user/list_id`)."""
        cursor = ""
        while True:
            data = self.call("POST", "user/list_id", json={"cursor": cursor, "limit": limit})
            yield from data.get("dept_user", [])
            cursor = data.get("next_cursor") or ""
            if not cursor:
                return

    # --- batch (path/90253, 91130, 90982, 91133, 90975) ----------------------------------------------------

    def upload_file(self, name: str, content: bytes) -> str:
        data = self.call("POST", "media/upload", params={"type": "file"}, files={"media": (name, content, "text/csv")})
        return str(data["media_id"])

    def sync_users(self, media_id: str, *, to_invite: bool, callback: dict[str, str] | None = None) -> str:
        """`batch/syncuser`; with `callback` ({url, token, encodingaeskey}) the job's end is also pushed there."""
        body: dict[str, Any] = {"media_id": media_id, "to_invite": to_invite}
        if callback:
            body["callback"] = callback
        return str(self.call("POST", "batch/syncuser", json=body)["jobid"])

    def replace_departments(self, media_id: str, *, callback: dict[str, str] | None = None) -> str:
        """`batch/replaceparty` (path/90982): the corp's whole department tree becomes the uploaded file's."""
        body: dict[str, Any] = {"media_id": media_id}
        if callback:
            body["callback"] = callback
        return str(self.call("POST", "batch/replaceparty", json=body)["jobid"])

    def batch_result(self, jobid: str) -> dict[str, Any]:
        return self.call("GET", "batch/getresult", params={"jobid": jobid})

    def invite(self, userids: list[str]) -> dict[str, Any]:
        return self.call("POST", "batch/invite", json={"user": userids})


def make_client(settings: Settings, engine: Engine) -> WeComClient:
    return WeComClient(settings, engine)
