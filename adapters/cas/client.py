"""A CAS 3.0 client (Apereo CAS Protocol Specification): the login redirect and service ticket validation.

- §2.1 `/login?service=URL[&renew=true]` — CAS sends the browser back to `URL` with `ticket=ST-…`.
- §2.7 `/p3/serviceValidate?service=URL&ticket=ST-…` (CAS 3.0: attributes in the answer); a server without
  it (HTTP 404) is asked at §2.5 `/serviceValidate` (CAS 2.0, attributes optional). The ticket is sent once:
  a 404 means the endpoint does not exist, so the ticket was not used up.
- `service` is passed exactly as it was sent to `/login` (the server compares it with the ticket's).
- §3.1 a service ticket starts with `ST-` and holds only `[A-Za-z0-9-]` (up to 256 characters here); anything
  else is refused before it leaves the broker (`INVALID_TICKET_SPEC`).
- The XML answer is parsed with defusedxml; failure codes (INVALID_TICKET, INVALID_SERVICE, …) come back as
  `CasRefused(code, message)`.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from idbroker.web.cas import CasPrincipal, CasRefused, CasUnavailable

CAS_NS = "{http://www.yale.edu/tp/cas}"
TICKET_SYNTAX = re.compile(r"ST-[A-Za-z0-9-]{1,253}")
MAX_RESPONSE_BYTES = 1024 * 1024


class CasClient:
    def __init__(self, server_url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.server_url = server_url.rstrip("/")
        self.timeout = timeout
        self.transport = transport

    def login_url(self, service: str, *, renew: bool = False) -> str:
        params = {"service": service, **({"renew": "true"} if renew else {})}
        return f"{self.server_url}/login?{urlencode(params)}"

    def validate(self, ticket: str, service: str) -> CasPrincipal:
        if not TICKET_SYNTAX.fullmatch(ticket or ""):
            raise CasRefused("INVALID_TICKET_SPEC", "not a CAS service ticket (ST-…)")
        params = {"service": service, "ticket": ticket}
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as http:
                response = http.get(f"{self.server_url}/p3/serviceValidate", params=params)
                if response.status_code == 404:
                    response = http.get(f"{self.server_url}/serviceValidate", params=params)
        except httpx.HTTPError as exc:
            raise CasUnavailable(f"the CAS server did not answer ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise CasUnavailable(f"the CAS server answered HTTP {response.status_code}")
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise CasUnavailable("the CAS server's answer is too large")
        return parse_service_response(response.content)


def parse_service_response(body: bytes) -> CasPrincipal:
    """The principal of a `<cas:serviceResponse>`, or `CasRefused` for an `<cas:authenticationFailure>`."""
    try:
        root = ElementTree.fromstring(body, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise CasUnavailable("the CAS server's answer is not well-formed XML") from exc
    if root.tag != f"{CAS_NS}serviceResponse":
        raise CasUnavailable("the CAS server's answer is not a cas:serviceResponse")
    failure = root.find(f"{CAS_NS}authenticationFailure")
    if failure is not None:
        code = (failure.get("code") or "INTERNAL_ERROR").strip()
        raise CasRefused(code, (failure.text or "").strip() or code)
    success = root.find(f"{CAS_NS}authenticationSuccess")
    user = success.find(f"{CAS_NS}user") if success is not None else None
    uid = (user.text or "").strip() if user is not None else ""
    if success is None or not uid:
        raise CasUnavailable("the CAS server's answer names no user")
    attributes: dict[str, list[str]] = {}
    found = success.find(f"{CAS_NS}attributes")
    for element in list(found) if found is not None else []:
        name = element.tag.removeprefix(CAS_NS)
        attributes.setdefault(name, []).append((element.text or "").strip())
    return CasPrincipal(uid=uid, attributes=attributes)


def make_client(server_url: str, *, timeout: float) -> CasClient:
    """The `idbroker.login` entry point."""
    return CasClient(server_url, timeout=timeout)
