"""A stand-in for the campus CAS (Apereo CAS cannot be installed here), following CAS Protocol 3.0.

- `GET /cas/login?service=URL` — a form with uid and password; a known user gets a 303 back to
  `URL?ticket=ST-…` (or `&ticket=` when URL has a query).
- Service tickets (§3.1): `ST-` then `[A-Za-z0-9-]`, single-use whether validation succeeds or fails, valid 5
  minutes, bound to the exact service URL they were issued for.
- `GET /cas/p3/serviceValidate` (§2.7, with attributes) and `GET /cas/serviceValidate` (§2.5, CAS 2.0,
  no attributes): the XML `cas:serviceResponse` of the specification; failures with the codes
  INVALID_REQUEST, INVALID_TICKET_SPEC, INVALID_TICKET, INVALID_SERVICE. `p3_enabled = False` makes the
  p3 endpoint answer 404, like a CAS 2.0 server. JSON is not offered.
Tests drive it through `add_user`, `issue_ticket`, `age_tickets` and read `validations`.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

DEFAULT_PASSWORD = "campus-password"
TICKET_TTL_SECONDS = 300
PREFIX = "/cas"


@dataclass
class IssuedTicket:
    uid: str
    service: str
    issued_at: float


@dataclass
class CasStandIn:
    users: dict[str, tuple[str, dict[str, list[str]]]] = field(default_factory=dict)
    tickets: dict[str, IssuedTicket] = field(default_factory=dict)
    validations: list[str] = field(default_factory=list)  # the paths validation requests came to
    p3_enabled: bool = True
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.base_url + PREFIX

    def reset(self) -> None:
        with self.lock:
            self.users.clear()
            self.tickets.clear()
            self.validations.clear()
            self.p3_enabled = True

    def add_user(self, uid: str, password: str = DEFAULT_PASSWORD, **attributes: list[str]) -> None:
        with self.lock:
            self.users[uid] = (password, attributes)

    def issue_ticket(self, uid: str, service: str) -> str:
        ticket = f"ST-{int(time.time())}-{secrets.token_hex(16)}"
        with self.lock:
            self.tickets[ticket] = IssuedTicket(uid, service, time.time())
        return ticket

    def age_tickets(self, seconds: float) -> None:
        """Make every outstanding ticket `seconds` older (to test expiry)."""
        with self.lock:
            for ticket in self.tickets.values():
                ticket.issued_at -= seconds

    # --- HTTP -----------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(f"{PREFIX}/login", self.login_form, methods=["GET"]),
                Route(f"{PREFIX}/login", self.login_submit, methods=["POST"]),
                Route(f"{PREFIX}/p3/serviceValidate", self.validate_p3, methods=["GET"]),
                Route(f"{PREFIX}/serviceValidate", self.validate_v2, methods=["GET"]),
            ]
        )

    def _form(self, service: str, error: str = "", status: int = 200) -> HTMLResponse:
        page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>统一身份认证 (stand-in)</title></head>
<body><h1>统一身份认证 · CAS stand-in</h1><p class="error">{html.escape(error)}</p>
<form method="post"><input type="hidden" name="service" value="{html.escape(service)}">
<label>用户名 <input name="username" autocomplete="username"></label>
<label>密码 <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">登录</button></form></body></html>"""
        return HTMLResponse(page, status_code=status)

    async def login_form(self, request: Request) -> Response:
        service = request.query_params.get("service")
        if not service:
            return HTMLResponse("no service", status_code=400)
        return self._form(service)

    async def login_submit(self, request: Request) -> Response:
        form = await request.form()
        service, uid, password = (str(form.get(name) or "") for name in ("service", "username", "password"))
        with self.lock:
            known = self.users.get(uid)
        if not service:
            return HTMLResponse("no service", status_code=400)
        if known is None or not secrets.compare_digest(known[0], password):
            return self._form(service, "用户名或密码错误", status=401)
        ticket = self.issue_ticket(uid, service)
        return RedirectResponse(f"{service}{'&' if '?' in service else '?'}ticket={ticket}", status_code=303)

    async def validate_p3(self, request: Request) -> Response:
        if not self.p3_enabled:
            return Response("Not Found", status_code=404)
        return self._validate(request, with_attributes=True)

    async def validate_v2(self, request: Request) -> Response:
        return self._validate(request, with_attributes=False)

    def _validate(self, request: Request, *, with_attributes: bool) -> Response:
        self.validations.append(request.url.path.removeprefix(PREFIX))
        service = request.query_params.get("service")
        ticket = request.query_params.get("ticket")
        if not service or not ticket:
            return _failure("INVALID_REQUEST", "service and ticket are required")
        if not ticket.startswith("ST-"):
            return _failure("INVALID_TICKET_SPEC", f"ticket {ticket!r} is not a service ticket")
        with self.lock:
            issued = self.tickets.pop(ticket, None)  # single use, whatever the outcome
            attributes = dict(self.users.get(issued.uid, ("", {}))[1]) if issued else {}
        if issued is None:
            return _failure("INVALID_TICKET", f"ticket {ticket} not recognized")
        if time.time() - issued.issued_at > TICKET_TTL_SECONDS:
            return _failure("INVALID_TICKET", f"ticket {ticket} has expired")
        if issued.service != service:
            return _failure("INVALID_SERVICE", f"ticket {ticket} was not issued for this service")
        return _success(issued.uid, attributes if with_attributes else None, issued.issued_at)


def _xml(body: str) -> Response:
    text = f'<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">\n{body}\n</cas:serviceResponse>\n'
    return Response(text, media_type="application/xml; charset=utf-8")


def _failure(code: str, message: str) -> Response:
    return _xml(f' <cas:authenticationFailure code="{code}">{escape(message)}</cas:authenticationFailure>')


def _success(uid: str, attributes: dict[str, list[str]] | None, issued_at: float) -> Response:
    lines = [" <cas:authenticationSuccess>", f"  <cas:user>{escape(uid)}</cas:user>"]
    if attributes is not None:
        at = datetime.fromtimestamp(issued_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines += [
            "  <cas:attributes>",
            f"   <cas:authenticationDate>{at}</cas:authenticationDate>",
            "   <cas:isFromNewLogin>true</cas:isFromNewLogin>",
        ]
        for name, values in attributes.items():
            lines += [f"   <cas:{name}>{escape(value)}</cas:{name}>" for value in values]
        lines.append("  </cas:attributes>")
    lines.append(" </cas:authenticationSuccess>")
    return _xml("\n".join(lines))
