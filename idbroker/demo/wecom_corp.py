"""DEMO ONLY: a WeChat Work corp in memory that speaks the documented contacts API (../shared/reference/wecom.md).

One implementation of the protocol, used twice: the demo mounts it under `/demo/wecom/cgi-bin/` so a newcomer
can watch `idbroker wecom sync` work without a real corp (`idbroker.web.routers.demo_wecom`), and the tests'
stand-in (`tests/standins/wecom_api.py`) adds fault injection, the callbacks WeChat Work sends and counters
on top. No public fake of the API exists; this one follows the documentation:
- `gettoken` (corpid 40013, secret 40001); tokens expire after `token_ttl` (42001); an unknown or revoked
  token gets 40014, a missing one 41001.
- Limits: per API at most `rate_limit` calls per `rate_window` seconds; the call that exceeds it and every
  call for the next `rate_window` seconds get 45009. More than `concurrency_cap` calls in flight get 45033.
- Departments (`department/create|update|delete|simplelist|get`): id > 1, names 1–64 characters without
  `\\:*?"<>|`, unique under their parent, at most 15 levels; the root and non-empty departments cannot go.
- Members (`user/create|update|get|delete|batchdelete|simplelist|list|list_id`): userid 1–64 bytes of
  `[0-9A-Za-z_-@.]` starting with a letter or digit, unique case-insensitively (60102); name 1–64 characters
  (60112); departments that exist (60003); mobile and email valid (60103/60105) and unique in the corp
  (60104/60106), at least one of them; `user/update` changes only the fields sent; `user/get` does not
  show mobile or email (as the contacts secret sees it from new IPs, 48009). 60111 for an unknown userid.
- Batch: `media/upload` (multipart `media`, 5 B–20 MB); `batch/syncuser` (path/90980: UTF-8 CSV with a header
  row; 帐号 is the key, departments are ids separated by semicolons; absent members are left alone);
  `batch/replaceparty` (path/90982: UTF-8 CSV `部门名称,部门ID,父部门ID,排序`, the first three required, ids
  numeric, the root is 1; the tree becomes the file's — rows are created, renamed, moved or reordered (an
  empty or 0 排序 keeps the order), departments absent from the file are deleted when they hold no member and
  no department, kept otherwise); a job finishes `batch_delay` seconds later: `batch/getresult` (path/90983)
  answers status 1 → 2 → 3 with its `type` (`sync_user`, `replace_party`) and then a result per row
  (`{userid, errcode}`; for departments `{action, partyid, errcode}`, action bits 1 created, 2 renamed,
  4 moved, 8 reordered). `batch/invite`.
Every call is logged (`calls`: api, errcode, time); `max_calls` keeps only the latest (the demo's page).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

ROOT = 1
USERID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_\-@.]{0,63}")
MOBILE = re.compile(r"(?:\+(\d{1,4}) ?)?(\d{5,15})")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
BAD_DEPARTMENT_CHARS = re.compile(r'[\\:*?"<>|]')
MAX_LEVELS = 15
MAX_MEDIA = 20 * 1024 * 1024
PARTY_COLUMNS = ("部门名称", "部门ID", "父部门ID")  # required columns of batch/replaceparty (排序 optional)
PARTY_CREATED, PARTY_RENAMED, PARTY_MOVED, PARTY_REORDERED = 1, 2, 4, 8  # getresult `action` bits (path/90983)

# Error codes (path/90313); those the reference does not list are marked as such.
OK, BUSY = 0, -1
BAD_SECRET, BAD_USERID, BAD_CORPID, INVALID_TOKEN = 40001, 40003, 40013, 40014
BAD_MEDIA_ID, BAD_PARAMETER = 40007, 40058  # not in the reference: the codes WeChat Work documents for these
TOKEN_MISSING, TOKEN_EXPIRED, FREQUENCY, CONCURRENCY = 41001, 42001, 45009, 45033
DEPARTMENT_NOT_FOUND = 60003
DEPARTMENT_HAS_MEMBERS, DEPARTMENT_HAS_CHILDREN = 60005, 60006  # not in the reference
DEPARTMENT_TOO_DEEP, DEPARTMENT_EXISTS = 60007, 60008  # not in the reference
USERID_EXISTS, BAD_MOBILE, MOBILE_EXISTS, BAD_EMAIL, EMAIL_EXISTS = 60102, 60103, 60104, 60105, 60106
USERID_NOT_FOUND, BAD_NAME, NO_CONTACT = 60111, 60112, 60129  # 60129 (mobile and email both empty): not in it


class ApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


@dataclass
class Call:
    api: str
    errcode: int
    at: float
    userid: str | None = None


@dataclass
class Job:
    jobid: str
    type: str  # sync_user | replace_party
    rows: list[dict[str, str]]
    submitted_at: float
    finish_at: float
    callback: dict[str, str] | None
    to_invite: bool = True
    status: int = 1
    finished_at: float | None = None
    result: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class WeComCorp:
    corp_id: str = ""  # the corpid and contacts secret gettoken takes (empty: none is taken)
    secret: str = ""
    token_ttl: int = 7200
    rate_limit: int = 10_000
    rate_window: float = 60.0
    concurrency_cap: int = 300
    latency: float = 0.0  # seconds every answer waits (so that concurrency is real in a test)
    batch_delay: float = 0.3
    max_calls: int | None = None  # keep only this many calls in `calls` (None: all)
    name: str = "校园"  # the root department's name

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, float] = {}  # token → expires (monotonic)
            self.departments: dict[int, dict[str, Any]] = {
                ROOT: {"id": ROOT, "name": self.name, "parentid": 0, "order": 0}
            }
            self.members: dict[str, dict[str, Any]] = {}  # lower-case userid → member
            self.holders: dict[tuple[str, str], str] = {}  # (mobile|email, comparable value) → lower-case userid
            self.media: dict[str, bytes] = {}
            self.jobs: dict[str, Job] = {}
            self.invited: list[str] = []
            self.calls: list[Call] = []
            self.window: dict[str, tuple[float, int]] = {}  # api → (window start, calls in it)
            self.blocked: dict[str, float] = {}
            self.in_flight = 0
            self.peak_in_flight = 0

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def follow(self, userid: str) -> None:
        """The member activates WeChat Work (status 1), as when a person follows the corp."""
        with self.lock:
            member = self.members[userid.lower()]
            member["activated"] = True
            member["status"] = 1 if member["enable"] else 2

    # --- the HTTP side ------------------------------------------------------------------------------------

    async def respond(self, request: Request, api: str) -> JSONResponse:
        """Answer one HTTP request for `api` (the path under `/cgi-bin/`)."""
        api = api.strip("/")
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            crowded = self.in_flight > self.concurrency_cap
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            body: dict[str, Any] = {}
            files: dict[str, bytes] = {}
            if request.method == "POST":
                if api == "media/upload":
                    form = await request.form()
                    upload = form.get("media")
                    if upload is not None and not isinstance(upload, str):
                        files["media"] = await upload.read()
                else:
                    try:
                        parsed = json.loads(await request.body() or b"{}")
                    except ValueError:
                        parsed = None
                    body = parsed if isinstance(parsed, dict) else {"__invalid__": True}
            answer = self.handle(api, dict(request.query_params), body, files, crowded=crowded)
        finally:
            with self.lock:
                self.in_flight -= 1
        return JSONResponse(answer)

    def handle(
        self, api: str, query: dict[str, str], body: dict[str, Any], files: dict[str, bytes], *, crowded: bool = False
    ) -> dict[str, Any]:
        """One call, in order: admission (concurrency, limits), token, then the API itself."""
        now = time.monotonic()
        userid = query.get("userid") or (body.get("userid") if isinstance(body.get("userid"), str) else None)
        with self.lock:
            try:
                self.admit(api, now, crowded=crowded)
                if api != "gettoken":
                    self._check_token(query.get("access_token"), now)
                handler = getattr(self, "api_" + api.replace("/", "_"), None)
                if handler is None:
                    raise ApiError(BAD_PARAMETER, f"unknown api {api}")
                if body.get("__invalid__"):
                    raise ApiError(BAD_PARAMETER, "invalid json")
                result = handler(query, body, files, now)
                answer = {"errcode": OK, "errmsg": result.pop("errmsg", "ok"), **result}
            except ApiError as exc:
                answer = {"errcode": exc.errcode, "errmsg": exc.errmsg}
            self.calls.append(Call(api, answer["errcode"], now, userid))
            if self.max_calls is not None and len(self.calls) > self.max_calls:
                del self.calls[: len(self.calls) - self.max_calls]
            return answer

    def admit(self, api: str, now: float, *, crowded: bool) -> None:
        """Refuse a call the corp would not take now (raises `ApiError`)."""
        if crowded:
            raise ApiError(CONCURRENCY, "api concurrent out of limit")
        self._limit(api, now)

    def _limit(self, api: str, now: float) -> None:
        if self.blocked.get(api, 0.0) > now:
            raise ApiError(FREQUENCY, "api freq out of limit")
        start, count = self.window.get(api, (now, 0))
        if now - start >= self.rate_window:
            start, count = now, 0
        if count >= self.rate_limit:
            self.blocked[api] = now + self.rate_window  # a block lasts a whole window
            self.window[api] = (now + self.rate_window, 0)
            raise ApiError(FREQUENCY, "api freq out of limit")
        self.window[api] = (start, count + 1)

    def _check_token(self, token: str | None, now: float) -> None:
        if not token:
            raise ApiError(TOKEN_MISSING, "access_token missing")
        expires = self.tokens.get(token)
        if expires is None:
            raise ApiError(INVALID_TOKEN, "invalid access_token")
        if expires <= now:
            raise ApiError(TOKEN_EXPIRED, "access_token expired")

    # --- gettoken -----------------------------------------------------------------------------------------

    def api_gettoken(self, query: dict[str, str], _body: Any, _files: Any, now: float) -> dict[str, Any]:
        if not self.corp_id or query.get("corpid") != self.corp_id:
            raise ApiError(BAD_CORPID, "invalid corpid")
        if not self.secret or not secrets.compare_digest(query.get("corpsecret", "").encode(), self.secret.encode()):
            raise ApiError(BAD_SECRET, "invalid credential")
        token = secrets.token_urlsafe(48)
        self.tokens[token] = now + self.token_ttl
        return {"access_token": token, "expires_in": self.token_ttl}

    # --- departments --------------------------------------------------------------------------------------

    def _department_fields(self, body: dict[str, Any], department_id: int) -> tuple[str, int]:
        name = str(body.get("name", "")).strip()
        if not 1 <= len(name) <= 64 or BAD_DEPARTMENT_CHARS.search(name):
            raise ApiError(BAD_PARAMETER, "invalid department name")
        parent = int(body.get("parentid", 0))
        if parent not in self.departments:
            raise ApiError(DEPARTMENT_NOT_FOUND, "parent department not found")
        for other in self.departments.values():
            if other["id"] != department_id and other["parentid"] == parent and other["name"] == name:
                raise ApiError(DEPARTMENT_EXISTS, "department name existed")
        depth, walk = 1, parent
        while walk != ROOT:
            if walk == department_id:
                raise ApiError(BAD_PARAMETER, "a department cannot be its own ancestor")
            depth, walk = depth + 1, self.departments[walk]["parentid"]
        if depth > MAX_LEVELS:
            raise ApiError(DEPARTMENT_TOO_DEEP, "department level exceeds 15")
        return name, parent

    def _create_department(self, body: dict[str, Any]) -> int:
        department_id = int(body.get("id") or max(self.departments) + 1)
        if not ROOT < department_id < 2**32:
            raise ApiError(BAD_PARAMETER, "invalid department id")
        if department_id in self.departments:
            raise ApiError(DEPARTMENT_EXISTS, "department id existed")
        name, parent = self._department_fields(body, department_id)
        self.departments[department_id] = {
            "id": department_id,
            "name": name,
            "parentid": parent,
            "order": int(body.get("order", 0)),
        }
        return department_id

    def api_department_create(self, _q: Any, body: dict[str, Any], _f: Any, _now: float) -> dict[str, Any]:
        return {"errmsg": "created", "id": self._create_department(body)}

    def api_department_update(self, _q: Any, body: dict[str, Any], _f: Any, _now: float) -> dict[str, Any]:
        department_id = int(body.get("id", 0))
        current = self.departments.get(department_id)
        if current is None or department_id == ROOT:
            raise ApiError(DEPARTMENT_NOT_FOUND, "department not found")
        name, parent = self._department_fields({**current, **body}, department_id)
        current.update(name=name, parentid=parent, order=int(body.get("order", current["order"])))
        return {"errmsg": "updated"}

    def _deletable(self, department_id: int) -> None:
        if any(d["parentid"] == department_id for d in self.departments.values()):
            raise ApiError(DEPARTMENT_HAS_CHILDREN, "department has sub-departments")
        if any(department_id in m["department"] for m in self.members.values()):
            raise ApiError(DEPARTMENT_HAS_MEMBERS, "department has members")

    def api_department_delete(self, query: dict[str, str], _b: Any, _f: Any, _now: float) -> dict[str, Any]:
        department_id = int(query.get("id", 0))
        if department_id == ROOT or department_id not in self.departments:
            raise ApiError(DEPARTMENT_NOT_FOUND, "department not found")
        self._deletable(department_id)
        del self.departments[department_id]
        return {"errmsg": "deleted"}

    def api_department_simplelist(self, _q: Any, _b: Any, _f: Any, _now: float) -> dict[str, Any]:
        return {
            "department_id": [
                {"id": d["id"], "parentid": d["parentid"], "order": d["order"]} for d in self.departments.values()
            ]
        }

    def api_department_get(self, query: dict[str, str], _b: Any, _f: Any, _now: float) -> dict[str, Any]:
        department = self.departments.get(int(query.get("id", 0)))
        if department is None:
            raise ApiError(DEPARTMENT_NOT_FOUND, "department not found")
        return {"department": dict(department)}

    # --- members ------------------------------------------------------------------------------------------

    def _holder(self, kind: str, value: str, except_userid: str | None) -> str | None:
        holder = self.holders.get((kind, comparable(kind, value)))
        return None if holder == except_userid else holder

    def _index(self, member: dict[str, Any], present: bool) -> None:
        for kind in ("mobile", "email"):
            if member.get(kind):
                key = (kind, comparable(kind, member[kind]))
                if present:
                    self.holders[key] = member["userid"].lower()
                elif self.holders.get(key) == member["userid"].lower():
                    del self.holders[key]

    def _validate(self, fields: dict[str, Any], userid: str) -> dict[str, Any]:
        """The member fields of a create or update, checked; raises the first rule broken."""
        clean: dict[str, Any] = {}
        if "name" in fields:
            name = str(fields["name"] or "")
            if not 1 <= len(name) <= 64:
                raise ApiError(BAD_NAME, "invalid name")
            clean["name"] = name
        if "department" in fields:
            departments = [int(d) for d in (fields["department"] or [])]
            if not departments:
                raise ApiError(DEPARTMENT_NOT_FOUND, "department required")
            for department in departments:
                if department not in self.departments:
                    raise ApiError(DEPARTMENT_NOT_FOUND, "department not found")
            clean["department"] = departments
            main = int(fields.get("main_department") or departments[0])
            clean["main_department"] = main if main in departments else departments[0]
        for kind, pattern, bad, taken in (
            ("mobile", MOBILE, BAD_MOBILE, MOBILE_EXISTS),
            ("email", EMAIL, BAD_EMAIL, EMAIL_EXISTS),
        ):
            if kind not in fields:
                continue
            value = str(fields[kind] or "")
            if value:
                if not pattern.fullmatch(value) or (kind == "email" and not 6 <= len(value.encode()) <= 64):
                    raise ApiError(bad, f"invalid {kind}")
                if self._holder(kind, value, userid) is not None:
                    raise ApiError(taken, f"{kind} existed")
            clean[kind] = value
        if "enable" in fields:
            clean["enable"] = 1 if int(fields["enable"]) else 0
        return clean

    def _create_member(self, fields: dict[str, Any]) -> dict[str, Any]:
        userid = str(fields.get("userid", ""))
        if len(userid.encode()) > 64 or not USERID.fullmatch(userid):
            raise ApiError(BAD_USERID, "invalid userid")
        if userid.lower() in self.members:
            raise ApiError(USERID_EXISTS, "userid existed")
        if "name" not in fields:
            raise ApiError(BAD_NAME, "name required")
        if "department" not in fields:
            fields = {**fields, "department": [ROOT]}
        clean = self._validate(fields, userid.lower())
        if not clean.get("mobile") and not clean.get("email"):
            raise ApiError(NO_CONTACT, "mobile and email both empty")
        enable = clean.pop("enable", 1)
        member = {
            "userid": userid,
            "mobile": "",
            "email": "",
            **clean,
            "enable": enable,
            "status": 4 if enable else 2,
            "activated": False,
        }
        self.members[userid.lower()] = member
        self._index(member, True)
        if fields.get("to_invite", True):
            self.invited.append(userid)
        return member

    def _update_member(self, fields: dict[str, Any]) -> None:
        userid = str(fields.get("userid", ""))
        member = self.members.get(userid.lower())
        if member is None:
            raise ApiError(USERID_NOT_FOUND, "userid not found")
        clean = self._validate(fields, userid.lower())
        if not (clean.get("mobile", member["mobile"]) or clean.get("email", member["email"])) and clean.get(
            "enable", member["enable"]
        ):
            raise ApiError(NO_CONTACT, "mobile and email both empty")
        self._index(member, False)
        member.update(clean)
        self._index(member, True)
        member["status"] = (1 if member["activated"] else 4) if member["enable"] else 2

    def api_user_create(self, _q: Any, body: dict[str, Any], _f: Any, _now: float) -> dict[str, Any]:
        self._create_member(body)
        return {"errmsg": "created"}

    def api_user_update(self, _q: Any, body: dict[str, Any], _f: Any, _now: float) -> dict[str, Any]:
        self._update_member(body)
        return {"errmsg": "updated"}

    def api_user_get(self, query: dict[str, str], _b: Any, _f: Any, _now: float) -> dict[str, Any]:
        member = self.members.get(query.get("userid", "").lower())
        if member is None:
            raise ApiError(USERID_NOT_FOUND, "userid not found")
        shown = ("userid", "name", "department", "main_department", "enable", "status")
        return {key: member[key] for key in shown if key in member}

    def api_user_delete(self, query: dict[str, str], _b: Any, _f: Any, _now: float) -> dict[str, Any]:
        member = self.members.pop(query.get("userid", "").lower(), None)
        if member is None:
            raise ApiError(USERID_NOT_FOUND, "userid not found")
        self._index(member, False)
        return {"errmsg": "deleted"}

    def api_user_batchdelete(self, _q: Any, body: dict[str, Any], _f: Any, _now: float) -> dict[str, Any]:
        userids = [str(u).lower() for u in body.get("useridlist", [])]
        if not 1 <= len(userids) <= 200:
            raise ApiError(BAD_PARAMETER, "useridlist holds 1 to 200 userids")
        if any(u not in self.members for u in userids):
            raise ApiError(USERID_NOT_FOUND, "userid not found")  # one bad id fails them all
        for userid in userids:
            self._index(self.members.pop(userid), False)
        return {"errmsg": "deleted"}

    def _in_department(self, query: dict[str, str]) -> list[dict[str, Any]]:
        department = int(query.get("department_id", 0))
        if department not in self.departments:
            raise ApiError(DEPARTMENT_NOT_FOUND, "department not found")
        wanted = {department}
        if query.get("fetch_child") == "1":
            changed = True
            while changed:
                before = len(wanted)
                wanted |= {d["id"] for d in self.departments.values() if d["parentid"] in wanted}
                changed = len(wanted) != before
        return [m for m in self.members.values() if wanted & set(m["department"])]

    def api_user_simplelist(self, query: dict[str, str], _b: Any, _f: Any, _now: float) -> dict[str, Any]:
        return {
            "userlist": [
                {"userid": m["userid"], "name": m["name"], "department": m["department"]}
                for m in self._in_department(query)
            ]
        }

    def api_user_list(self, query: dict[str, str], _b: Any, _f: Any, _now: float) -> dict[str, Any]:
        shown = ("userid", "name", "department", "main_department", "enable", "status")
        return {"userlist": [{k: m[k] for k in shown} for m in self._in_department(query)]}

    def api_user_list_id(self, _q: Any, body: dict[str, Any], _f: Any, _now: float) -> dict[str, Any]:
        limit = int(body.get("limit", 1000))
        if not 1 <= limit <= 10_000:
            raise ApiError(BAD_PARAMETER, "limit must be 1 to 10000")
        rows = [{"userid": m["userid"], "department": d} for m in self.members.values() for d in m["department"]]
        start = int(body.get("cursor") or 0)
        page = rows[start : start + limit]
        answer: dict[str, Any] = {"dept_user": page}
        if start + limit < len(rows):
            answer["next_cursor"] = str(start + limit)
        return answer

    # --- media and batch jobs -----------------------------------------------------------------------------

    def api_media_upload(self, query: dict[str, str], _b: Any, files: dict[str, bytes], _now: float) -> dict[str, Any]:
        content = files.get("media")
        if query.get("type") != "file" or content is None:
            raise ApiError(BAD_PARAMETER, "a file in the multipart field `media` is required")
        if not 5 <= len(content) <= MAX_MEDIA:
            raise ApiError(BAD_PARAMETER, "file size must be 5 B to 20 MB")
        media_id = "3" + secrets.token_urlsafe(30)
        self.media[media_id] = content
        return {"type": "file", "media_id": media_id, "created_at": str(int(time.time()))}

    def _csv_rows(self, body: dict[str, Any], required: tuple[str, ...]) -> list[dict[str, str]]:
        content = self.media.get(str(body.get("media_id", "")))
        if content is None:
            raise ApiError(BAD_MEDIA_ID, "invalid media_id")
        try:
            reader = csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
            header = [name.strip() for name in reader.fieldnames or []]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ApiError(BAD_PARAMETER, "the file is not a UTF-8 CSV") from exc
        missing = [column for column in required if column not in header]
        if missing:
            raise ApiError(BAD_PARAMETER, f"the file needs the columns {', '.join(required)}")
        if not rows:
            raise ApiError(BAD_PARAMETER, "the file has no rows")
        return rows

    def _submit(self, kind: str, rows: list[dict[str, str]], body: dict[str, Any], now: float) -> dict[str, Any]:
        callback = body.get("callback") if isinstance(body.get("callback"), dict) else None
        job = Job(
            jobid=secrets.token_urlsafe(24),
            type=kind,
            rows=rows,
            submitted_at=now,
            finish_at=now + self.batch_delay,
            callback=callback,
            to_invite=bool(body.get("to_invite", True)),
        )
        self.jobs[job.jobid] = job
        timer = threading.Timer(self.batch_delay, self._finish, args=(job,))
        timer.daemon = True
        timer.start()
        return {"jobid": job.jobid}

    def api_batch_syncuser(self, _q: Any, body: dict[str, Any], _f: Any, now: float) -> dict[str, Any]:
        return self._submit("sync_user", self._csv_rows(body, ("姓名", "帐号")), body, now)

    def api_batch_replaceparty(self, _q: Any, body: dict[str, Any], _f: Any, now: float) -> dict[str, Any]:
        return self._submit("replace_party", self._csv_rows(body, PARTY_COLUMNS), body, now)

    def _finish(self, job: Job) -> None:
        with self.lock:
            if job.type == "replace_party":
                job.result = self._replace_departments(job.rows)
            else:
                job.result = self._sync_users(job.rows, job.to_invite)
            job.status, job.finished_at = 3, time.monotonic()
        self.job_finished(job)

    def job_finished(self, job: Job) -> None:
        """Called once a job has finished, outside the lock (the tests' stand-in sends batch_job_result)."""

    def _sync_users(self, rows: list[dict[str, str]], to_invite: bool) -> list[dict[str, Any]]:
        result = []
        for row in rows:
            userid = row.get("帐号") or ""
            fields: dict[str, Any] = {"userid": userid, "to_invite": to_invite}
            for column, name in (("姓名", "name"), ("手机号", "mobile"), ("邮箱", "email")):
                if row.get(column):
                    fields[name] = row[column]
            if row.get("所在部门"):
                fields["department"] = [int(d) for d in row["所在部门"].split(";") if d.strip().isdigit()]
            try:
                if userid.lower() in self.members:
                    self._update_member(fields)
                else:
                    self._create_member(fields)
                result.append({"userid": userid, "errcode": OK, "errmsg": "ok"})
            except ApiError as exc:
                result.append({"userid": userid, "errcode": exc.errcode, "errmsg": exc.errmsg})
        return result

    def _replace_departments(self, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
        """The tree becomes the file's: rows applied parents first, then what the file left out deleted if empty."""
        result: list[dict[str, Any]] = []
        wanted: dict[int, dict[str, Any]] = {}
        for row in rows:
            try:
                department_id, parent = int(row.get("部门ID", "")), int(row.get("父部门ID", ""))
                order = int(row.get("排序") or 0)
            except ValueError:
                result.append({"action": 0, "partyid": 0, "errcode": BAD_PARAMETER, "errmsg": "ids must be numbers"})
                continue
            if department_id in wanted:
                result.append(_party(0, department_id, ApiError(DEPARTMENT_EXISTS, "department id listed twice")))
                continue
            wanted[department_id] = {"name": row.get("部门名称", ""), "parentid": parent, "order": order}
        pending = dict(wanted)
        while pending:  # parents first: a row waits until its parent exists
            ready = [i for i, row in pending.items() if row["parentid"] in self.departments or i == ROOT]
            if not ready:
                for department_id in pending:
                    result.append(_party(0, department_id, ApiError(DEPARTMENT_NOT_FOUND, "parent not found")))
                break
            for department_id in ready:
                result.append(self._replace_one(department_id, pending.pop(department_id)))
        gone = True
        while gone:  # departments the file left out go when empty, deepest first
            gone = False
            for department_id in [i for i in self.departments if i != ROOT and i not in wanted]:
                try:
                    self._deletable(department_id)
                except ApiError:
                    continue  # kept while it holds members or departments
                del self.departments[department_id]
                gone = True
        return result

    def _replace_one(self, department_id: int, row: dict[str, Any]) -> dict[str, Any]:
        current = self.departments.get(department_id)
        try:
            if department_id == ROOT:
                name = str(row["name"]).strip()
                if row["parentid"] != 0 or not 1 <= len(name) <= 64 or BAD_DEPARTMENT_CHARS.search(name):
                    raise ApiError(BAD_PARAMETER, "the root department has parent 0 and a valid name")
                action = PARTY_RENAMED if name != current["name"] else 0  # type: ignore[index]
                current["name"] = name  # type: ignore[index]
                return _party(action, department_id)
            if current is None:
                self._create_department({"id": department_id, **row})
                return _party(PARTY_CREATED, department_id)
            name, parent = self._department_fields(row, department_id)
            action = (PARTY_RENAMED if name != current["name"] else 0) | (
                PARTY_MOVED if parent != current["parentid"] else 0
            )
            if row["order"] and row["order"] != current["order"]:  # empty or 0: the order stays
                action |= PARTY_REORDERED
                current["order"] = row["order"]
            current.update(name=name, parentid=parent)
            return _party(action, department_id)
        except ApiError as exc:
            return _party(0, department_id, exc)

    def api_batch_getresult(self, query: dict[str, str], _b: Any, _f: Any, now: float) -> dict[str, Any]:
        job = self.jobs.get(query.get("jobid", ""))
        if job is None:
            raise ApiError(BAD_PARAMETER, "invalid jobid")
        if job.status != 3:
            status = 2 if now >= job.finish_at - self.batch_delay / 2 else 1
            return {"status": status, "type": job.type, "total": len(job.rows), "percentage": 50 * (status - 1)}
        return {"status": 3, "type": job.type, "total": len(job.rows), "percentage": 100, "result": job.result}

    def api_batch_invite(self, _q: Any, body: dict[str, Any], _f: Any, _now: float) -> dict[str, Any]:
        users = [str(u) for u in body.get("user", [])]
        if len(users) > 1000 or len(body.get("party", [])) > 100 or len(body.get("tag", [])) > 100:
            raise ApiError(BAD_PARAMETER, "at most 1000 users, 100 parties, 100 tags")
        invalid = [u for u in users if u.lower() not in self.members or self.members[u.lower()]["enable"] == 0]
        self.invited.extend(u for u in users if u not in invalid)
        return {"invaliduser": invalid, "invalidparty": [], "invalidtag": []}


def _party(action: int, department_id: int, error: ApiError | None = None) -> dict[str, Any]:
    if error is None:
        return {"action": action, "partyid": department_id, "errcode": OK, "errmsg": "ok"}
    return {"action": action, "partyid": department_id, "errcode": error.errcode, "errmsg": error.errmsg}


def comparable(kind: str, value: str) -> str:
    """A mobile or email as the corp compares them for uniqueness (`+86 139…` and `139…` are one number)."""
    if kind == "mobile":
        match = MOBILE.fullmatch(value.replace(" ", "")) or MOBILE.fullmatch(value)
        if match:
            return f"{match.group(1) or '86'} {match.group(2)}"
    return value.lower()
