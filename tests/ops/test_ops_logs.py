"""Logs are JSON lines and hold no secret: a real `idbroker serve` process is driven through a CAS login (and a
replayed ticket), an OpenID Connect code flow with refresh, and a phone verification by SMS code; then every
line it wrote is parsed, and every ticket, code, token, cookie and phone number that went through is searched
for in the whole log. Also the redaction filter on its own, and the access log's fields and route templates."""

from __future__ import annotations

import io
import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from ops_support import access_lines, environment, json_lines, reap, start_server, stop, stopped_cleanly
from plugins.apps import CALLBACK, VERIFIER, Campus, MakeApp, authorize_in_browser, authorize_query
from plugins.contacts import CloudSms
from services.availability import free_port
from sqlalchemy import Engine
from standins.cas_server import CasStandIn

from idbroker.logs import JsonFormatter, RedactFilter, redact

UID = "1120150001"  # 李丽 in the `campus` fixture
NEW_PHONE = "13912340001"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- the filter and the formatter on their own ---------------------------------------------------------------


def format_line(message: str, *args: object, exc: BaseException | None = None, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    logger = logging.getLogger("idbroker.test.redaction")
    logger.propagate, logger.handlers = False, [handler]
    logger.setLevel(logging.INFO)
    try:
        if exc is None:
            logger.info(message, *args, extra=extra)
        else:
            try:
                raise exc
            except BaseException:
                logger.exception(message, *args, extra=extra)
    finally:
        logger.handlers = []
    return stream.getvalue()


def test_the_redaction_filter_removes_what_must_never_be_logged() -> None:
    import json

    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhYmMifQ.c2lnbmF0dXJl"
    line = format_line(
        "sent to %s and %s, id %s, ticket %s, %s, url /cb?code=Zx81Qa-9&state=s, Authorization: Bearer %s, mail %s",
        "+8613912345678",
        "139 1234 5678",
        "11010519491231002X",
        "ST-1700000000-0a1b2c3d",
        jwt,
        "opaque-token-value",
        "zhang.shuai@example.edu.cn",
        route="/login/cas",
        note="phone 13812345678",
    )
    entry = json.loads(line)
    for secret in ("13912345678", "139 1234 5678", "11010519491231002X", "ST-1700000000", jwt, "Zx81Qa-9",
                   "opaque-token-value", "zhang.shuai@example.edu.cn", "13812345678"):  # fmt: skip
        assert secret not in line, secret
    assert "[phone]" in entry["msg"] and "[national-id]" in entry["msg"] and "[ticket]" in entry["msg"]
    assert "[jwt]" in entry["msg"] and "code=[redacted]" in entry["msg"] and "Bearer [redacted]" in entry["msg"]
    assert "state=s" in entry["msg"]  # what is not secret stays readable
    assert entry["note"] == "phone [phone]" and entry["route"] == "/login/cas"
    assert entry["level"] == "info" and entry["logger"] == "idbroker.test.redaction" and isinstance(entry["pid"], int)
    # student and staff numbers are not phone numbers
    assert json.loads(format_line("record %s", "1120101234"))["msg"] == "record 1120101234"


def test_a_traceback_is_redacted_too() -> None:
    import json

    error = ValueError("[SQL: INSERT INTO contact_point …]\n[parameters: ('+8613912345678', '张帅')]")
    entry = json.loads(format_line("import failed", exc=error))
    assert "exc" in entry and "ValueError" in entry["exc"]
    assert "+8613912345678" not in entry["exc"] and "张帅" not in entry["exc"]
    assert "[parameters: redacted]" in entry["exc"]


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "worker started on contacts.deliver, wecom.callbacks; 12 jobs in 0.25 s at 2026-11-25T15:01:26+00:00"
    assert redact(text) == text


# --- a real server ------------------------------------------------------------------------------------------


def run_everything(url: str, cas: CasStandIn, cloud: CloudSms, client_secret: str) -> dict[str, Any]:
    """Drive the server like a browser and an app would; return every secret value that went through it."""
    secrets: dict[str, Any] = {"client_secret": client_secret, "phone": [NEW_PHONE, "+86" + NEW_PHONE, "139 1234 0001"]}
    locations: list[str] = []

    def remember(response: httpx.Response) -> None:
        if "location" in response.headers:
            locations.append(response.headers["location"])

    answers: dict[str, Any] = {}
    with httpx.Client(follow_redirects=False, timeout=30, event_hooks={"response": [remember]}) as browser:
        # 1. CAS login through the stand-in's form, then the same ticket replayed
        final = authorize_in_browser(browser, f"{url}/login?next=%2Fme%2Fcontacts", UID, cas, f"{url}/me/contacts")
        assert final.startswith(f"{url}/me/contacts")
        tickets = [dict(parse_qsl(urlsplit(loc).query)).get("ticket") for loc in locations]
        secrets["ticket"] = [t for t in tickets if t]
        assert secrets["ticket"], "the CAS stand-in sent no ticket"
        replay = browser.get(f"{url}/login/cas", params={"next": "/", "ticket": secrets["ticket"][0]})
        answers["replay"] = replay.status_code
        secrets["cookies"] = [value for value in browser.cookies.values() if len(value) > 12]

        # 2. the authorization-code flow with PKCE, a refresh and userinfo
        query = urlencode(authorize_query("rp1"))
        final = authorize_in_browser(browser, f"{url}/oidc/authorize?{query}", UID, cas, CALLBACK)
        code = dict(parse_qsl(urlsplit(final).query))["code"]
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": VERIFIER}
        tokens = httpx.post(f"{url}/oidc/token", data=data, auth=("rp1", client_secret), timeout=30).json()
        userinfo = httpx.get(
            f"{url}/oidc/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"}, timeout=30
        )
        refreshed = httpx.post(
            f"{url}/oidc/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=("rp1", client_secret),
            timeout=30,
        ).json()
        replayed_code = httpx.post(f"{url}/oidc/token", data=data, auth=("rp1", client_secret), timeout=30)
        answers.update(userinfo=userinfo.status_code, replayed_code=replayed_code.status_code)
        issued = [
            answer[k]
            for answer in (tokens, refreshed)
            for k in ("access_token", "refresh_token", "id_token")
            if k in answer
        ]
        assert len(issued) >= 5
        secrets.update(code=code, verifier=VERIFIER, tokens=issued)

        # 3. a new phone, verified with the code the SMS brought
        page = browser.get(f"{url}/me/contacts", headers={"accept": "text/html"})
        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        secrets["csrf"] = csrf
        started = browser.post(f"{url}/me/phones", data={"csrf_token": csrf, "phone": "139 1234 0001"})
        assert started.status_code == 303, started.text
        verify_path = started.headers["location"]
        deadline = time.monotonic() + 20
        while not [m for m in cloud.standin.messages if m.phone == NEW_PHONE]:
            assert time.monotonic() < deadline, "no SMS reached the cloud SMS stand-in"
            time.sleep(0.05)
        sms_code = next(m for m in cloud.standin.messages if m.phone == NEW_PHONE).params["code"]
        secrets["sms_code"] = sms_code
        browser.get(f"{url}{verify_path}", headers={"accept": "text/html"})
        done = browser.post(f"{url}{verify_path}", data={"csrf_token": csrf, "code": sms_code})
        answers["verified"] = (done.status_code, done.headers.get("location"))
        secrets["flow_id"] = verify_path.rsplit("/", 1)[1]

        # 4. a path that matches no route, with a phone number in it; a request id from the proxy
        answers["unmatched"] = browser.get(f"{url}/people/{NEW_PHONE}").status_code
        echoed = browser.get(f"{url}/health/live", headers={"x-request-id": "nginx-4f1c2a9b"})
        answers["request_id"] = echoed.headers.get("x-request-id")
    answers["secrets"] = secrets
    return answers


