"""What the login needs from a CAS client, and how the core finds one without importing an adapter.

The client itself (CAS 3.0, `/p3/serviceValidate` with the 2.0 fallback) is `adapters/cas/client.py`,
registered in the entry-point group `idbroker.login` under the name `cas`. The core only knows this interface:
`login_url(service, renew)` and `validate(ticket, service) -> CasPrincipal`, which raises `CasRefused`
(the server's failure code, or a ticket malformed before it was ever sent) or `CasUnavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol
from urllib.parse import quote

from idbroker.config import Settings

ENTRY_POINT_GROUP = "idbroker.login"
CALLBACK_PATH = "/login/cas"


@dataclass(frozen=True)
class CasPrincipal:
    uid: str
    attributes: dict[str, list[str]] = field(default_factory=dict)


class CasRefused(Exception):
    """The CAS server (or the client, for a malformed ticket) refused the ticket. `code` is the CAS code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CasUnavailable(Exception):
    """The CAS server could not be reached or answered something that is not CAS."""


class CasClient(Protocol):
    def login_url(self, service: str, *, renew: bool = False) -> str: ...

    def validate(self, ticket: str, service: str) -> CasPrincipal: ...


class CasClientFactory(Protocol):
    def __call__(self, server_url: str, *, timeout: float) -> CasClient: ...


class CasNotConfigured(RuntimeError):
    pass


def cas_client(settings: Settings, server_url: str | None = None) -> CasClient:
    """The installed CAS client for `server_url` (default: `cas_server_url`)."""
    url = server_url or settings.cas_server_url
    if not url:
        raise CasNotConfigured("IDBROKER_CAS_SERVER_URL is not set")
    points = [point for point in entry_points(group=ENTRY_POINT_GROUP) if point.name == "cas"]
    if not points:
        raise CasNotConfigured("no CAS client is installed (entry point idbroker.login: cas)")
    factory: CasClientFactory = points[0].load()
    return factory(url, timeout=settings.cas_timeout_seconds)


def safe_next(value: str | None) -> str:
    """`next` only as a path on this site: `/me?x=1` stays, `//evil`, `/\\evil`, `https://…` become `/`."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 0x20 or ch in "\\" for ch in value) or len(value) > 2000:
        return "/"
    return value


def service_url(public_url: str, next_path: str) -> str:
    """The `service` sent to CAS; the callback rebuilds exactly the same string to validate the ticket."""
    return f"{public_url.rstrip('/')}{CALLBACK_PATH}?next={quote(safe_next(next_path), safe='')}"
