"""Who is asking: the client address that audit events record."""

from __future__ import annotations

from fastapi import Request


def client_ip(request: Request) -> str | None:
    """The client address (behind a proxy: what uvicorn's --proxy-headers gives)."""
    return request.client.host if request.client else None