def test_a_served_login_code_flow_and_verification_leave_no_secret_in_the_logs(
    sqlite_engine: Engine,
    campus: Campus,
    make_app: MakeApp,
    cas_server: CasStandIn,
    use_cloud_sms: CloudSms,
    tmp_path: Path,
) -> None:
    _app, client_secret = make_app("rp1", claims=("pseudonym", "nickname", "email"))
    assert client_secret
    port = free_port()
    env = environment(
        sqlite_engine.url.render_as_string(hide_password=False),
        public_url=f"http://127.0.0.1:{port}",
        cas_server_url=cas_server.url,
        log_level="INFO",
    )
    log = tmp_path / "serve.log"
    server = start_server(env, log, port=port)
    try:
        answers = run_everything(server.url, cas_server, use_cloud_sms, client_secret)
    finally:
        status = stop(server.process)
        reap(server.process)
    assert stopped_cleanly(status)

    assert answers["replay"] == 400 and answers["userinfo"] == 200 and answers["replayed_code"] == 400
    assert answers["verified"] == (303, "/me/contacts?done=verified")
    assert answers["unmatched"] == 404 and answers["request_id"] == "nginx-4f1c2a9b"

    text = log.read_text(encoding="utf-8")
    entries = json_lines(log)  # every line is a JSON object
    secrets = answers["secrets"]
    values = [v for value in secrets.values() for v in (value if isinstance(value, list) else [value])]
    for value in (str(v) for v in values if v):
        assert value not in text, f"a secret that went through the server is in its log: {value[:12]}…"

    assert not [e for e in entries if e["logger"] == "uvicorn.access"]
    requests = access_lines(log)
    routes = {(e["method"], e["route"], e["status"]) for e in requests}
    assert {
        ("GET", "/login/cas", 303),
        ("GET", "/login/cas", 400),
        ("GET", "/oidc/authorize", 302),
        ("POST", "/oidc/token", 200),
        ("POST", "/oidc/token", 400),
        ("POST", "/me/phones", 303),
        ("POST", "/me/verify/{flow_id}", 303),
        ("GET", "unmatched", 404),
    } <= routes, sorted(routes)
    for entry in requests:
        assert set(entry) >= {"ts", "level", "msg", "pid", "request_id", "method", "route", "status", "duration_ms"}
        assert isinstance(entry["duration_ms"], int | float) and entry["duration_ms"] >= 0
        assert "?" not in entry["route"]
    assert any(e["request_id"] == "nginx-4f1c2a9b" and e["route"] == "/health/live" for e in requests)
    assert len({e["request_id"] for e in requests}) == len(requests)  # one id per request
    messages = [e["msg"] for e in entries if e["logger"].startswith("uvicorn")]
    assert "Application startup complete." in messages and "Application shutdown complete." in messages
